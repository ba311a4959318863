"""A submission, as any door received it, to the normalized lead ingest keeps.

The input is a flat mapping of canonical field names (:mod:`.fields`) to raw values plus
the fields we do not know (kept as attributes). The output is the normalized lead and the
issues found: an *error* means the submission cannot be accepted (no way to identify the
person); a *warning* means a value could not be normalized and was kept raw as an attribute,
so nothing the person gave us is lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from services.ingest.domain.company import registrable_domain, website_domain
from services.ingest.domain.email import InvalidEmail, normalize_email
from services.ingest.domain.fields import attribute_key
from services.ingest.domain.geo import country_of_region, normalize_country, normalize_region
from services.ingest.domain.industry import classify_vertical
from services.ingest.domain.phone import InvalidPhone, normalize_phone
from services.ingest.domain.titles import department_of, seniority_of
from shared.contracts import (
    DEPARTMENTS,
    VERTICALS,
    AttributeValue,
    Consent,
    Seniority,
    Utm,
)

RawValue = str | int | float | bool | None
MAX_ATTRIBUTES = 100
MAX_TEXT = 2_000
_PLACEHOLDERS = frozenset({"", "-", "--", "n/a", "na", "none", "null", "nil", "unknown", "?", "."})
_TRUE = frozenset(
    {
        "1",
        "true",
        "t",
        "yes",
        "y",
        "on",
        "x",
        "ja",
        "j",
        "oui",
        "si",
        "sí",
        "checked",
        "opt-in",
        "optin",
        "opted in",
        "granted",
        "agreed",
        "accepted",
    }
)
_FALSE = frozenset(
    {
        "0",
        "false",
        "f",
        "no",
        "n",
        "off",
        "nein",
        "non",
        "unchecked",
        "opt-out",
        "optout",
        "opted out",
        "denied",
        "declined",
        "refused",
    }
)
_HONORIFICS = frozenset(
    {"mr", "mrs", "ms", "miss", "dr", "prof", "herr", "frau", "mme", "m", "sir", "dame", "mx"}
)
_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Issue:
    field: str
    reason: str
    severity: Literal["error", "warning"] = "error"


@dataclass(frozen=True)
class NormalizationConfig:
    default_country: str | None = None
    verticals: tuple[str, ...] = VERTICALS
    departments: tuple[str, ...] = DEPARTMENTS
    industry_keywords: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NormalizedLead:
    email: str | None = None
    email_domain: str | None = None
    free_mail: bool = False
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    title: str | None = None
    seniority: Seniority | None = None
    department: str | None = None
    company_name: str | None = None
    company_domain: str | None = None
    website: str | None = None
    industry: str | None = None
    vertical: str | None = None
    sic_code: str | None = None
    naics_code: str | None = None
    employees: int | None = None
    annual_revenue: Decimal | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    postal_code: str | None = None
    utm: Utm = field(default_factory=Utm)
    consent: Consent = field(default_factory=Consent)
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    source: str | None = None
    campaign: str | None = None
    touchpoint_type: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Normalization:
    lead: NormalizedLead | None
    issues: tuple[Issue, ...]

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.severity == "error")

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.severity == "warning")


def text_of(value: RawValue) -> str | None:
    """A raw value as clean text; placeholders (``n/a``, ``-``, ``null``) are missing."""
    if value is None or isinstance(value, bool):
        return None if value is None else str(value).lower()
    # Runs of whitespace as one space, ends trimmed: str.split() splits on what \s matches.
    text = " ".join(str(value).split())
    if text.lower() in _PLACEHOLDERS:
        return None
    return text[:MAX_TEXT]


def parse_bool(value: RawValue) -> bool | None:
    if isinstance(value, bool):
        return value
    text = text_of(value)
    if text is None:
        return None
    folded = text.lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"not a yes/no value: {text!r}")


def parse_datetime(value: RawValue) -> datetime | None:
    """ISO 8601 (naive taken as UTC) or a Unix epoch in seconds or milliseconds."""
    if isinstance(value, bool):
        raise ValueError("not a date and time")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = text_of(value)
        if text is None:
            return None
        if re.fullmatch(r"\d{9,13}(\.\d+)?", text):
            number = float(text)
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"not an ISO 8601 date and time: {text!r}") from None
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if number > 10_000_000_000:  # milliseconds
        number /= 1000
    return datetime.fromtimestamp(number, UTC)


def parse_employees(value: RawValue) -> int | None:
    """``1,200`` -> 1200; ``50-200`` -> 50 (the lower bound); ``500+`` -> 500; ``10k`` ->
    10000."""
    text = text_of(value)
    if text is None:
        return None
    match = re.search(r"(\d[\d,.' ]*)\s*([kK])?", text)
    if match is None:
        raise ValueError(f"not a number of employees: {text!r}")
    digits = re.sub(r"[,.' ]", "", match.group(1))
    number = int(digits)
    if match.group(2):
        number *= 1000
    return number


_MULTIPLIERS = {
    "k": Decimal(1_000),
    "t": Decimal(1_000),
    "tsd": Decimal(1_000),
    "m": Decimal(1_000_000),
    "mm": Decimal(1_000_000),
    "mn": Decimal(1_000_000),
    "mio": Decimal(1_000_000),
    "million": Decimal(1_000_000),
    "millions": Decimal(1_000_000),
    "b": Decimal(10**9),
    "bn": Decimal(10**9),
    "mrd": Decimal(10**9),
    "billion": Decimal(10**9),
}


def parse_amount(value: RawValue) -> Decimal | None:
    """``$1.5M`` -> 1500000; ``2,000,000`` -> 2000000; ``1,2 Mio €`` -> 1200000."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    text = text_of(value)
    if text is None:
        return None
    match = re.fullmatch(
        r"[^\d]*?(\d[\d,.' ]*)\s*([a-zA-Z]+)?\.?\s*[^\w]*\s*[A-Z]{0,3}", text.strip()
    )
    if match is None:
        raise ValueError(f"not an amount: {text!r}")
    number = match.group(1).strip().replace("'", "").replace(" ", "")
    if "," in number and "." in number:
        # The later separator is the decimal one: 1,234.56 or 1.234,56.
        if number.rfind(",") > number.rfind("."):
            number = number.replace(".", "").replace(",", ".")
        else:
            number = number.replace(",", "")
    elif "," in number:
        whole, _, tail = number.rpartition(",")
        number = number.replace(",", "") if len(tail) == 3 else whole.replace(",", "") + "." + tail
    elif number.count(".") > 1 or (
        number.count(".") == 1 and len(number.split(".")[1]) == 3 and match.group(2) is None
    ):
        number = number.replace(".", "")
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    unit = (match.group(2) or "").lower()
    if unit and unit not in _MULTIPLIERS and len(unit) != 3:
        raise ValueError(f"unknown unit {unit!r} in {text!r}")
    return amount * _MULTIPLIERS.get(unit, Decimal(1))


