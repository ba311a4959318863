"""Delivery service: events out to systems that cannot read Kafka. Signed HTTP webhook
subscriptions (Standard Webhooks) for marketing automation, retried in order per lead, and
assignments written back to the CRM (HubSpot, Salesforce, Pipedrive).
"""
