"""Reporting service: builds the shared metrics from every topic and serves the dashboard, JSON
and CSV.
"""
