"""CSV bulk loads: one row per entity, the columns are the fields of its JSON body.

List fields (``territory_ids``, ``verticals``, ``postal_prefixes``, ``grades``, ``holidays``)
hold values separated by ``|``; ``working_hours`` takes the text form
(``mon-fri 09:00-17:00; sat 10:00-12:00``); an empty cell means the default.
"""

from __future__ import annotations

import csv
import io
from typing import Any, get_origin

from pydantic import BaseModel, ValidationError

from services.routing.config_store import Invalid

LIST_SEPARATOR = "|"


def _is_list(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return get_origin(annotation) is list


def parse_rows(text: str, model: type[BaseModel], key: str) -> list[tuple[int, BaseModel]]:
    """The rows of a CSV document as bodies, each with its line number; the first error
    raises :class:`Invalid` naming ``body.line.<n>.<column>``."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in reader.fieldnames or []]
    if not header:
        raise Invalid(422, "body", "the CSV document is empty: a header row is needed")
    unknown = [name for name in header if name not in model.model_fields]
    if unknown:
        raise Invalid(
            422,
            "body.header",
            f"unknown column(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(model.model_fields)}",
        )
    if key not in header:
        raise Invalid(422, "body.header", f"the column {key} is required")
    rows: list[tuple[int, BaseModel]] = []
    seen: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        values: dict[str, Any] = {}
        for column, raw_cell in raw.items():
            if column is None:
                raise Invalid(422, f"body.line.{line}", "more cells than columns")
            name = column.strip()
            cell = (raw_cell or "").strip()
            if not cell:
                continue
            values[name] = (
                [part.strip() for part in cell.split(LIST_SEPARATOR) if part.strip()]
                if _is_list(model, name)
                else cell
            )
        if not values:
            continue  # a blank line
        try:
            body = model.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise Invalid(422, f"body.line.{line}.{where}", first["msg"]) from None
        identity = str(getattr(body, key))
        if identity in seen:
            raise Invalid(
                422, f"body.line.{line}.{key}", f"{identity!r} is also on line {seen[identity]}"
            )
        seen[identity] = line
        rows.append((line, body))
    return rows
