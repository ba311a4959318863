"""Clusters that authenticate: SASL over the local broker's SASL/PLAIN listener, and the TLS
options as far as they can be checked without a TLS broker."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlmodel import col

from shared.db import Database
from shared.kafka.admin import ensure_topics
from shared.kafka.client_options import KafkaSecurityError, client_options
from shared.kafka.provision import ProvisionedKafka
from shared.service import ServiceDefinition, ServiceRuntime
from shared.settings import PlatformSettings
from shared.testing import factories
from shared.testing.kafka_tools import eventually
from shared.testing.probe.models import Effect
from shared.testing.pytest_plugin import SASL_USER, running_runtime, service_settings
from shared.topics import CATALOG, LEADS_INGESTED, TopicNames


def sasl(user: str, password: str) -> PlatformSettings:
    return PlatformSettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username=user,
        kafka_sasl_password=SecretStr(password),
    )


def test_plaintext_is_the_default() -> None:
    assert client_options(PlatformSettings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_needs_a_user_and_a_password() -> None:
    with pytest.raises(KafkaSecurityError, match="LEADFLOW_KAFKA_SASL_USERNAME"):
        client_options(PlatformSettings(kafka_security_protocol="SASL_SSL"))
    options = client_options(sasl("svc", "pw"))
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "pw",
    }


def test_a_client_certificate_needs_its_key() -> None:
    settings = PlatformSettings(kafka_security_protocol="SSL", kafka_ssl_certfile=Path("c.pem"))
    with pytest.raises(KafkaSecurityError, match="KEYFILE"):
        client_options(settings)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_trusts_the_given_ca_and_verifies_the_broker(tmp_path: Path) -> None:
    key, cert = tmp_path / "ca.key", tmp_path / "ca.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=leadflow-test-ca",
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    options = client_options(
        PlatformSettings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="svc",
            kafka_sasl_password=SecretStr("pw"),
            kafka_ssl_cafile=cert,
        )
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [ca["subject"] for ca in context.get_ca_certs()] == [
        ((("commonName", "leadflow-test-ca"),),)
    ]


def sasl_listener(kafka: ProvisionedKafka) -> str:
    if kafka.local is None or not kafka.local.sasl_bootstrap_servers:
        pytest.skip("the cluster under test has no SASL listener of ours")
    return kafka.local.sasl_bootstrap_servers


@pytest.mark.kafka
async def test_a_wrong_password_is_refused(
    kafka: ProvisionedKafka, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = sasl_listener(kafka)
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await ensure_topics(
            bootstrap,
            TopicNames("denied"),
            [LEADS_INGESTED],
            options=client_options(sasl(SASL_USER[0], "wrong")),
        )
    # aiokafka says why only in its log.
    assert "SaslAuthenticationFailed" in caplog.text


@pytest.mark.kafka
async def test_a_service_runs_on_a_cluster_that_authenticates(
    kafka: ProvisionedKafka, service_definition: ServiceDefinition, database: Database
) -> None:
    bootstrap = sasl_listener(kafka)
    credentials = sasl(*SASL_USER)
    names = TopicNames("sasl" + SASL_USER[1][:8])
    await ensure_topics(
        bootstrap, names, CATALOG, partitions=1, options=client_options(credentials)
    )
    settings = service_settings(
        service_definition, database=database, topic_names=names, bootstrap_servers=bootstrap
    )
    platform = settings.platform.model_copy(
        update={
            key: getattr(credentials, key)
            for key in (
                "kafka_security_protocol",
                "kafka_sasl_mechanism",
                "kafka_sasl_username",
                "kafka_sasl_password",
            )
        }
    )
    runtime = ServiceRuntime(service_definition, settings.model_copy(update={"platform": platform}))
    async with running_runtime(runtime):
        with database.transaction() as session:
            event = runtime.outbox.add(session, factories.lead_ingested())
        runtime.relay.notify()

        def handled() -> bool:
            with database.read() as session:
                count = session.execute(
                    select(func.count()).select_from(Effect).where(col(Effect.event_id) == event.id)
                ).scalar_one()
            return bool(count == 1)

        await eventually(handled, message="not consumed over SASL")
        assert await runtime.readiness() == {"database": "ok", "kafka": "ok"}
