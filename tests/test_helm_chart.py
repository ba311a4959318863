"""The Helm chart: it lints, renders valid Kubernetes objects, and keeps the house rules
(probes, secrets out of ConfigMaps, migrations and topics before the rollout)."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import REPO_ROOT
from shared.system import SERVICES
from tests.k8s_schemas import KUBERNETES_VERSION, schema_location

CHART = REPO_ROOT / "deploy" / "k8s" / "leadflow"
VALUES = sorted(CHART.glob("ci/*-values.yaml"))
TOOLS = REPO_ROOT / ".data" / "tools" / "bin"


def tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    local = TOOLS / name
    return str(local) if local.exists() else None


HELM = tool("helm")
KUBECONFORM = tool("kubeconform")
pytestmark = pytest.mark.skipif(
    HELM is None,
    reason="helm is not installed and could not be built (scripts/ensure-chart-tools.sh): "
    "the chart checks are skipped",
)

Manifest = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, check=False)


def render(values: Path, *extra: str) -> list[Manifest]:
    result = helm(
        "template", "leadflow", str(CHART), "--namespace", "sales", "-f", str(values), *extra
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def kubeconform(manifests: list[Manifest], cache: Path) -> subprocess.CompletedProcess[str]:
    assert KUBECONFORM is not None
    return subprocess.run(
        [
            KUBECONFORM,
            "-strict",
            "-summary",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            schema_location(cache),
            "-skip",
            "ServiceMonitor",
        ],
        input=yaml.safe_dump_all(manifests),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def schema_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("k8s-schemas")


@pytest.mark.parametrize("values", VALUES, ids=lambda path: path.stem)
def test_the_chart_lints(values: Path) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(KUBECONFORM is None, reason="kubeconform is not installed")
@pytest.mark.parametrize("values", VALUES, ids=lambda path: path.stem)
def test_rendered_objects_are_valid_kubernetes(values: Path, schema_cache: Path) -> None:
    result = kubeconform(render(values), schema_cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Invalid: 0, Errors: 0" in result.stdout


@pytest.mark.skipif(KUBECONFORM is None, reason="kubeconform is not installed")
def test_the_validation_catches_a_broken_object(schema_cache: Path) -> None:
    manifests = render(VALUES[0])
    broken = copy.deepcopy(manifests)
    deployment = of_kind(broken, "Deployment")[0]
    deployment["spec"]["replica"] = 2  # a typo Kubernetes would reject
    result = kubeconform(broken, schema_cache)
    assert result.returncode != 0
    assert "Invalid: 1" in result.stdout


@pytest.mark.parametrize("values", VALUES, ids=lambda path: path.stem)
def test_every_service_runs_with_probes_resources_and_a_graceful_drain(values: Path) -> None:
    manifests = render(values)
    deployments = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in of_kind(manifests, "Deployment")
    }
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        port = container["ports"][0]["containerPort"]
        assert container["args"] == ["serve", name, "--host", "0.0.0.0", "--port", str(port)]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]
        assert pod["terminationGracePeriodSeconds"] >= 30
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    services = {
        s["metadata"]["labels"]["app.kubernetes.io/component"]
        for s in of_kind(manifests, "Service")
    }
    assert services == set(SERVICES)


def test_two_replicas_by_default_and_a_disruption_budget_for_them() -> None:
    manifests = render(CHART / "ci" / "postgres-urls-values.yaml")  # reporting: one replica
    replicas = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["replicas"]
        for d in of_kind(manifests, "Deployment")
    }
    assert replicas == {"ingest": 2, "scoring": 2, "routing": 2, "reporting": 1, "delivery": 2}
    budgets = {
        b["metadata"]["labels"]["app.kubernetes.io/component"]
        for b in of_kind(manifests, "PodDisruptionBudget")
    }
    assert budgets == {"ingest", "scoring", "routing", "delivery"}


def test_secrets_go_into_secrets_and_never_into_config_maps() -> None:
    values = CHART / "ci" / "postgres-urls-values.yaml"
    manifests = render(values)
    secrets = {s["metadata"]["name"]: s["stringData"] for s in of_kind(manifests, "Secret")}
    assert secrets["leadflow-ingest"]["LEADFLOW_INGEST_DATABASE_URL"].startswith("postgresql://")
    assert secrets["leadflow-ingest"]["LEADFLOW_INGEST_HUBSPOT_CLIENT_SECRET"]
    for name in SERVICES:
        assert f"LEADFLOW_{name.upper()}_DATABASE_URL" in secrets[f"leadflow-{name}"]
    for config_map in of_kind(manifests, "ConfigMap"):
        for key, value in config_map["data"].items():
            assert "DATABASE_URL" not in key
            assert "SECRET" not in key
            assert "s3cret" not in value
    deployment = of_kind(manifests, "Deployment")[0]
    env_from = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": deployment["metadata"]["name"]}} in env_from


def test_database_urls_can_come_from_existing_secrets() -> None:
    manifests = render(CHART / "ci" / "existing-secrets-values.yaml")
    for secret in of_kind(manifests, "Secret"):
        assert not any("DATABASE_URL" in key for key in secret.get("stringData") or {})
    for deployment in of_kind(manifests, "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        service = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        [url] = [e for e in container["env"] if e["name"].endswith("_DATABASE_URL")]
        assert url["valueFrom"]["secretKeyRef"] == {"name": "leadflow-databases", "key": service}
        assert {"secretRef": {"name": "leadflow-shared-secrets"}} in container["envFrom"]


def test_topics_then_migrations_run_as_hooks_before_the_rollout() -> None:
    manifests = render(CHART / "ci" / "postgres-urls-values.yaml")

    def weight(manifest: Manifest) -> int:
        return int(manifest["metadata"]["annotations"]["helm.sh/hook-weight"])

    jobs = {job["metadata"]["name"]: job for job in of_kind(manifests, "Job")}
    assert set(jobs) == {"leadflow-topics", *(f"leadflow-{name}-migrate" for name in SERVICES)}
    for job in jobs.values():
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert jobs["leadflow-topics"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "topics"
    ]
    for name in SERVICES:
        job = jobs[f"leadflow-{name}-migrate"]
        assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate", name]
    # What the Jobs read exists before them: their Secrets, ConfigMaps and account are
    # hooks of a lower weight (regular objects are created only after the pre-install hooks).
    for kind in ("Secret", "ConfigMap", "ServiceAccount"):
        for manifest in of_kind(manifests, kind):
            assert weight(manifest) < min(weight(job) for job in jobs.values())


def test_topic_creation_can_be_left_to_the_cluster() -> None:
    manifests = render(CHART / "ci" / "existing-secrets-values.yaml")
    assert "leadflow-topics" not in {job["metadata"]["name"] for job in of_kind(manifests, "Job")}


def test_the_service_monitor_is_optional_and_scrapes_metrics() -> None:
    with_monitor = render(CHART / "ci" / "existing-secrets-values.yaml")
    [monitor] = of_kind(with_monitor, "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert of_kind(render(CHART / "ci" / "postgres-urls-values.yaml"), "ServiceMonitor") == []


def test_a_service_without_a_database_is_refused_naming_the_value() -> None:
    result = helm("template", "leadflow", str(CHART), "--set", "kafka.bootstrapServers=k:9092")
    assert result.returncode != 0
    # The first service in the chart's (alphabetical) order is the one named.
    assert "services.delivery needs databaseUrl or databaseUrlSecret" in result.stderr
