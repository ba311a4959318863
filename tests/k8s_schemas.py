"""Kubernetes JSON Schemas for kubeconform, offline.

The schemas come from the kubernetes-validate package (they are in its wheel). Its files
refer to a shared definitions file by an absolute path only it resolves, so for each kind
the chart renders we write a self-contained schema (the definitions it reaches, inlined
under ``$defs``) in the layout kubeconform reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate

KUBERNETES_VERSION = "1.33.0"
KINDS = (
    "configmap-v1",
    "secret-v1",
    "service-v1",
    "serviceaccount-v1",
    "deployment-apps-v1",
    "job-batch-v1",
    "poddisruptionbudget-policy-v1",
)


def _source() -> Path:
    package = Path(kubernetes_validate.__file__).parent
    return package / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"


def _localize(node: Any, needed: set[str]) -> Any:
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and "#/$defs/" in value:
                name = value.split("#/$defs/", 1)[1]
                needed.add(name)
                result[key] = f"#/$defs/{name}"
            else:
                result[key] = _localize(value, needed)
        return result
    if isinstance(node, list):
        return [_localize(item, needed) for item in node]
    return node


def schema_location(cache: Path) -> str:
    """Write the standalone schemas under ``cache`` once; answer kubeconform's template."""
    target = cache / f"v{KUBERNETES_VERSION}-standalone-strict"
    if not all((target / f"{kind}.json").exists() for kind in KINDS):
        target.mkdir(parents=True, exist_ok=True)
        source = _source()
        definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
        for kind in KINDS:
            needed: set[str] = set()
            root = _localize(json.loads((source / f"{kind}.json").read_text()), needed)
            inlined: dict[str, Any] = {}
            pending = list(needed)
            while pending:
                name = pending.pop()
                if name in inlined:
                    continue
                more: set[str] = set()
                inlined[name] = _localize(definitions[name], more)
                pending.extend(more - inlined.keys())
            root["$defs"] = inlined
            (target / f"{kind}.json").write_text(json.dumps(root))
    return str(
        cache
        / "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
        / "{{ .ResourceKind }}{{ .KindSuffix }}.json"
    )
