"""The routing rules, pure: who gets a lead, when its follow-up is due, what feedback does.

Plain dataclasses and functions. No database, broker or web framework; time is always an
argument (``now``), never read from the system clock here.
"""
