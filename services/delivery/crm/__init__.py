"""CRM write-back of assignments: one adapter per provider behind one interface."""

from services.delivery.crm.adapters import (
    PROVIDERS,
    CrmAdapter,
    CrmRequest,
    HubSpotAdapter,
    PipedriveAdapter,
    SalesforceAdapter,
    adapters_from,
)

__all__ = [
    "PROVIDERS",
    "CrmAdapter",
    "CrmRequest",
    "HubSpotAdapter",
    "PipedriveAdapter",
    "SalesforceAdapter",
    "adapters_from",
]
