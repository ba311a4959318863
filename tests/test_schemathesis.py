"""Schemathesis over every service's OpenAPI: no 5xx, and every 4xx names the field.

Each service runs as a process of the harness, on PostgreSQL and the real broker, and
schemathesis generates requests from the OpenAPI document the process serves
(``/openapi.json``): valid ones (positive mode) and invalid ones (negative mode), for every
operation, a bounded number of examples each (``LEADFLOW_FUZZ_EXAMPLES``, default 10: about
two and a half minutes on two shared cores; 25 found more and take twice as long), seeded
(``derandomize``) so that CI asks the same questions every run.

Every answer is checked:

* never a 5xx;
* a 4xx has FastAPI's validation shape, ``{"detail": [{"loc": [...], "msg": ..., "type":
  ...}]}``, each ``loc`` starting with where the bad part is (``body``, ``query``, ``path``,
  ``header``, ``cookie``) and each ``msg`` a reason.

Every operation is run to the end, and the test fails with the list of what went wrong, one
example (a curl command) per operation, status and problem.

Delivery sends HTTP to the URLs its subscriptions name, and the fuzzer makes up those URLs:
it runs in a system of its own, with no other service and so no events, so that it never
sends anything anywhere. The four others run together, so what the fuzzer sends to ingest
flows through them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from tests.conftest import _Factory, default_service_env
from tests.system import System

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("LEADFLOW_FUZZ_EXAMPLES", "10"))
LOCATIONS = {"body", "query", "path", "header", "cookie"}
PIPELINE = ("ingest", "scoring", "routing", "reporting")


@pytest.fixture(scope="module")
def system_options() -> dict[str, Any]:
    return {"services": PIPELINE, "service_env": default_service_env()}


@pytest.fixture(scope="module")
def delivery_system(
    kafka_bootstrap_servers: str,
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    factory = _Factory(
        bootstrap_servers=kafka_bootstrap_servers,
        postgres_url=postgres_url,
        workdir=tmp_path_factory.mktemp("delivery"),
    )
    try:
        yield factory(services=("delivery",))
    finally:
        factory.stop_all()


def field_problem(response: requests.Response | Any) -> str | None:
    """Why a 4xx does not name the field, or None when it does."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return "not JSON"
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list) or not detail:
        return f"detail is not a list of errors: {str(detail)[:200]}"
    for error in detail:
        if not isinstance(error, dict):
            return f"an error is not an object: {str(error)[:200]}"
        loc = error.get("loc")
        if not isinstance(loc, list) or not loc or loc[0] not in LOCATIONS:
            return f"loc does not say where: {loc!r}"
        if not isinstance(error.get("msg"), str) or not error["msg"]:
            return f"no msg: {error!r}"
    return None


@dataclass
class Findings:
    """What went wrong, one example per (operation, status, problem)."""

    seen: dict[tuple[str, int, str], str] = field(default_factory=dict)
    calls: int = 0

    def add(self, operation: str, status: int, problem: str, example: str) -> None:
        self.seen.setdefault((operation, status, problem), example)

    def report(self) -> str:
        return "\n\n".join(
            f"{operation} -> {status}: {problem}\n  {example}"
            for (operation, status, problem), example in sorted(self.seen.items())
        )


def fuzz(url: str, headers: dict[str, str]) -> Findings:
    """Every operation of the service at ``url``, in both modes; what went wrong."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    findings = Findings()
    session = requests.Session()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the service's own document does not hold together
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz_operation(
                    operation, mode, url=url, headers=headers, session=session, findings=findings
                )
            except Unsatisfiable:
                # Negative mode of an operation that takes nothing: nothing to get wrong.
                if mode is GenerationMode.POSITIVE:
                    raise
    return findings


def fuzz_operation(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    *,
    url: str,
    headers: dict[str, str],
    session: requests.Session,
    findings: Findings,
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=url, session=session, headers=headers, timeout=30)
        findings.calls += 1
        status = response.status_code
        problem: str | None = None
        if status >= 500:
            problem = f"server error: {response.content[:300]!r}"
        elif 400 <= status < 500:
            problem = field_problem(response)
        if problem is not None:
            example = case.as_curl_command(headers=headers)
            findings.add(operation.label, status, problem, example[:2000])

    run()


@pytest.mark.parametrize("service", [*PIPELINE, "delivery"])
def test_every_operation_answers_without_5xx_and_names_the_field(
    service: str, request: pytest.FixtureRequest
) -> None:
    system: System = request.getfixturevalue(
        "delivery_system" if service == "delivery" else "system"
    )
    findings = fuzz(system.url(service), system.headers(service))
    assert findings.calls > 0
    assert not findings.seen, f"{len(findings.seen)} problems:\n\n{findings.report()}"
