"""Routing service: assigns graded leads to reps or nurture under a follow-up SLA, and
publishes leads.routed and leads.sla.
"""
