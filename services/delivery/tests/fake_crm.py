"""A local stand-in for HubSpot, Salesforce and Pipedrive: it checks each owner change
against the provider's documented request format and answers with the provider's documented
response shapes (success and errors). A request that breaks the format is recorded as a
violation and refused, so a test that sends one cannot pass."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HUBSPOT_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
SALESFORCE_TOKEN = "00D5e000000ABCD!AQ4AQFakeSessionToken"
SALESFORCE_VERSION = "v62.0"
PIPEDRIVE_TOKEN = "659c9fddb16335e48cc67114694b52074e812e03"


@dataclass
class Change:
    provider: str
    record_id: str
    owner_id: str | int


@dataclass
class FakeCrm:
    contacts: set[str] = field(default_factory=set)  # HubSpot contact ids that exist
    leads: set[str] = field(default_factory=set)  # Salesforce Lead ids
    persons: set[int] = field(default_factory=set)  # Pipedrive person ids
    changes: list[Change] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # Scripted answers per provider, taken before the normal ones: "rate_limited", ...
    script: dict[str, list[str]] = field(default_factory=dict)
    url: str = ""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/crm/v3/objects/contacts/{id}", self.hubspot, methods=["PATCH"]),
                Route(
                    "/services/data/{version}/sobjects/Lead/{id}",
                    self.salesforce,
                    methods=["PATCH"],
                ),
                Route("/api/v2/persons/{id}", self.pipedrive, methods=["PATCH"]),
            ]
        )

    def _refuse(self, violation: str) -> Response:
        self.violations.append(violation)
        return JSONResponse({"violation": violation}, status_code=400)

    async def _json(self, request: Request) -> Any:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            return json.loads(await request.body())
        except ValueError:
            return None

    def _scripted(self, provider: str) -> str | None:
        queue = self.script.get(provider)
        return queue.pop(0) if queue else None

    # -------------------------------------------------------------- HubSpot CRM v3

    async def hubspot(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {HUBSPOT_TOKEN}":
            return JSONResponse(
                {
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "correlationId": str(uuid.uuid4()),
                    "category": "INVALID_AUTHENTICATION",
                },
                status_code=401,
            )
        body = await self._json(request)
        properties = body.get("properties") if isinstance(body, dict) else None
        if (
            not isinstance(properties, dict)
            or set(body) != {"properties"}
            or set(properties) != {"hubspot_owner_id"}
            or not isinstance(properties["hubspot_owner_id"], str)
        ):
            return self._refuse(f"hubspot body {body!r}")
        if self._scripted("hubspot") == "rate_limited":
            return JSONResponse(
                {
                    "status": "error",
                    "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": str(uuid.uuid4()),
                    "policyName": "SECONDLY",
                },
                status_code=429,
            )
        contact = request.path_params["id"]
        if contact not in self.contacts:
            return JSONResponse(
                {
                    "status": "error",
                    "message": "resource not found",
                    "correlationId": str(uuid.uuid4()),
                    "category": "OBJECT_NOT_FOUND",
                },
                status_code=404,
            )
        self.changes.append(Change("hubspot", contact, properties["hubspot_owner_id"]))
        return JSONResponse(
            {
                "id": contact,
                "properties": {
                    "hubspot_owner_id": properties["hubspot_owner_id"],
                    "lastmodifieddate": "2026-03-02T09:00:00.000Z",
                    "hs_object_id": contact,
                },
                "createdAt": "2026-02-01T10:00:00.000Z",
                "updatedAt": "2026-03-02T09:00:00.000Z",
                "archived": False,
            }
        )

    # -------------------------------------------------------------- Salesforce REST

    async def salesforce(self, request: Request) -> Response:
        if request.path_params["version"] != SALESFORCE_VERSION:
            return self._refuse(f"salesforce version {request.path_params['version']}")
        if request.headers.get("authorization") != f"Bearer {SALESFORCE_TOKEN}":
            return JSONResponse(
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                status_code=401,
            )
        body = await self._json(request)
        if not isinstance(body, dict) or set(body) != {"OwnerId"}:
            return self._refuse(f"salesforce body {body!r}")
        owner = body["OwnerId"]
        lead = request.path_params["id"]
        if lead not in self.leads:
            return JSONResponse(
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                status_code=404,
            )
        if not (isinstance(owner, str) and owner.startswith("005") and len(owner) in (15, 18)):
            return JSONResponse(
                [
                    {
                        "message": f"Owner ID: id value of incorrect type: {owner}",
                        "errorCode": "MALFORMED_ID",
                        "fields": ["OwnerId"],
                    }
                ],
                status_code=400,
            )
        self.changes.append(Change("salesforce", lead, owner))
        return Response(status_code=204)

    # -------------------------------------------------------------- Pipedrive API v2

    async def pipedrive(self, request: Request) -> Response:
        if request.headers.get("x-api-token") != PIPEDRIVE_TOKEN:
            return JSONResponse(
                {
                    "success": False,
                    "error": "unauthorized access",
                    "errorCode": 401,
                    "error_info": "Please check developers.pipedrive.com for more information "
                    "about Pipedrive API.",
                },
                status_code=401,
            )
        body = await self._json(request)
        if (
            not isinstance(body, dict)
            or set(body) != {"owner_id"}
            or not isinstance(body["owner_id"], int)
        ):
            return self._refuse(f"pipedrive body {body!r}")
        if self._scripted("pipedrive") == "unavailable":
            return JSONResponse(
                {
                    "success": False,
                    "error": "Requested service is not available",
                    "error_info": "Please check developers.pipedrive.com",
                    "data": None,
                    "additional_data": None,
                },
                status_code=503,
                headers={"retry-after": "30"},
            )
        person = int(request.path_params["id"])
        if person not in self.persons:
            return JSONResponse(
                {
                    "success": False,
                    "error": "Person not found",
                    "error_info": "Please check developers.pipedrive.com for more information "
                    "about Pipedrive API.",
                    "data": None,
                    "additional_data": None,
                },
                status_code=404,
            )
        self.changes.append(Change("pipedrive", str(person), body["owner_id"]))
        return JSONResponse(
            {
                "success": True,
                "data": {
                    "id": person,
                    "name": "Ada Lovelace",
                    "owner_id": body["owner_id"],
                    "org_id": None,
                    "add_time": "2026-02-01T10:00:00Z",
                    "update_time": "2026-03-02T09:00:00Z",
                    "is_deleted": False,
                },
            }
        )
