from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.ingest.settings import IngestSettings
from services.reporting.settings import ReportingSettings
from shared.kafka.provision import choose_provider
from shared.service import ServiceDefinition
from shared.settings import PlatformSettings, ServiceSettings
from shared.system import load_all
from shared.testing.pytest_plugin import env


def test_service_defaults_are_embedded(tmp_path: Path) -> None:
    with env(
        LEADFLOW_DATA_DIR=str(tmp_path),
        LEADFLOW_INGEST_DATABASE_URL=None,
        LEADFLOW_INGEST_PORT=None,
    ):
        settings = IngestSettings()
    assert settings.port == 8081
    assert settings.database_url == f"sqlite:///{tmp_path}/ingest.db"
    assert settings.consumer_group == "leadflow-ingest"
    assert ReportingSettings().port == 8084


def test_each_service_reads_its_own_prefix() -> None:
    with env(LEADFLOW_INGEST_DATABASE_URL="postgresql://db/ingest", LEADFLOW_INGEST_PORT="9001"):
        ingest = IngestSettings()
        reporting = ReportingSettings()
    assert ingest.database_url == "postgresql://db/ingest"
    assert ingest.port == 9001
    assert reporting.database_url.endswith("reporting.db")


def test_plain_kafka_bootstrap_servers_is_honoured() -> None:
    with env(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:19092", LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=None):
        assert PlatformSettings().kafka_bootstrap_servers == "127.0.0.1:19092"


def test_broker_choice_is_external_then_docker_then_local() -> None:
    with env(LEADFLOW_KAFKA_PROVIDER=None):
        external = PlatformSettings(kafka_bootstrap_servers="127.0.0.1:1")
        assert choose_provider(external) == "external"
        none = PlatformSettings(kafka_bootstrap_servers=None)
        # This machine has no Docker engine: the probe must say so, quickly, not hang.
        expected = "docker" if os.path.exists("/var/run/docker.sock") else "local"
        assert choose_provider(none) == expected
        assert choose_provider(none, docker_probe=False) == "local"
    with env(LEADFLOW_KAFKA_PROVIDER="local"):
        assert choose_provider(external) == "local"
    with env(LEADFLOW_KAFKA_PROVIDER="external"), pytest.raises(ValueError, match="needs"):
        choose_provider(PlatformSettings(kafka_bootstrap_servers=None))
    with env(LEADFLOW_KAFKA_PROVIDER="kubernetes"), pytest.raises(ValueError, match="use"):
        choose_provider(none)


@pytest.mark.parametrize("definition", load_all(), ids=lambda definition: definition.name)
def test_a_service_that_gives_a_shared_setting_its_own_default_keeps_the_shared_bounds(
    definition: ServiceDefinition,
) -> None:
    settings_class = definition.settings
    assert isinstance(settings_class, type)
    assert issubclass(settings_class, ServiceSettings)
    for name, shared in ServiceSettings.model_fields.items():
        own = settings_class.model_fields[name]
        missing = [bound for bound in shared.metadata if bound not in own.metadata]
        assert not missing, f"{definition.name}.{name} drops {missing}"
    for name, out_of_bounds in [
        ("consumer_fetch_min_bytes", 0),
        ("consumer_fetch_max_wait_ms", -5),
        ("outbox_linger_ms", 1_001),
    ]:
        with pytest.raises(ValidationError, match=name):
            settings_class.model_validate({name: out_of_bounds})