def split_full_name(full: str) -> tuple[str | None, str | None]:
    """``Lovelace, Ada`` and ``Dr. Ada Lovelace`` -> (``Ada``, ``Lovelace``)."""
    if "," in full:
        last, _, first = full.partition(",")
        return (first.strip() or None, last.strip() or None)
    words = [w for w in full.split() if w.lower().rstrip(".") not in _HONORIFICS]
    if not words:
        return None, None
    if len(words) == 1:
        return words[0], None
    return " ".join(words[:-1]), words[-1]


def tidy_name(name: str | None) -> str | None:
    """Names SHOUTED or all in lower case get capitals; mixed case is left as written."""
    if name is None:
        return None
    if len(name) > 1 and (name.isupper() or name.islower()):
        return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-")).title()
    return name


def slug_of(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def normalize(  # noqa: PLR0915 - one pass over the fields reads best in one place
    fields: Mapping[str, RawValue],
    attributes: Mapping[str, RawValue] | None = None,
    *,
    config: NormalizationConfig,
) -> Normalization:
    issues: list[Issue] = []
    kept: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        if len(kept) >= MAX_ATTRIBUTES:
            issues.append(
                Issue("attributes", f"more than {MAX_ATTRIBUTES}: rest ignored", "warning")
            )
            break
        if isinstance(value, str):
            kept[attribute_key(key)] = value[:MAX_TEXT]
        elif value is None or isinstance(value, int | float | bool):
            kept[attribute_key(key)] = value

    def get(name: str) -> str | None:
        return text_of(fields.get(name))

    def keep_raw(name: str, reason: str) -> None:
        issues.append(Issue(name, reason, "warning"))
        kept[f"{name}_raw"] = get(name)

    # -- who: email, then phone
    email = email_domain = None
    free_mail = False
    raw_email = get("email")
    if raw_email is not None:
        try:
            parsed = normalize_email(raw_email)
            email, email_domain, free_mail = parsed.address, parsed.domain, parsed.free_mail
        except InvalidEmail as error:
            issues.append(Issue("email", str(error)))

    # -- where: country first (it is the default for national phone numbers)
    country = region = None
    raw_country = get("country")
    if raw_country is not None:
        country = normalize_country(raw_country)
        if country is None:
            keep_raw("country", f"unknown country {raw_country!r}")
    raw_region = get("region")
    if raw_region is not None:
        region = normalize_region(raw_region, country=country)
        if region is None:
            keep_raw(
                "region", f"unknown region {raw_region!r}" + (f" in {country}" if country else "")
            )
        elif country is None:
            country = country_of_region(region)

    phone = None
    phone_issue: str | None = None
    for name in ("phone", "mobile"):
        raw_phone = get(name)
        if raw_phone is None:
            continue
        try:
            phone = normalize_phone(raw_phone, default_country=country or config.default_country)
            break
        except InvalidPhone as error:
            phone_issue = phone_issue or str(error)
            kept[f"{name}_raw"] = raw_phone
    if phone is None and phone_issue is not None:
        bad = "phone" if get("phone") is not None else "mobile"
        severity: Literal["error", "warning"] = "warning" if email else "error"
        issues.append(Issue(bad, phone_issue, severity))
    if email is None and phone is None and not any(i.severity == "error" for i in issues):
        issues.append(Issue("email", "an email address or a phone number is required"))

    # -- the person
    first, last = get("first_name"), get("last_name")
    full = get("full_name")
    if full is not None and first is None and last is None:
        first, last = split_full_name(full)
    title = get("title")

    # -- the company
    company_name = get("company")
    website = get("website")
    company_domain = website_domain(website) if website else None
    if website and company_domain is None:
        issues.append(Issue("website", f"no company domain in {website!r}", "warning"))
    if company_domain is None and email_domain and not free_mail:
        company_domain = registrable_domain(email_domain)
    industry = get("industry")
    sic = re.sub(r"\D", "", get("sic_code") or "") or None
    naics = re.sub(r"\D", "", get("naics_code") or "") or None
    employees = annual_revenue = None
    try:
        employees = parse_employees(fields.get("employees"))
    except ValueError as error:
        keep_raw("employees", str(error))
    try:
        annual_revenue = parse_amount(fields.get("annual_revenue"))
    except ValueError as error:
        keep_raw("annual_revenue", str(error))

    # -- marketing: UTM, consent, source, campaign, when
    utm = Utm(
        source=get("utm_source"),
        medium=get("utm_medium"),
        campaign=get("utm_campaign"),
        term=get("utm_term"),
        content=get("utm_content"),
    )
    consent_values: dict[str, bool | None] = {}
    for name, target in (
        ("consent_email", "email_marketing"),
        ("consent_phone", "phone_contact"),
        ("consent_data_processing", "data_processing"),
    ):
        try:
            consent_values[target] = parse_bool(fields.get(name))
        except ValueError as error:
            keep_raw(name, str(error))
    recorded_at = occurred_at = None
    try:
        recorded_at = parse_datetime(fields.get("consent_recorded_at"))
    except ValueError as error:
        keep_raw("consent_recorded_at", str(error))
    try:
        occurred_at = parse_datetime(fields.get("occurred_at"))
    except ValueError as error:
        keep_raw("occurred_at", str(error))
    touchpoint_type = None
    raw_type = get("touchpoint_type")
    if raw_type is not None:
        touchpoint_type = slug_of(raw_type)[:64]
        if not _SLUG.match(touchpoint_type):
            keep_raw("touchpoint_type", f"not a touchpoint type: {raw_type!r}")
            touchpoint_type = None

    if any(issue.severity == "error" for issue in issues):
        return Normalization(lead=None, issues=tuple(issues))
    lead = NormalizedLead(
        email=email,
        email_domain=email_domain,
        free_mail=free_mail,
        first_name=tidy_name(first),
        last_name=tidy_name(last),
        phone=phone,
        title=title,
        seniority=seniority_of(title) if title else None,
        department=department_of(title, config.departments) if title else None,
        company_name=company_name,
        company_domain=company_domain,
        website=website,
        industry=industry,
        vertical=classify_vertical(
            industry=industry,
            sic_code=sic,
            naics_code=naics,
            verticals=config.verticals,
            keywords=config.industry_keywords,
        ),
        sic_code=sic,
        naics_code=naics,
        employees=employees,
        annual_revenue=annual_revenue,
        country=country,
        region=region,
        city=get("city"),
        postal_code=(get("postal_code") or "").upper() or None,
        utm=utm,
        consent=Consent(**consent_values, recorded_at=recorded_at),
        attributes=kept,
        source=get("source"),
        campaign=get("campaign"),
        touchpoint_type=touchpoint_type,
        occurred_at=occurred_at,
    )
    return Normalization(lead=lead, issues=tuple(issues))
