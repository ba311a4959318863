"""Scoring service: grades leads A-D from a versioned rulebook both sides agree on, with the
reasons, and publishes leads.scored.
"""
