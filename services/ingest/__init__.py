"""Ingest service: captures leads from every door (API, forms, CSV, CRM webhooks), normalizes
and deduplicates them, and publishes leads.ingested, leads.feedback and leads.erased.
"""
