"""The AsyncAPI document subscribers read: valid AsyncAPI 3, complete, and true to the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from shared import asyncapi
from shared.cloudevents import Event
from shared.contracts import PAYLOAD_TYPES
from shared.testing import factories
from shared.topics import CATALOG

FIXTURES = Path(__file__).parent / "fixtures"


def committed_document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(asyncapi.ASYNCAPI_PATH.read_text())
    return loaded


def test_the_committed_document_matches_the_contracts() -> None:
    assert not asyncapi.drifted(), "run `leadflow schemas export` and commit shared/asyncapi.yaml"
    assert committed_document() == asyncapi.document()


def test_it_is_a_valid_asyncapi_3_document() -> None:
    specification = json.loads((FIXTURES / "asyncapi-3.0.0.schema.json").read_text())
    jsonschema.Draft7Validator(specification).validate(committed_document())


def test_every_public_topic_and_payload_is_documented() -> None:
    document = committed_document()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {spec.name for spec in CATALOG}
    titles = {message["title"] for message in document["components"]["messages"].values()}
    assert titles == {payload.__name__ for payload in PAYLOAD_TYPES}
    for message in document["components"]["messages"].values():
        assert message["payload"]["schemaFormat"] == asyncapi.SCHEMA_FORMAT


def _resolve(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_reference_resolves() -> None:
    document = committed_document()
    references: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                references.append(node["$ref"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    assert references
    for reference in references:
        if reference.startswith("#/"):
            assert _resolve(document, reference) is not None, reference
        else:
            target = asyncapi.ASYNCAPI_PATH.parent / reference
            assert target.exists(), reference
            assert json.loads(target.read_text())["$id"].endswith(target.stem)


def test_the_documented_headers_are_the_ones_the_codec_sends() -> None:
    document = committed_document()
    samples = [
        factories.lead_ingested(),
        factories.lead_scored(),
        factories.lead_routed(),
        factories.lead_sla(),
        factories.lead_feedback(),
        factories.lead_erased(),
    ]
    for payload in samples:
        headers = {k: v.decode() for k, v in Event(data=payload, source="/leadflow/x").headers()}
        message = document["components"]["messages"][type(payload).__name__]
        jsonschema.Draft202012Validator(message["headers"]).validate(headers)
        assert set(headers) == set(message["headers"]["properties"])
