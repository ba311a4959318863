"""The scoring rules: the rulebook document, the rule engine, back-tests and company roll-ups.

Pure: plain functions and values, no I/O, no ORM, no web framework, no broker. Every function
that depends on time takes ``now``.
"""
