"""The normalizers over a wide table of what people really write."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.ingest.domain import email as email_module
from services.ingest.domain.company import best_name_match, company_key, registrable_domain
from services.ingest.domain.email import InvalidEmail, is_free_mail, normalize_email
from services.ingest.domain.fields import attribute_key, canonical_field
from services.ingest.domain.geo import normalize_country, normalize_region
from services.ingest.domain.industry import classify_vertical
from services.ingest.domain.normalize import (
    MAX_TEXT,
    NormalizationConfig,
    normalize,
    parse_amount,
    parse_bool,
    parse_datetime,
    parse_employees,
    split_full_name,
    text_of,
)
from services.ingest.domain.phone import InvalidPhone, normalize_phone
from services.ingest.domain.titles import department_of, seniority_of
from shared.contracts import DEPARTMENTS, VERTICALS

CONFIG = NormalizationConfig(default_country="US")


@pytest.mark.parametrize(
    ("raw", "address", "free"),
    [
        ("Ada.Lovelace@Analytical-Engines.co.uk", "ada.lovelace@analytical-engines.co.uk", False),
        ("  bob@EXAMPLE.com ", "bob@example.com", False),
        ("mailto:jane@acme.io", "jane@acme.io", False),
        ("<jane@acme.io>", "jane@acme.io", False),
        ("someone+tag@gmail.com", "someone+tag@gmail.com", True),
        ("x@googlemail.com", "x@googlemail.com", True),
        ("max.mustermann@web.de", "max.mustermann@web.de", True),
        ("max@gmx.net", "max@gmx.net", True),
        ("jean@yahoo.fr", "jean@yahoo.fr", True),
        ("jo@hotmail.co.uk", "jo@hotmail.co.uk", True),
        ("li@qq.com", "li@qq.com", True),
        ("me@outlook.de", "me@outlook.de", True),
        ("ceo@mail.siemens.de", "ceo@mail.siemens.de", False),
        ("jürgen@müller-gmbh.de", "jürgen@müller-gmbh.de", False),
    ],
)
def test_emails_are_checked_and_lower_cased(raw: str, address: str, free: bool) -> None:
    email = normalize_email(raw)
    assert email.address == address
    assert email.free_mail is free


@pytest.mark.parametrize(
    "raw", ["ada", "ada@", "@acme.com", "ada@@acme.com", "ada lovelace@acme.com", "ada@acme", ""]
)
def test_bad_emails_are_refused_with_the_reason(raw: str) -> None:
    with pytest.raises(InvalidEmail) as error:
        normalize_email(raw)
    assert str(error.value)


def _validated(raw: str) -> str | None:
    """What normalize_email answers when every address goes through validate_email."""
    with mock.patch.object(email_module, "_PLAIN_ADDRESS", re.compile(r"(?!)")):
        return _answer(raw)


def _answer(raw: str) -> str | None:
    try:
        return normalize_email(raw).address
    except InvalidEmail:
        return None


# Characters where the plain-address fast path and validate_email could part ways.
_EDGES = "aZ09.-_+!#'`~@\"\\ ()[]:;,üßé\u00a0\u200b"
_LABELS = st.text(alphabet="aZ09-_ü", min_size=0, max_size=8) | st.sampled_from(
    ["xn--bcher-kva", "ab--c", "a" * 63, "b" * 64, "local", "test", "localhost", "123", "c1"]
)
_ADDRESSES = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    st.text(alphabet=_EDGES, min_size=0, max_size=70),
    st.lists(_LABELS, min_size=0, max_size=4),
    _LABELS | st.sampled_from(["com", "DE", "co", "museum", "x" * 64, "onion", "arpa"]),
)


@settings(max_examples=1_500, deadline=None)
@given(_ADDRESSES | st.text(alphabet=_EDGES, max_size=30))
@example("a" * 64 + "@" + "b" * 61 + ".com")
@example("a" * 65 + "@b.com")
@example("a@" + ".".join(["b" * 62] * 4) + ".co")  # 256 characters
@example("a@" + ".".join(["b" * 62] * 3) + "." + "b" * 61 + ".co")  # 254
@example("x@ab--c.com")
@example("x@xn--bcher-kva.ch")
@example("x@mail.example.local")
@example("x@a-b.c-d.de")
@example("x@a-.de")
@example("x@1.2.3.com")
def test_the_plain_address_path_answers_as_validate_email(raw: str) -> None:
    """Plain ASCII addresses skip validate_email (most of the cost of normalizing a lead);
    for any input the answer is the one validate_email gives."""
    assert _answer(raw) == _validated(raw)


def test_free_mail_is_recognised_by_domain_and_by_brand() -> None:
    assert is_free_mail("GMAIL.COM")
    assert is_free_mail("yahoo.co.jp")
    assert not is_free_mail("acme.com")
    assert not is_free_mail("livestock-farms.com")


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("https://www.acme.com/about", "acme.com"),
        ("www.Shop.ACME.co.uk", "acme.co.uk"),
        ("acme.com.au", "acme.com.au"),
        ("http://blog.example.org:8080/x?y=1", "example.org"),
        ("bob@sales.acme.de", "acme.de"),
        ("acme.gov.uk", "acme.gov.uk"),
        ("localhost", None),
        ("not a website", None),
        ("", None),
    ],
)
def test_registrable_domains_are_public_suffix_aware(raw: str, domain: str | None) -> None:
    assert registrable_domain(raw) == domain


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ACME Corp.", "Acme Corporation"),
        ("Acme, Inc.", "ACME"),
        ("Müller GmbH", "Muller"),
        ("Smith & Sons Ltd", "Smith and Sons Limited"),
        ("The Boring Company", "Boring Co"),
        ("Siemens AG", "SIEMENS"),
    ],
)
def test_company_keys_ignore_legal_forms_case_and_punctuation(a: str, b: str) -> None:
    assert company_key(a) == company_key(b)


def test_company_names_match_fuzzily_but_not_loosely() -> None:
    accounts = [(1, company_key("Acme Industries International")), (2, company_key("Globex"))]
    assert best_name_match(company_key("ACME Industries Intl"), accounts, threshold=80) == 1
    assert best_name_match(company_key("Globex Corporation"), accounts) == 2
    assert best_name_match(company_key("Initech"), accounts) is None
    assert best_name_match("", accounts) is None


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("+1 415 555 2671", None, "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("1-415-555-2671", "US", "+14155552671"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("030 1234567", "DE", "+49301234567"),
        ("+49 (0) 30 1234567", None, "+49301234567"),
        ("089/12345678", "DE", "+498912345678"),
        ("01 42 68 53 00", "FR", "+33142685300"),
        ("+1 415 555 2671 ext. 12", None, "+14155552671"),
    ],
)
def test_phones_become_e164(raw: str, country: str | None, e164: str) -> None:
    assert normalize_phone(raw, default_country=country) == e164


@pytest.mark.parametrize(
    ("raw", "country"),
    [("12", "US"), ("call me", "US"), ("555-0199", None), ("+999 123", None)],
)
def test_bad_phones_are_refused(raw: str, country: str | None) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw, default_country=country)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("Deutschland", "DE"),
        ("Germany", "DE"),
        ("germany ", "DE"),
        ("DE", "DE"),
        ("DEU", "DE"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("United Kingdom", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("Scotland", "GB"),
        ("GB", "GB"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("U.S.", "US"),
        ("US", "US"),
        ("United States of America", "US"),
        ("United States", "US"),
        ("America", "US"),
        ("Österreich", "AT"),
        ("Schweiz", "CH"),
        ("Suisse", "CH"),
        ("España", "ES"),
        ("Holland", "NL"),
        ("The Netherlands", "NL"),
        ("Netherlands", "NL"),
        ("Czech Republic", "CZ"),
        ("Czechia", "CZ"),
        ("South Korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("Russia", "RU"),
        ("Russian Federation", "RU"),
        ("UAE", "AE"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Ireland", "IE"),
        ("Viet Nam", "VN"),
        ("Brasil", "BR"),
        ("México", "MX"),
        ("Côte d'Ivoire", "CI"),
        ("France", "FR"),
        ("fr", "FR"),
        ("Bolivia", "BO"),
        ("Iran", "IR"),
    ],
)
def test_countries_from_what_people_write(raw: str, code: str) -> None:
    assert normalize_country(raw) == code


@pytest.mark.parametrize("raw", ["Atlantis", "XX", "", "Europe", "n/a"])
def test_unknown_countries_are_none(raw: str) -> None:
    assert normalize_country(raw) is None


@pytest.mark.parametrize(
    ("raw", "country", "code"),
    [
        ("Bavaria", "DE", "DE-BY"),
        ("Bayern", "DE", "DE-BY"),
        ("BY", "DE", "DE-BY"),
        ("DE-BY", "DE", "DE-BY"),
        ("Bavaria", None, "DE-BY"),
        ("NRW", "DE", "DE-NW"),
        ("Nordrhein-Westfalen", "DE", "DE-NW"),
        ("Baden-Württemberg", "DE", "DE-BW"),
        ("CA", "US", "US-CA"),
        ("California", "US", "US-CA"),
        ("Calif.", "US", "US-CA"),
        ("N.Y.", "US", "US-NY"),
        ("new york", "US", "US-NY"),
        ("Texas", None, "US-TX"),
        ("Ontario", "CA", "CA-ON"),
        ("Quebec", "CA", "CA-QC"),
        ("Québec", "CA", "CA-QC"),
        ("ON", "CA", "CA-ON"),
        ("England", "GB", "GB-ENG"),
        ("Scotland", "GB", "GB-SCT"),
        ("London", "GB", "GB-LND"),
        ("Vienna", "AT", "AT-9"),
        ("Zurich", "CH", "CH-ZH"),
        ("Zürich", "CH", "CH-ZH"),
        ("Île-de-France", "FR", "FR-IDF"),
    ],
)
def test_regions_to_iso_3166_2(raw: str, country: str | None, code: str) -> None:
    assert normalize_region(raw, country=country) == code


@pytest.mark.parametrize(
    ("raw", "country"), [("Bavaria", "US"), ("Narnia", "DE"), ("DE-BY", "AT"), ("", "DE")]
)
def test_regions_that_do_not_fit_are_none(raw: str, country: str | None) -> None:
    assert normalize_region(raw, country=country) is None


@pytest.mark.parametrize(
    ("title", "seniority", "department"),
    [
        ("CEO", "c_level", "executive"),
        ("Chief Executive Officer", "c_level", "executive"),
        ("Co-Founder & CEO", "c_level", "executive"),
        ("CTO", "c_level", "engineering"),
        ("Chief Technology Officer", "c_level", "engineering"),
        ("CFO", "c_level", "finance"),
        ("Chief Marketing Officer", "c_level", "marketing"),
        ("CIO", "c_level", "it"),
        ("Chief Revenue Officer", "c_level", "sales"),
        ("Managing Director", "c_level", "executive"),
        ("Geschäftsführer", "c_level", "executive"),
        ("Owner", "c_level", "executive"),
        ("President", "c_level", "executive"),
        ("VP Engineering", "vp", "engineering"),
        ("Vice President, Sales", "vp", "sales"),
        ("SVP Marketing", "vp", "marketing"),
        ("Sr. Vice President of Finance", "vp", "finance"),
        ("Director of Marketing", "director", "marketing"),
        ("Head of IT", "director", "it"),
        ("Head of People", "director", "human_resources"),
        ("Leiter Einkauf", "director", "procurement"),
        ("Directeur Commercial", "director", "sales"),
        ("IT Director", "director", "it"),
        ("Marketing Manager", "manager", "marketing"),
        ("Product Manager", "manager", "product"),
        ("Engineering Manager", "manager", "engineering"),
        ("Sales Team Lead", "manager", "sales"),
        ("Customer Success Manager", "manager", "customer_support"),
        ("Teamleiter Vertrieb", "manager", "sales"),
        ("Software Engineer", "individual", "engineering"),
        ("Senior Accountant", "individual", "finance"),
        ("Account Executive", "individual", "sales"),
        ("SDR", "individual", "sales"),
        ("Recruiter", "individual", "human_resources"),
        ("Paralegal", "individual", "legal"),
        ("Product Owner", "individual", "product"),
        ("Executive Assistant to the CEO", "individual", "executive"),
        ("Purchasing Agent", "individual", "procurement"),
        ("Operations Analyst", "individual", "operations"),
        ("Astronaut", "individual", "other"),
    ],
)
def test_titles_to_seniority_and_department(title: str, seniority: str, department: str) -> None:
    assert seniority_of(title) == seniority
    assert department_of(title, DEPARTMENTS) == department


def test_an_empty_title_has_no_seniority_and_a_short_list_no_other() -> None:
    assert seniority_of("  ") is None
    assert department_of("", DEPARTMENTS) is None
    assert department_of("Astronaut", ("sales", "marketing")) is None


@pytest.mark.parametrize(
    ("industry", "sic", "naics", "vertical"),
    [
        ("Computer Software", None, None, "software"),
        ("SaaS", None, None, "software"),
        ("Information Technology & Services", None, None, "it_services"),
        ("Banking", None, None, "financial_services"),
        ("Insurance", None, None, "insurance"),
        ("Health insurance", None, None, "insurance"),
        ("Hospital & Health Care", None, None, "healthcare"),
        ("Pharmaceuticals", None, None, "life_sciences"),
        ("Biotechnology", None, None, "life_sciences"),
        ("Maschinenbau", None, None, "manufacturing"),
        ("Automotive", None, None, "manufacturing"),
        ("Retail", None, None, "retail"),
        ("Higher Education", None, None, "education"),
        ("Government Administration", None, None, "government"),
        ("Management Consulting", None, None, "professional_services"),
        ("Marketing & Advertising", None, None, "media"),
        ("Telecommunications", None, None, "telecommunications"),
        ("Oil & Energy", None, None, "energy"),
        ("Real Estate", None, None, "real_estate"),
        ("Construction", None, None, "construction"),
        ("Logistics and Supply Chain", None, None, "transportation"),
        ("Hospitality", None, None, "hospitality"),
        ("Non-Profit Organization Management", None, None, "nonprofit"),
        ("Basket weaving", None, None, "other"),
        (None, "7372", None, "software"),
        (None, "7371", None, "it_services"),
        (None, "6021", None, "financial_services"),
        (None, "6311", None, "insurance"),
        (None, "2834", None, "life_sciences"),
        (None, "8062", None, "healthcare"),
        (None, "3711", None, "manufacturing"),
        (None, "4813", None, "telecommunications"),
        (None, "8221", None, "education"),
        (None, "9111", None, "government"),
        (None, None, "511210", "software"),
        (None, None, "513210", "software"),
        (None, None, "541512", "it_services"),
        (None, None, "522110", "financial_services"),
        (None, None, "524114", "insurance"),
        (None, None, "325412", "life_sciences"),
        (None, None, "622110", "healthcare"),
        (None, None, "236220", "construction"),
        (None, None, "721110", "hospitality"),
        (None, None, "921110", "government"),
        ("Retail", "7372", None, "software"),  # a code is more precise than words
        (None, None, None, None),
    ],
)
def test_industries_and_codes_to_verticals(
    industry: str | None, sic: str | None, naics: str | None, vertical: str | None
) -> None:
    assert (
        classify_vertical(industry=industry, sic_code=sic, naics_code=naics, verticals=VERTICALS)
        == vertical
    )


def test_the_vertical_list_is_configurable() -> None:
    short = ("software", "other")
    assert classify_vertical(
        industry="Banking", sic_code=None, naics_code=None, verticals=short
    ) == ("other")
    assert (
        classify_vertical(
            industry="Fintech",
            sic_code=None,
            naics_code=None,
            verticals=("fintech", "other"),
            keywords={"fintech": "fintech"},
        )
        == "fintech"
    )
    assert (
        classify_vertical(industry="Banking", sic_code=None, naics_code=None, verticals=("x",))
        is None
    )


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("E-mail Address", "email"),
        ("Email", "email"),
        ("EMAIL_ADDRESS", "email"),
        ("E-Mail-Adresse", "email"),
        ("Company Name", "company"),
        ("Organisation", "company"),
        ("Organization", "company"),
        ("Firma", "company"),
        ("Tel.", "phone"),
        ("Phone No.", "phone"),
        ("Telephone Number", "phone"),
        ("Mobile Phone", "mobile"),
        ("First Name", "first_name"),
        ("Vorname", "first_name"),
        ("Surname", "last_name"),
        ("Job Title", "title"),
        ("Zip Code", "postal_code"),
        ("PLZ", "postal_code"),
        ("State/Province", "region"),
        ("Country", "country"),
        ("Web Site", "website"),
        ("No. of Employees", "employees"),
        ("SIC Code", "sic_code"),
        ("utm_source", "utm_source"),
        ("UTM Campaign", "utm_campaign"),
        ("GDPR Consent", "consent_data_processing"),
        ("Lead Source", "source"),
        ("Full Name", "full_name"),
        ("How did you hear about us?", None),
    ],
)
def test_header_synonyms(header: str, field: str | None) -> None:
    assert canonical_field(header) == field


def test_attribute_keys_are_slugs() -> None:
    assert attribute_key("How did you hear about us?") == "how_did_you_hear_about_us"
    assert attribute_key("???") == "field"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("yes", True),
        ("Y", True),
        ("1", True),
        ("on", True),
        ("ja", True),
        (True, True),
        ("x", True),
        ("no", False),
        ("0", False),
        ("false", False),
        ("Nein", False),
        (False, False),
        ("", None),
        (None, None),
    ],
)
def test_consent_flags(raw: str | bool | None, value: bool | None) -> None:
    assert parse_bool(raw) is value


def test_a_consent_flag_that_is_not_yes_or_no_is_an_error() -> None:
    with pytest.raises(ValueError, match="yes/no"):
        parse_bool("maybe")


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1,200", 1200), ("50-200", 50), ("500+", 500), ("10k", 10000), (240, 240), ("", None)],
)
def test_employees(raw: str | int, value: int | None) -> None:
    assert parse_employees(raw) == value


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("$1.5M", Decimal(1_500_000)),
        ("2,000,000", Decimal(2_000_000)),
        ("1,2 Mio €", Decimal(1_200_000)),
        ("€ 3.400.000", Decimal(3_400_000)),
        ("1,234.56", Decimal("1234.56")),
        (2500000, Decimal(2_500_000)),
        ("12 bn USD", Decimal(12 * 10**9)),
        ("", None),
    ],
)
def test_amounts(raw: str | int, value: Decimal | None) -> None:
    assert parse_amount(raw) == value


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01 10:00:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("1772359200000", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        (1772359200, datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_dates(raw: str | int, value: datetime) -> None:
    assert parse_datetime(raw) == value


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [
        ("Ada Lovelace", "Ada", "Lovelace"),
        ("Lovelace, Ada", "Ada", "Lovelace"),
        ("Dr. Ada King Lovelace", "Ada King", "Lovelace"),
        ("Cher", "Cher", None),
    ],
)
def test_full_names_are_split(full: str, first: str, last: str | None) -> None:
    assert split_full_name(full) == (first, last)


def test_a_whole_submission_is_normalized_and_unknown_fields_are_kept() -> None:
    result = normalize(
        {
            "email": " Ada.Lovelace@Analytical-Engines.CO.UK ",
            "full_name": "LOVELACE, ADA",
            "phone": "020 7946 0958",
            "title": "VP Engineering",
            "company": "Analytical Engines Ltd",
            "industry": "Computer Software",
            "employees": "201-500",
            "country": "U.K.",
            "region": "London",
            "postal_code": "ec1a 1bb",
            "utm_source": "linkedin",
            "utm_campaign": "q4-webinar",
            "consent_email": "yes",
            "consent_data_processing": "1",
            "source": "web_form",
            "campaign": "q4-webinar",
            "touchpoint_type": "Demo Request",
        },
        {"How did you hear about us?": "a friend", "newsletter_count": 3},
        config=CONFIG,
    )
    assert result.issues == ()
    lead = result.lead
    assert lead is not None
    assert lead.email == "ada.lovelace@analytical-engines.co.uk"
    assert (lead.first_name, lead.last_name) == ("Ada", "Lovelace")
    assert lead.phone == "+442079460958"  # national number read in the lead's own country
    assert (lead.seniority, lead.department) == ("vp", "engineering")
    assert lead.company_domain == "analytical-engines.co.uk"
    assert lead.vertical == "software"
    assert lead.employees == 201
    assert (lead.country, lead.region, lead.postal_code) == ("GB", "GB-LND", "EC1A 1BB")
    assert lead.utm.source == "linkedin"
    assert lead.consent.email_marketing is True
    assert lead.consent.data_processing is True
    assert lead.consent.phone_contact is None
    assert lead.touchpoint_type == "demo_request"
    assert lead.attributes == {"how_did_you_hear_about_us": "a friend", "newsletter_count": 3}


def test_free_mail_gives_no_company_domain_but_a_website_does() -> None:
    result = normalize({"email": "ada@gmail.com"}, config=CONFIG)
    assert result.lead is not None
    assert result.lead.free_mail
    assert result.lead.company_domain is None
    result = normalize({"email": "ada@gmail.com", "website": "www.acme.de"}, config=CONFIG)
    assert result.lead is not None
    assert result.lead.company_domain == "acme.de"


def test_a_lead_needs_an_email_or_a_phone() -> None:
    result = normalize({"first_name": "Ada"}, config=CONFIG)
    assert result.lead is None
    assert [(i.field, i.severity) for i in result.issues] == [("email", "error")]


def test_a_bad_email_is_an_error_naming_the_field() -> None:
    result = normalize({"email": "ada@", "phone": "+14155552671"}, config=CONFIG)
    assert result.lead is None
    assert result.errors[0].field == "email"


def test_a_bad_phone_next_to_a_good_email_is_a_warning_and_the_raw_value_is_kept() -> None:
    result = normalize({"email": "ada@acme.com", "phone": "call me"}, config=CONFIG)
    assert result.lead is not None
    assert result.lead.phone is None
    assert result.lead.attributes["phone_raw"] == "call me"
    assert [(i.field, i.severity) for i in result.issues] == [("phone", "warning")]


def test_a_bad_phone_alone_is_an_error() -> None:
    result = normalize({"phone": "12"}, config=CONFIG)
    assert result.lead is None
    assert result.errors[0].field == "phone"


def test_mobile_is_used_when_phone_is_missing_or_bad() -> None:
    result = normalize({"phone": "n/a", "mobile": "+49 171 1234567"}, config=CONFIG)
    assert result.lead is not None
    assert result.lead.phone == "+491711234567"


def test_unknown_country_and_region_are_kept_raw_with_a_warning() -> None:
    result = normalize(
        {"email": "a@acme.com", "country": "Atlantis", "region": "Deep"}, config=CONFIG
    )
    assert result.lead is not None
    assert result.lead.country is None
    assert result.lead.attributes["country_raw"] == "Atlantis"
    assert result.lead.attributes["region_raw"] == "Deep"
    assert {i.field for i in result.warnings} == {"country", "region"}


def test_a_region_alone_gives_the_country() -> None:
    result = normalize({"email": "a@acme.com", "region": "Bavaria"}, config=CONFIG)
    assert result.lead is not None
    assert (result.lead.country, result.lead.region) == ("DE", "DE-BY")


@given(st.text())
@example("  Jörg\t\u00a0 Weiß \r\n")
@example("\u2003n/a\u3000")
@example("\x1c-\x1f")
def test_text_is_trimmed_and_its_runs_of_whitespace_become_one_space(raw: str) -> None:
    """As the regular expression spells it, whatever the kind of whitespace."""
    expected = re.sub(r"\s+", " ", raw).strip()
    placeholder = expected.lower() in {
        "",
        "-",
        "--",
        "n/a",
        "na",
        "none",
        "null",
        "nil",
        "unknown",
        "?",
        ".",
    }
    assert text_of(raw) == (None if placeholder else expected[:MAX_TEXT])
