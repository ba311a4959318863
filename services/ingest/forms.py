"""Web forms: ``POST /v1/forms/{form_id}`` (JSON or url-encoded, no key: browsers post it),
and the field map of each form, managed through the API (with a key)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session

from services.ingest import repository
from services.ingest.api import lead_group, rejection
from services.ingest.auth import ApiKeyRoute
from services.ingest.domain.fields import CANONICAL_FIELDS, canonical_field
from services.ingest.domain.normalize import Issue, RawValue
from services.ingest.domain.submission import Submission
from services.ingest.models import Form
from shared.http import DbSession, ReadSession, problem

IGNORE = "ignore"
FORM_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class FormDefaults(BaseModel):
    source: str = "web_form"
    campaign: str | None = None
    touchpoint_type: str = Field(default="form_submission", pattern=r"^[a-z][a-z0-9_]*$")


class FormIn(BaseModel):
    name: str | None = None
    field_map: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Form field -> lead field (email, campaign, source, utm_source ...), or 'ignore'. "
            "Fields not in the map are recognised by their names, else kept as attributes."
        ),
        examples=[{"your-email": "email", "cmp": "campaign", "hp_check": "ignore"}],
    )
    defaults: FormDefaults = Field(default_factory=FormDefaults)

    @field_validator("field_map")
    @classmethod
    def _known_targets(cls, value: dict[str, str]) -> dict[str, str]:
        for form_field, target in value.items():
            if target != IGNORE and target not in CANONICAL_FIELDS:
                raise ValueError(
                    f"{form_field!r} maps to {target!r}, which is not a lead field "
                    f"(one of {', '.join(CANONICAL_FIELDS)}, or 'ignore')"
                )
        return value


class FormOut(FormIn):
    id: str
    created_at: datetime
    updated_at: datetime


def _out(form: Form) -> FormOut:
    return FormOut(
        id=form.id,
        name=form.name,
        field_map=form.field_map,
        defaults=FormDefaults.model_validate(form.defaults),
        created_at=form.created_at,
        updated_at=form.updated_at,
    )


admin = APIRouter(route_class=ApiKeyRoute, tags=["forms"])


@admin.put("/v1/forms/{form_id}", response_model=FormOut, summary="Create or replace a form")
def put_form(form_id: str, body: FormIn, session: DbSession) -> Response:
    if not re.match(FORM_ID, form_id):
        return problem(422, "path.form_id", "letters, digits, '_', '.', '-'; at most 100")
    now = datetime.now(UTC)
    form = repository.form(session=session, form_id=form_id)
    if form is None:
        form = Form(id=form_id, created_at=now, updated_at=now)
        session.add(form)
    form.name = body.name
    form.field_map = dict(body.field_map)
    form.defaults = body.defaults.model_dump()
    form.updated_at = now
    return JSONResponse(_out(form).model_dump(mode="json"))


@admin.get("/v1/forms", response_model=list[FormOut], summary="Every form")
def list_forms(session: ReadSession) -> list[FormOut]:
    return [_out(form) for form in repository.forms(session=session)]


@admin.get("/v1/forms/{form_id}", response_model=FormOut, summary="One form and its field map")
def get_form(form_id: str, session: ReadSession) -> Response:
    form = repository.form(session=session, form_id=form_id)
    if form is None:
        return problem(404, "path.form_id", f"no form {form_id!r}")
    return JSONResponse(_out(form).model_dump(mode="json"))


public = APIRouter(tags=["forms"])


@public.post(
    "/v1/forms/{form_id}",
    status_code=202,
    summary="A web form submission (JSON or application/x-www-form-urlencoded)",
    responses={404: {}, 415: {}, 422: {}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            }
        }
    },
)
async def submit_form(form_id: str, request: Request) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    values: dict[str, RawValue]
    if content_type == "application/json":
        try:
            parsed = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as error:
            return problem(422, "body", f"not JSON: {error}")
        if not isinstance(parsed, dict):
            return problem(422, "body", "a JSON object of form fields is expected")
        values = {str(k): v if _scalar(v) else json.dumps(v) for k, v in parsed.items()}
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        data = await request.form()
        values = {}
        for key, value in data.multi_items():
            if isinstance(value, str):  # files are not lead data
                values[key] = f"{values[key]}, {value}" if key in values else value
    else:
        return problem(
            415,
            "header.content-type",
            "send application/json or application/x-www-form-urlencoded",
        )
    return await lead_group(request).submit(FormSubmission(form_id, values))


@dataclass
class FormSubmission:
    """A form's submission, mapped by the form's field map in the transaction that
    captures it (so a map just changed applies at once)."""

    form_id: str
    values: dict[str, RawValue]
    key: None = None
    # Lead field -> the form's own field name, to name it in errors.
    origin: dict[str, str] = field(default_factory=dict)

    def submission(self, session: Session) -> Submission | Response:
        form = repository.form(session=session, form_id=self.form_id)
        if form is None:
            return problem(404, "path.form_id", f"no form {self.form_id!r}")
        defaults = FormDefaults.model_validate(form.defaults)
        fields: dict[str, RawValue] = {}
        attributes: dict[str, RawValue] = {}
        for name, value in self.values.items():
            target = form.field_map.get(name) or canonical_field(name)
            if target == IGNORE:
                continue
            if target is None:
                attributes[name] = value
            elif target not in fields:
                fields[target] = value
                self.origin[target] = name
        return Submission(
            fields=fields,
            attributes=attributes,
            door="form",
            source=defaults.source,
            campaign=defaults.campaign,
            touchpoint_type=defaults.touchpoint_type,
            reference=form.id,
        )

    def rejected(self, issues: tuple[Issue, ...]) -> Response:
        return rejection(tuple(Issue(self.origin.get(i.field, i.field), i.reason) for i in issues))


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
