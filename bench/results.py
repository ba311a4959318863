"""Where benchmark figures go: printed as a table, merged into bench/results/latest.json."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "latest.json"


def record(section: str, figures: dict[str, Any]) -> Path:
    RESULTS.parent.mkdir(exist_ok=True)
    document: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    document["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    document[section] = {"measured_at": datetime.now(UTC).isoformat(), **figures}
    RESULTS.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return RESULTS


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)
