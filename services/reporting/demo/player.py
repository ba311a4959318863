"""Play a planned quarter into a running system, through the services' public APIs only.

Routing's configuration, a tuned rulebook (the default with the named accounts as target
accounts), web forms, the leads (forms, the JSON API, a CSV import of the purchased list)
with their touchpoints dated in the quarter, sales feedback, campaign costs and targets.

Time: every submission and piece of feedback carries its own time (``occurred_at``) in the
past. Ingest dates the events by it, scoring grades as of it, routing decides and starts the
SLA clock as of the score's time, and reporting derives every figure from the events' times,
so the dashboard shows the quarter as it happened. Each lead's feedback is sent right after
the lead, before its score has made its way through scoring: routing keeps feedback about a
lead it has not assigned yet and applies it in the transaction that assigns the lead, so the
clock is met or missed by the feedback's own time, never breached by the SLA worker first
because the feedback was still on its way. Leads sales never followed up are breached on the
worker's next poll and re-assigned then.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.reporting.demo.quarter import (
    PROGRAMS,
    REPS,
    TEAMS,
    TERRITORIES,
    PlannedLead,
    Quarter,
    Touch,
)

ACTOR = {"X-Actor": "leadflow-demo"}
RULEBOOK_NAME = "demo-quarter"
Echo = Callable[[str], None]


class DemoError(RuntimeError):
    """The system is not there, or refused what the demo sent."""


@dataclass
class Counts:
    created: int = 0
    merged: int = 0
    rejected: int = 0
    touches: int = 0
    feedback: int = 0
    imported: int = 0
    lead_ids: dict[str, str] = field(default_factory=dict)  # email -> lead id


@dataclass
class DemoResult:
    counts: Counts
    report: dict[str, Any]
    leads_before: int
    seconds: float


def _check(response: httpx.Response, what: str, *ok: int) -> httpx.Response:
    if response.status_code not in (ok or (200, 201, 202)):
        raise DemoError(f"{what}: {response.status_code} {response.text[:500]}")
    return response


async def _request(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """A request, retried a few times when the service is busy or restarting."""
    for attempt in range(5):
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TransportError:
            if attempt == 4:
                raise
        else:
            if response.status_code < 500 and response.status_code != 429:
                return response
            if attempt == 4:
                return response
        await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


class Player:
    def __init__(
        self,
        quarter: Quarter,
        *,
        urls: dict[str, str],
        api_key: str,
        concurrency: int = 4,
        echo: Echo = print,
    ) -> None:
        self.quarter = quarter
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.api_key = api_key
        self.concurrency = concurrency
        self.echo = echo
        self.counts = Counts()
        self._forms: set[str] = set()

    # ------------------------------------------------------------------ the whole run

    async def run(self, *, wait_timeout: float = 900.0) -> DemoResult:
        started = time.monotonic()
        timeout = httpx.Timeout(60.0, connect=10.0)
        async with httpx.AsyncClient(timeout=timeout) as client:
            await self.check_ready(client)
            before = await self.lead_count(client)
            await self.configure_routing(client)
            await self.tune_rulebook(client)
            importing = asyncio.create_task(self.import_purchased_lists(client))
            await self.play_leads(client)
            await importing
            await self.enter_costs_and_targets(client)
            self.echo("Waiting for scoring, routing and reporting to catch up ...")
            report = await self.wait_settled(
                client, expected=before + self.counts.created, timeout=wait_timeout
            )
        return DemoResult(self.counts, report, before, time.monotonic() - started)

    async def check_ready(self, client: httpx.AsyncClient) -> None:
        for name in ("ingest", "scoring", "routing", "reporting"):
            url = self.urls[name]
            try:
                response = await client.get(f"{url}/readyz", timeout=5)
            except httpx.TransportError as error:
                raise DemoError(
                    f"{name} does not answer at {url} ({error}): start the system first "
                    "(`make run`), or pass its URL"
                ) from None
            if response.status_code != 200:
                raise DemoError(f"{name} at {url} is not ready: {response.text[:300]}")

    async def lead_count(self, client: httpx.AsyncClient) -> int:
        response = _check(
            await _request(client, "GET", f"{self.urls['reporting']}/v1/metrics/volume"),
            "reporting volume",
        )
        return int(response.json()["leads"])

    # ------------------------------------------------------------------ configuration

    async def _upsert(
        self, client: httpx.AsyncClient, plural: str, key: str, body: dict[str, Any]
    ) -> None:
        base = f"{self.urls['routing']}/v1/{plural}"
        response = await _request(client, "POST", base, json=body, headers=ACTOR)
        if response.status_code == 409:
            response = await _request(
                client, "PUT", f"{base}/{body[key]}", json=body, headers=ACTOR
            )
        _check(response, f"routing {plural} {body[key]}")

    async def configure_routing(self, client: httpx.AsyncClient) -> None:
        for territory in TERRITORIES:
            await self._upsert(client, "territories", "territory_id", territory)
        for team in TEAMS:
            await self._upsert(client, "teams", "team_id", team)
        for rep in REPS:
            await self._upsert(client, "reps", "rep_id", rep)
        for named in self.quarter.named_accounts:
            await self._upsert(client, "accounts", "domain", named)
        for program in PROGRAMS:
            await self._upsert(client, "programs", "program_id", program)
        self.echo(
            f"routing: {len(TERRITORIES)} territories, {len(TEAMS)} teams, {len(REPS)} reps, "
            f"{len(self.quarter.named_accounts)} named accounts, {len(PROGRAMS)} nurture programs"
        )

    async def tune_rulebook(self, client: httpx.AsyncClient) -> None:
        """The active rulebook with the named accounts on its target account list."""
        scoring = self.urls["scoring"]
        versions = _check(await _request(client, "GET", f"{scoring}/v1/rulebooks"), "rulebooks")
        listed = versions.json()
        if any(v["name"] == RULEBOOK_NAME and v["active"] for v in listed):
            self.echo(f"scoring: rulebook {RULEBOOK_NAME!r} is active already")
            return
        active = next((v for v in listed if v["active"]), None)
        if active is None:
            self.echo("scoring: no active rulebook yet; the default will be used")
            return
        detail = _check(
            await _request(client, "GET", f"{scoring}/v1/rulebooks/{active['version']}"),
            "rulebook",
        ).json()
        source: str = detail["source"]
        domains = ", ".join(account["domain"] for account in self.quarter.named_accounts)
        tuned, found = re.subn(
            r"(?m)^(\s*)target_accounts: \[\]", rf"\1target_accounts: [{domains}]", source
        )
        if not found or detail["media_type"] != "yaml":
            self.echo("scoring: the active rulebook has target accounts already: kept as it is")
            return
        tuned = re.sub(r"(?m)^name: .*$", f"name: {RULEBOOK_NAME}", tuned, count=1)
        created = _check(
            await _request(
                client,
                "POST",
                f"{scoring}/v1/rulebooks",
                content=tuned.encode(),
                headers={"Content-Type": "application/yaml"},
            ),
            "rulebook post",
            201,
        ).json()
        version = created["version"]
        _check(
            await _request(client, "POST", f"{scoring}/v1/rulebooks/{version}:activate"),
            "rulebook activation",
            200,
            202,
        )
        self.echo(
            f"scoring: rulebook {version} {RULEBOOK_NAME!r} active: the default, with the "
            f"{len(self.quarter.named_accounts)} named accounts as target accounts"
        )

    # ------------------------------------------------------------------ leads

    async def _form(self, client: httpx.AsyncClient, touch: Touch) -> str:
        form_id = f"{touch.campaign}--{touch.touchpoint_type}".replace("_", "-")
        if form_id not in self._forms:
            _check(
                await _request(
                    client,
                    "PUT",
                    f"{self.urls['ingest']}/v1/forms/{form_id}",
                    json={
                        "name": f"{touch.campaign} ({touch.touchpoint_type})",
                        "defaults": {
                            "source": touch.source,
                            "campaign": touch.campaign,
                            "touchpoint_type": touch.touchpoint_type,
                        },
                    },
                    headers={"X-API-Key": self.api_key},
                ),
                f"form {form_id}",
            )
            self._forms.add(form_id)
        return form_id

    async def _touch(self, client: httpx.AsyncClient, lead: PlannedLead, touch: Touch) -> None:
        body = {"email": lead.email, **lead.person, "occurred_at": touch.at.isoformat()}
        if touch.door == "form":
            form_id = await self._form(client, touch)
            # A browser posts a form: no API key.
            response = await _request(
                client, "POST", f"{self.urls['ingest']}/v1/forms/{form_id}", json=body
            )
        else:
            body.update(
                source=touch.source, campaign=touch.campaign, touchpoint_type=touch.touchpoint_type
            )
            response = await _request(
                client,
                "POST",
                f"{self.urls['ingest']}/v1/leads",
                json=body,
                headers={"X-API-Key": self.api_key},
            )
        if response.status_code == 422:
            self.counts.rejected += 1
            return
        answer = _check(response, f"lead {lead.email}").json()
        self.counts.touches += 1
        self.counts.lead_ids[lead.email] = answer["lead_id"]
        if answer["status"] == "created":
            self.counts.created += 1
        else:
            self.counts.merged += 1

    async def _feedback(self, client: httpx.AsyncClient, lead: PlannedLead) -> None:
        lead_id = self.counts.lead_ids.get(lead.email)
        if lead_id is None:
            return
        for step in lead.feedback:
            body: dict[str, Any] = {
                "lead_id": lead_id,
                "status": step.status,
                "source": "crm",
                "occurred_at": step.at.isoformat(),
            }
            if step.rejection_reason:
                body["rejection_reason"] = step.rejection_reason
            if step.amount is not None:
                body["amount"] = str(step.amount)
                body["opportunity_id"] = f"opp-{lead_id[:8]}"
            _check(
                await _request(
                    client,
                    "POST",
                    f"{self.urls['ingest']}/v1/feedback",
                    json=body,
                    headers={"X-API-Key": self.api_key},
                ),
                f"feedback {step.status} of {lead.email}",
            )
            self.counts.feedback += 1

    async def play_leads(self, client: httpx.AsyncClient) -> None:
        queue: asyncio.Queue[PlannedLead] = asyncio.Queue()
        playable = [lead for lead in self.quarter.leads if lead.touches[0].door != "import"]
        for lead in playable:
            queue.put_nowait(lead)
        total = len(playable)
        done = 0

        async def worker() -> None:
            nonlocal done
            while True:
                try:
                    lead = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                # The lead's touchpoints in order, then at once what sales said about it,
                # so routing holds the feedback when the score arrives.
                for touch in lead.touches:
                    await self._touch(client, lead, touch)
                await self._feedback(client, lead)
                done += 1
                if done % 500 == 0:
                    self.echo(f"  {done} of {total} leads sent")

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        self.echo(
            f"ingest: {self.counts.created} leads created, {self.counts.merged} touchpoints "
            f"on known leads, {self.counts.feedback} pieces of sales feedback"
            + (f", {self.counts.rejected} refused" if self.counts.rejected else "")
        )

    async def import_purchased_lists(self, client: httpx.AsyncClient) -> None:
        """Leads of import campaigns as one CSV file per campaign, as a list vendor sends it."""
        by_campaign: dict[str, list[PlannedLead]] = {}
        for lead in self.quarter.leads:
            if lead.touches[0].door == "import":
                by_campaign.setdefault(lead.campaign, []).append(lead)
        for campaign, leads in by_campaign.items():
            buffer = io.StringIO()
            columns = ["Email", "First Name", "Last Name", "Job Title", "Company", "Employees",
                       "Industry", "Country", "Phone", "Date"]  # fmt: skip
            writer = csv.writer(buffer)
            writer.writerow(columns)
            for lead in leads:
                person = lead.person
                writer.writerow(
                    [
                        lead.email,
                        person.get("first_name", ""),
                        person.get("last_name", ""),
                        person.get("title", ""),
                        person.get("company", ""),
                        person.get("employees", ""),
                        person.get("industry", ""),
                        person.get("country", ""),
                        person.get("phone", ""),
                        lead.touches[0].at.isoformat(),
                    ]
                )
            touch = leads[0].touches[0]
            accepted = _check(
                await _request(
                    client,
                    "POST",
                    f"{self.urls['ingest']}/v1/imports",
                    params={
                        "source": touch.source,
                        "campaign": campaign,
                        "touchpoint_type": touch.touchpoint_type,
                    },
                    content=buffer.getvalue().encode(),
                    headers={"X-API-Key": self.api_key, "Content-Type": "text/csv"},
                ),
                f"import of {campaign}",
            ).json()
            report = await self._import_finished(client, accepted["import_id"])
            self.counts.created += int(report["created"])
            self.counts.merged += int(report["merged"])
            self.counts.imported += int(report["created"]) + int(report["merged"])
            self.echo(
                f"ingest: imported {campaign}.csv: {report['created']} created, "
                f"{report['merged']} merged, {report['rejected']} refused"
            )

    async def _import_finished(self, client: httpx.AsyncClient, import_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            report: dict[str, Any] = _check(
                await _request(
                    client,
                    "GET",
                    f"{self.urls['ingest']}/v1/imports/{import_id}",
                    params={"limit": 0},
                    headers={"X-API-Key": self.api_key},
                ),
                "import report",
            ).json()
            if report.get("finished_at"):
                return report
            await asyncio.sleep(0.5)
        raise DemoError(f"import {import_id} did not finish")

    # ------------------------------------------------------------------ reporting input

    async def enter_costs_and_targets(self, client: httpx.AsyncClient) -> None:
        reporting = self.urls["reporting"]
        for (campaign, quarter), amount in self.quarter.costs.items():
            _check(
                await _request(
                    client,
                    "PUT",
                    f"{reporting}/v1/costs/{campaign}/{quarter}",
                    json={"amount": str(amount), "note": "leadflow demo"},
                ),
                f"cost of {campaign}",
            )
        for target in self.quarter.targets:
            _check(
                await _request(
                    client,
                    "PUT",
                    f"{reporting}/v1/targets/{target.quarter}/{target.scope}/{target.scope_id}",
                    json={
                        "leads": target.leads,
                        "mqls": target.mqls,
                        "conversion": target.conversion,
                    },
                ),
                f"target of {target.scope_id}",
            )
        self.echo(
            f"reporting: {len(self.quarter.costs)} campaign costs, "
            f"{len(self.quarter.targets)} quarterly targets"
        )

    async def wait_settled(
        self, client: httpx.AsyncClient, *, expected: int, timeout: float
    ) -> dict[str, Any]:
        """The report once every created lead is in and the figures stopped moving."""
        deadline = time.monotonic() + timeout
        last: tuple[Any, ...] | None = None
        steady = 0
        report: dict[str, Any] = {}
        while time.monotonic() < deadline:
            report = _check(
                await _request(client, "GET", f"{self.urls['reporting']}/v1/report"), "report"
            ).json()
            follow_up = report["follow_up"]
            shape = (
                report["volume"]["leads"],
                tuple(sorted((g["grade"], g["leads"]) for g in report["volume"]["grades"])),
                tuple(stage["leads"] for stage in report["funnel"]["stages"]),
                follow_up["assigned"],
                follow_up["touched"],
                follow_up["sla_met"],
                follow_up["sla_breached"],
                follow_up["reassignments"],
            )
            # Leads are sent oldest first: once the newest are routed, routing is through.
            newest_routed = all(lead["outcome"] for lead in report["recent_leads"])
            if shape[0] >= expected and newest_routed and shape == last:
                steady += 1
                if steady >= 3:
                    return report
            else:
                steady = 0
            last = shape
            await asyncio.sleep(2.0)
        raise DemoError(
            f"the system did not settle in {timeout:.0f}s: {report.get('volume', {})} "
            f"(expected {expected} leads)"
        )


def summary(result: DemoResult, urls: dict[str, str]) -> list[str]:
    """What the demo did and where to look, as lines to print."""
    report = result.report
    volume, funnel, follow_up = report["volume"], report["funnel"], report["follow_up"]
    stages = {stage["stage"]: stage["leads"] for stage in funnel["stages"]}

    def hours(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds / 3600:.1f} h"

    compliance = follow_up["sla_compliance"]
    counts = result.counts
    example = next(iter(counts.lead_ids.values()), None)
    reporting = urls["reporting"]
    lines = [
        "",
        f"The demo quarter is in ({result.seconds:.0f} s):",
        f"  sent       {counts.created} new leads ({counts.imported} from purchased lists), "
        f"{counts.touches + counts.imported} touchpoints, {counts.feedback} pieces of feedback",
        f"  leads      {volume['leads']} on the dashboard"
        + (f" ({result.leads_before} were there before)" if result.leads_before else ""),
        f"  funnel     {stages.get('mql', 0)} MQLs, {stages.get('accepted', 0)} accepted, "
        f"{stages.get('opportunity', 0)} opportunities, {stages.get('won', 0)} won",
        f"  money      pipeline {funnel['pipeline']:,.0f}, revenue {funnel['revenue']:,.0f}",
        f"  follow-up  speed to first touch {hours(follow_up['speed_median_seconds'])} median, "
        f"SLA compliance {'-' if compliance is None else f'{compliance:.0%}'}, "
        f"{follow_up['reassignments']} re-assignments, {follow_up['waiting']} waiting",
        "",
        "Where to look:",
        f"  dashboard          {reporting}/",
        *([f"  a lead's journey   {reporting}/v1/leads/{example}"] if example else []),
        f"  routing            {urls['routing']}/docs  (teams, reps, {urls['routing']}/v1/audit)",
        f"  rulebooks          {urls['scoring']}/v1/rulebooks",
        f"  ingest             {urls['ingest']}/docs",
    ]
    return lines
