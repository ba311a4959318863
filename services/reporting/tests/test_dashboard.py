"""The dashboard opened in headless Chromium (Debian's, driven by Playwright) shows the
scenario's numbers in its tiles and charts, loads nothing from outside the service, and
follows its filters. A screenshot is kept under test-artifacts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from services.reporting.tests import scenario
from services.reporting.tests.test_api import enter_costs_and_targets
from services.reporting.tests.test_read_model import apply_all
from shared.http import create_app
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing.pytest_plugin import DatabaseFactory, serve_app, service_settings

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (scripts/ensure-prereqs.sh installs it)",
)


@pytest.fixture
async def dashboard_url(
    service_definition: ServiceDefinition, database_factory: DatabaseFactory
) -> AsyncIterator[str]:
    database = database_factory.create("sqlite", service_definition)
    apply_all(database, scenario.events())
    runtime = ServiceRuntime(
        service_definition, service_settings(service_definition, database=database)
    )
    try:
        async with serve_app(create_app(runtime, manage_runtime=False)) as url:
            async with httpx.AsyncClient(base_url=url) as client:
                await enter_costs_and_targets(client)
            yield url
    finally:
        database_factory.drop(database)


async def chart(page: Page, name: str) -> Any:
    return await page.evaluate(
        """name => {
            const chart = window.leadflow.charts[name];
            return {labels: chart.data.labels,
                    datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data}))};
        }""",
        name,
    )


async def text(page: Page, element_id: str) -> str:
    return (await page.locator(f"#{element_id}").inner_text()).strip()


async def check_tiles(page: Page) -> None:
    assert await text(page, "kpi-leads") == "7"
    assert await text(page, "kpi-leads-sub") == "3 returning touchpoints"
    assert await text(page, "kpi-mqls") == "6"
    assert await text(page, "kpi-mqls-sub") == "86% of leads"
    assert await text(page, "kpi-opportunities") == "2"
    assert await text(page, "kpi-won") == "1 won"
    assert await text(page, "kpi-pipeline") == "15,000"
    assert await text(page, "kpi-revenue") == "revenue 12,000"
    assert await text(page, "kpi-speed") == "2.0 h"
    assert await text(page, "kpi-speed-sub") == "median · p90 17.6 h"
    assert await text(page, "kpi-sla") == "71%"
    assert await text(page, "kpi-sla-sub") == "5 met · 2 breached"
    assert await text(page, "kpi-waiting") == "1"
    assert await text(page, "kpi-waiting-sub") == "longest 84.0 d"


async def check_charts(page: Page) -> None:
    funnel = await chart(page, "funnel")
    assert funnel["labels"] == ["ingested", "mql", "accepted", "opportunity", "won"]
    assert funnel["datasets"][0]["data"] == [7, 6, 2, 2, 1]
    speed = await chart(page, "speed")
    assert speed["labels"] == ["2026-01-05", "2026-02-02"]
    assert speed["datasets"][0]["data"] == [2, 1.25]  # median hours
    assert speed["datasets"][1]["data"] == [22.8, 1.85]  # 82 080 s, 6 660 s
    sla = await chart(page, "sla")
    assert (sla["labels"], sla["datasets"][0]["data"]) == (["met", "breached"], [5, 2])
    rejections = await chart(page, "rejections")
    assert rejections["labels"] == ["directory", "webinar"]
    assert {d["label"]: d["data"] for d in rejections["datasets"]} == {
        "bad_data": [1, 0],
        "no_timeframe": [0, 1],
        "wrong_target": [0, 1],
    }
    attribution = await chart(page, "attribution")
    assert attribution["labels"] == ["directory", "webinar", "tradeshow"]
    assert attribution["datasets"][0]["data"] == [8000, 6000, 1000]  # W-shaped
    assert attribution["datasets"][1]["data"] == [3600, 7200, 1200]
    assert await text(page, "model-name") == "W-shaped"
    targets = await chart(page, "targets")
    assert targets["labels"] == ["webinar 2026-Q1", "emea 2026-Q1"]
    assert [d["data"] for d in targets["datasets"]] == [[75, 80], [100, 80], [133.3, 125]]
    campaigns = await page.locator("#campaigns-table tbody tr").all_inner_texts()
    assert campaigns[2].split("\t") == [
        "webinar",
        "6,000",
        "3",
        "3",
        "1",
        "2,000",
        "2,000",
        "6,000",
        "6,000",
        "7,200",
        "1.20\u00d7",  # times
    ]
    # The recent leads, newest first: L9 (02-03), rejected as bad data by r3 within its SLA.
    leads = await page.locator("#leads-table tbody tr").all_inner_texts()
    assert len(leads) == 7
    assert leads[0].split("\t") == [
        "2026-02-03 10:00",
        "directory",
        "directory",
        "B",
        "mql",
        "assigned",
        "R3",
        "americas",
        "2026-02-04 10:02",
        "met",
    ]
    link = await page.locator("#leads-table tbody tr >> nth=0 >> a").get_attribute("href")
    assert link == f"v1/leads/{scenario.LEADS['L9']}"


async def test_the_dashboard_shows_the_scenarios_numbers(dashboard_url: str) -> None:
    requested: list[str] = []
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            query = f"quarter=2026-Q1&model=w_shaped&as_of={scenario.AS_OF.isoformat()}"
            await page.goto(f"{dashboard_url}/?{query.replace('+', '%2B')}")
            await page.wait_for_selector("body[data-ready=true]")

            assert await page.locator("#error").is_hidden()
            await check_tiles(page)
            await check_charts(page)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "reporting-dashboard.png", full_page=True)

            # A filter chosen on the page: the figures follow, and so does the address.
            await page.select_option("select[name=campaign]", "webinar")
            await page.wait_for_selector("body[data-ready=true]")
            assert await text(page, "kpi-leads") == "3"
            assert (await chart(page, "funnel"))["datasets"][0]["data"] == [3, 3, 1, 1, 1]
            assert "campaign=webinar" in page.url
            csv_link = await page.locator("a.csv[data-metric=funnel]").get_attribute("href")
            assert csv_link is not None
            assert "campaign=webinar" in csv_link
        finally:
            await browser.close()
    assert problems == []
    # Everything came from the service itself: no CDN, no other host.
    assert requested
    assert all(url.startswith(dashboard_url) for url in requested), requested


async def test_the_dashboard_files_are_served_and_nothing_else(dashboard_url: str) -> None:
    async with httpx.AsyncClient(base_url=dashboard_url) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "static/vendor/chart.umd.min.js" in page.text
        script = await client.get("/static/vendor/chart.umd.min.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "Chart.js v4" in script.text[:200]
        for outside in ("/static/../service.py", "/static/%2e%2e/models.py", "/static/nope.js"):
            assert (await client.get(outside)).status_code == 404
