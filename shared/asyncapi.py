"""The AsyncAPI 3 document of the public topics, generated from the contracts.

Marketing-automation systems and other subscribers read ``shared/asyncapi.yaml``: a channel
per public topic, a message per payload version, the CloudEvents headers every record
carries, the key, and the payload by reference to its JSON Schema beside it in
``shared/schemas/``. ``leadflow schemas export`` writes it with the schemas, and a test fails
when it drifts from the code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from shared.contracts import EventPayload
from shared.topics import CATALOG, TopicSpec

ASYNCAPI_PATH = Path(__file__).parent / "asyncapi.yaml"
CONTRACTS_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"

DESCRIPTION = """\
Every change to a lead in Leadflow is an event on a Kafka topic: ingested, scored, routed,
followed up under an SLA, and fed back from the CRM. Subscribe to the topics you need.

Records are CloudEvents 1.0 in Kafka binary content mode. The JSON payload is the record
value; the context attributes are `ce_*` headers; the record key is the lead id (the
CloudEvents subject), so all of one lead's events are on one partition, in order.

The payload of each event type is versioned in its CloudEvents type
(`leadflow.lead.scored.v1`). Inside a version only optional fields are added, so readers
must ignore fields they do not know; an incompatible change is a new version, published
beside the old one until every consumer has moved.

Delivery is at least once. A record may arrive twice (with the same `ce_id`): deduplicate
on `ce_id`. The public topics are kept forever, so a new subscriber can read from the
beginning. A deployment may prefix every topic name with a namespace
(`LEADFLOW_TOPIC_NAMESPACE`), e.g. `acme.leads.scored`.
"""


def _camel(name: str) -> str:
    head, *rest = re.split(r"[._]", name)
    return head + "".join(part.capitalize() for part in rest)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text else ""


def _headers(payload: type[EventPayload]) -> dict[str, Any]:
    def string(description: str, **extra: Any) -> dict[str, Any]:
        return {"type": "string", "description": description, **extra}

    return {
        "type": "object",
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
            "content-type",
        ],
        "properties": {
            "ce_specversion": string("CloudEvents version.", const="1.0"),
            "ce_id": string("Unique event id: deduplicate on it.", format="uuid"),
            "ce_source": string("The service that produced it, e.g. /leadflow/scoring."),
            "ce_type": string("Event type and payload version.", const=payload.cloudevents_type()),
            "ce_time": string("When it happened (RFC 3339, UTC).", format="date-time"),
            "ce_subject": string("The lead id; also the record key.", format="uuid"),
            "ce_dataschema": string(
                "Identifies the payload's JSON Schema.",
                const=f"urn:leadflow:schemas:{payload.schema_name()}",
            ),
            "content-type": string("Payload encoding.", const="application/json"),
        },
    }


def _message(payload: type[EventPayload]) -> dict[str, Any]:
    return {
        "name": payload.cloudevents_type(),
        "title": payload.__name__,
        "summary": _first_line(payload.__doc__),
        "contentType": "application/json",
        "headers": _headers(payload),
        "payload": {
            "schemaFormat": SCHEMA_FORMAT,
            "schema": {"$ref": f"./schemas/{payload.schema_name()}.json"},
        },
        "correlationId": {
            "description": "All events of one lead share the subject.",
            "location": "$message.header#/ce_subject",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "format": "uuid", "description": "The lead id."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _channel(spec: TopicSpec) -> dict[str, Any]:
    return {
        "address": spec.name,
        "title": spec.name,
        "description": f"{spec.description} Produced by the {spec.producer} service.",
        "messages": {
            payload.__name__: {"$ref": f"#/components/messages/{payload.__name__}"}
            for payload in spec.payloads
        },
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "topicConfiguration": {"retention.ms": spec.retention_ms},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def document() -> dict[str, Any]:
    channels = {_camel(spec.name): _channel(spec) for spec in CATALOG}
    operations = {
        f"publish{_camel(spec.name)[0].upper()}{_camel(spec.name)[1:]}": {
            "action": "send",
            "channel": {"$ref": f"#/channels/{_camel(spec.name)}"},
            "summary": f"The {spec.producer} service publishes to {spec.name}.",
            "messages": [
                {"$ref": f"#/channels/{_camel(spec.name)}/messages/{payload.__name__}"}
                for payload in spec.payloads
            ],
        }
        for spec in CATALOG
    }
    messages = {
        payload.__name__: _message(payload) for spec in CATALOG for payload in spec.payloads
    }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:leadflow:events",
        "info": {
            "title": "Leadflow events",
            "version": CONTRACTS_VERSION,
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "cluster": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "The Kafka cluster a Leadflow deployment uses.",
                "variables": {
                    "bootstrap": {
                        "default": "localhost:9092",
                        "description": "Bootstrap servers (KAFKA_BOOTSTRAP_SERVERS).",
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


class _Dumper(yaml.SafeDumper):
    """Writes multi-line text as literal blocks, so people can read the descriptions."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def render() -> str:
    header = "# Generated by `leadflow schemas export` from shared/contracts.py: do not edit.\n"
    body = yaml.dump(document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def export() -> Path:
    ASYNCAPI_PATH.write_text(render())
    return ASYNCAPI_PATH


def drifted() -> bool:
    return not ASYNCAPI_PATH.exists() or ASYNCAPI_PATH.read_text() != render()
