"""`leadflow demo` against a running system on `leadflow up`'s SQLite defaults: it fills it
through the public APIs, and the dashboard's figures are non-trivial and consistent."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.reporting.demo.quarter import REJECTION_REASONS, plan
from tests.conftest import SystemFactory

pytestmark = pytest.mark.e2e


def test_the_plan_is_a_quarter_of_hot_warm_and_cold_leads_with_feedback_in_the_past() -> None:
    end = datetime(2031, 6, 30, 12, tzinfo=UTC)
    quarter = plan(leads=600, end=end, days=91)
    assert quarter == plan(leads=600, end=end, days=91)  # the seed decides
    assert 550 <= len(quarter.leads) <= 600
    assert len({lead.email for lead in quarter.leads}) == len(quarter.leads)
    kinds = {
        kind: sum(1 for lead in quarter.leads if lead.kind == kind)
        for kind in ("hot", "warm", "cold")
    }
    assert all(count > 60 for count in kinds.values()), kinds
    moments = [touch.at for lead in quarter.leads for touch in lead.touches]
    assert min(moments) >= end - timedelta(days=91)
    assert max(moments) <= end
    steps = [step for lead in quarter.leads for step in lead.feedback]
    assert all(step.at <= end for step in steps)
    assert {step.status for step in steps} >= {
        "contacted",
        "accepted",
        "rejected",
        "converted",
        "won",
    }
    assert {step.rejection_reason for step in steps if step.rejection_reason} <= set(
        REJECTION_REASONS
    )
    # Only leads sales gets get sales feedback, after their first touch, in order.
    for lead in quarter.leads:
        if lead.feedback:
            assert lead.kind in ("hot", "warm")
            times = [step.at for step in lead.feedback]
            assert times == sorted(times)
            assert times[0] > lead.touches[0].at
    assert {target.scope for target in quarter.targets} == {"campaign", "team"}
    assert {campaign for campaign, _ in quarter.costs} == {c.campaign_id for c in quarter.campaigns}


@pytest.mark.timeout(600)
def test_leadflow_demo_fills_a_running_system_and_the_dashboard_tells_a_quarter(
    system_factory: SystemFactory,
) -> None:
    system = system_factory(backend="sqlite")
    environment = {
        **os.environ,
        # Ingest's database as `leadflow up` has it configured: the demo makes its API key
        # there with `leadflow apikey create`, as a newcomer's would.
        "LEADFLOW_INGEST_DATABASE_URL": system.database_urls["ingest"],
        **{
            f"LEADFLOW_{name.upper()}_PORT": str(system.process(name).port)
            for name in system.services
        },
    }
    environment.pop("LEADFLOW_DEMO_API_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "demo", "--leads", "150", "--wait-timeout", "240"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout
    assert f"dashboard          {system.url('reporting')}/" in output
    created = int(re.search(r"sent\s+(\d+) new leads", output).group(1))  # type: ignore[union-attr]
    assert created >= 140

    with httpx.Client(base_url=system.url("reporting"), timeout=60) as reporting:
        report = reporting.get("/v1/report").json()
        assert reporting.get("/").status_code == 200
        journey_url = re.search(r"a lead's journey\s+(\S+)", output).group(1)  # type: ignore[union-attr]
        journey = httpx.get(journey_url, timeout=30).json()
    assert report["volume"]["leads"] == created
    grades = {row["grade"]: row["leads"] for row in report["volume"]["grades"]}
    assert grades.get("A", 0) + grades.get("B", 0) > 0
    assert grades.get("C", 0) + grades.get("D", 0) > 0
    stages = [stage["leads"] for stage in report["funnel"]["stages"]]
    assert stages == sorted(stages, reverse=True)  # a funnel narrows
    ingested, mqls, accepted, opportunities, _won = stages
    assert ingested == created
    assert mqls > 0
    assert accepted > 0
    assert opportunities > 0
    assert report["funnel"]["pipeline"] > 0
    follow_up = report["follow_up"]
    assert follow_up["touched"] > 0
    assert follow_up["sla_met"] > 0
    # Feedback comes after the assignment it follows up, in the quarter's own time.
    assert follow_up["speed_median_seconds"] > 0
    assert follow_up["speed_p90_seconds"] >= follow_up["speed_median_seconds"]
    # Spread over the quarter, not all on the day the demo ran.
    assert len(report["speed_by_week"]) >= 6
    assert report["loop"]["rejected"] > 0
    reasons = {row["reason"] for row in report["loop"]["reasons"]}
    assert reasons <= set(REJECTION_REASONS)
    assert len(report["spend"]) >= 7
    assert all(row["cost"] > 0 for row in report["spend"])
    assert report["targets"]
    assert report["recent_leads"]
    assert all(lead["outcome"] for lead in report["recent_leads"])  # every lead routed
    assert journey["touchpoints"]
