"""Set the owner of a lead's CRM record, per provider, as each provider documents it.

* HubSpot: ``PATCH /crm/v3/objects/contacts/{contactId}`` with
  ``{"properties": {"hubspot_owner_id": "<owner id>"}}``, a Bearer token (private app or
  OAuth); 200 with the contact, errors as ``{"status": "error", "message": ..., "category":
  ..., "correlationId": ...}``.
* Salesforce: ``PATCH /services/data/vXX.X/sobjects/Lead/{id}`` with ``{"OwnerId": "005..."}``
  on the org's instance URL, a Bearer token; 204 without a body, errors as a list of
  ``{"message": ..., "errorCode": ..., "fields": [...]}``.
* Pipedrive: ``PATCH /api/v2/persons/{id}`` with ``{"owner_id": <user id>}``, the API token in
  the ``x-api-token`` header; 200 with ``{"success": true, "data": {...}}``, errors as
  ``{"success": false, "error": ..., "error_info": ...}``.

An adapter only builds the request and reads the answer; the writer sends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from services.delivery.settings import DeliverySettings

PROVIDERS: tuple[str, ...] = ("hubspot", "salesforce", "pipedrive")


class UnusableOwner(ValueError):
    """An owner id the provider cannot take: the write-back can never succeed."""


@dataclass(frozen=True)
class CrmRequest:
    method: str
    url: str
    headers: dict[str, str]
    json: dict[str, Any] = field(default_factory=dict)


class CrmAdapter(Protocol):
    @property
    def provider(self) -> str: ...

    def owner_request(self, record_id: str, owner_id: str) -> CrmRequest:
        """The request that makes ``owner_id`` the owner of ``record_id``."""
        ...

    def error_of(self, status_code: int, body: bytes) -> str | None:
        """``None`` when the answer says the owner was set; otherwise what went wrong."""
        ...


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _path_segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


@dataclass(frozen=True)
class HubSpotAdapter:
    access_token: str
    base_url: str = "https://api.hubapi.com"
    provider: str = "hubspot"

    def owner_request(self, record_id: str, owner_id: str) -> CrmRequest:
        return CrmRequest(
            method="PATCH",
            url=f"{self.base_url.rstrip('/')}/crm/v3/objects/contacts/{_path_segment(record_id)}",
            headers={
                "Authorization": f"Bearer {self.access_token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            json={"properties": {"hubspot_owner_id": owner_id}},
        )

    def error_of(self, status_code: int, body: bytes) -> str | None:
        if 200 <= status_code <= 299:
            return None
        document = _json(body)
        if isinstance(document, dict):
            category = document.get("category") or document.get("errorType")
            message = document.get("message") or "no message"
            return f"{category}: {message}" if category else str(message)
        return f"HTTP {status_code}"


@dataclass(frozen=True)
class SalesforceAdapter:
    access_token: str
    instance_url: str
    api_version: str = "v62.0"
    provider: str = "salesforce"

    def owner_request(self, record_id: str, owner_id: str) -> CrmRequest:
        base = self.instance_url.rstrip("/")
        return CrmRequest(
            method="PATCH",
            url=(
                f"{base}/services/data/{self.api_version}/sobjects/Lead/{_path_segment(record_id)}"
            ),
            headers={
                "Authorization": f"Bearer {self.access_token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            json={"OwnerId": owner_id},
        )

    def error_of(self, status_code: int, body: bytes) -> str | None:
        if 200 <= status_code <= 299:
            return None
        document = _json(body)
        if isinstance(document, list) and document and isinstance(document[0], dict):
            return "; ".join(
                f"{error.get('errorCode', 'ERROR')}: {error.get('message', '')}"
                for error in document
                if isinstance(error, dict)
            )
        return f"HTTP {status_code}"


@dataclass(frozen=True)
class PipedriveAdapter:
    api_token: str
    base_url: str = "https://api.pipedrive.com"
    provider: str = "pipedrive"

    def owner_request(self, record_id: str, owner_id: str) -> CrmRequest:
        if not owner_id.isdigit():
            raise UnusableOwner(f"a Pipedrive owner id is a user id (an integer), not {owner_id!r}")
        return CrmRequest(
            method="PATCH",
            url=f"{self.base_url.rstrip('/')}/api/v2/persons/{_path_segment(record_id)}",
            headers={
                "x-api-token": self.api_token,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            json={"owner_id": int(owner_id)},
        )

    def error_of(self, status_code: int, body: bytes) -> str | None:
        document = _json(body)
        if 200 <= status_code <= 299:
            if isinstance(document, dict) and document.get("success") is False:
                return str(document.get("error") or "success: false")
            return None
        if isinstance(document, dict) and document.get("error"):
            return str(document["error"])
        return f"HTTP {status_code}"


def adapters_from(settings: DeliverySettings) -> dict[str, CrmAdapter]:
    """The providers whose credentials are configured."""
    adapters: dict[str, CrmAdapter] = {}
    if settings.hubspot_access_token:
        adapters["hubspot"] = HubSpotAdapter(
            access_token=settings.hubspot_access_token.get_secret_value(),
            base_url=settings.hubspot_base_url,
        )
    if settings.salesforce_access_token and settings.salesforce_instance_url:
        adapters["salesforce"] = SalesforceAdapter(
            access_token=settings.salesforce_access_token.get_secret_value(),
            instance_url=settings.salesforce_instance_url,
            api_version=settings.salesforce_api_version,
        )
    if settings.pipedrive_api_token:
        adapters["pipedrive"] = PipedriveAdapter(
            api_token=settings.pipedrive_api_token.get_secret_value(),
            base_url=settings.pipedrive_base_url,
        )
    return adapters
