"""Free-text industries, SIC and NAICS codes to a vertical of a configurable list.

The tables map to the default vocabulary (:data:`shared.contracts.VERTICALS`). A deployment
with its own list passes it, plus keywords of its own; a vertical the list does not have
becomes ``other`` (when the list has it) or nothing.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping

# Keywords in the industry text, checked longest first, so "health insurance" beats "health".
INDUSTRY_KEYWORDS: dict[str, str] = {
    "software": "software",
    "saas": "software",
    "computer software": "software",
    "internet": "software",
    "apps": "software",
    "cloud": "software",
    "e-learning": "education",
    "it services": "it_services",
    "information technology": "it_services",
    "it consulting": "it_services",
    "managed services": "it_services",
    "computer networking": "it_services",
    "network security": "it_services",
    "computer and network security": "it_services",
    "systems integration": "it_services",
    "it-dienstleist": "it_services",
    "edv": "it_services",
    "data processing": "it_services",
    "banking": "financial_services",
    "bank": "financial_services",
    "financial": "financial_services",
    "finance": "financial_services",
    "fintech": "financial_services",
    "investment": "financial_services",
    "capital markets": "financial_services",
    "asset management": "financial_services",
    "venture capital": "financial_services",
    "accounting": "professional_services",
    "insurance": "insurance",
    "versicherung": "insurance",
    "reinsurance": "insurance",
    "health insurance": "insurance",
    "hospital": "healthcare",
    "health care": "healthcare",
    "healthcare": "healthcare",
    "medical practice": "healthcare",
    "health": "healthcare",
    "gesundheit": "healthcare",
    "clinic": "healthcare",
    "mental health": "healthcare",
    "medical devices": "life_sciences",
    "pharma": "life_sciences",
    "pharmaceutical": "life_sciences",
    "biotech": "life_sciences",
    "biotechnology": "life_sciences",
    "life sciences": "life_sciences",
    "medtech": "life_sciences",
    "manufacturing": "manufacturing",
    "industrial": "manufacturing",
    "machinery": "manufacturing",
    "maschinenbau": "manufacturing",
    "automotive": "manufacturing",
    "aerospace": "manufacturing",
    "chemicals": "manufacturing",
    "electronics": "manufacturing",
    "semiconductors": "manufacturing",
    "plastics": "manufacturing",
    "textiles": "manufacturing",
    "food production": "manufacturing",
    "packaging": "manufacturing",
    "industrie": "manufacturing",
    "retail": "retail",
    "e-commerce": "retail",
    "ecommerce": "retail",
    "consumer goods": "retail",
    "wholesale": "retail",
    "apparel": "retail",
    "fashion": "retail",
    "supermarket": "retail",
    "einzelhandel": "retail",
    "handel": "retail",
    "education": "education",
    "higher education": "education",
    "university": "education",
    "school": "education",
    "e learning": "education",
    "training": "education",
    "bildung": "education",
    "government": "government",
    "public sector": "government",
    "public administration": "government",
    "defense": "government",
    "military": "government",
    "behorde": "government",
    "municipal": "government",
    "consulting": "professional_services",
    "management consulting": "professional_services",
    "legal": "professional_services",
    "law practice": "professional_services",
    "law firm": "professional_services",
    "staffing": "professional_services",
    "recruiting": "professional_services",
    "architecture": "professional_services",
    "marketing and advertising": "media",
    "advertising": "media",
    "media": "media",
    "publishing": "media",
    "broadcast": "media",
    "entertainment": "media",
    "newspapers": "media",
    "music": "media",
    "film": "media",
    "gaming": "media",
    "telecommunications": "telecommunications",
    "telecom": "telecommunications",
    "telco": "telecommunications",
    "wireless": "telecommunications",
    "telekommunikation": "telecommunications",
    "energy": "energy",
    "utilities": "energy",
    "oil": "energy",
    "gas": "energy",
    "renewables": "energy",
    "solar": "energy",
    "power": "energy",
    "mining": "energy",
    "energie": "energy",
    "real estate": "real_estate",
    "property": "real_estate",
    "immobilien": "real_estate",
    "commercial real estate": "real_estate",
    "construction": "construction",
    "building materials": "construction",
    "civil engineering": "construction",
    "bau": "construction",
    "bauwesen": "construction",
    "transportation": "transportation",
    "logistics": "transportation",
    "shipping": "transportation",
    "airlines": "transportation",
    "aviation": "transportation",
    "trucking": "transportation",
    "freight": "transportation",
    "railroad": "transportation",
    "logistik": "transportation",
    "maritime": "transportation",
    "hospitality": "hospitality",
    "hotel": "hospitality",
    "hotels": "hospitality",
    "restaurants": "hospitality",
    "leisure": "hospitality",
    "travel": "hospitality",
    "tourism": "hospitality",
    "food and beverages": "hospitality",
    "gastronomie": "hospitality",
    "nonprofit": "nonprofit",
    "non-profit": "nonprofit",
    "non profit": "nonprofit",
    "ngo": "nonprofit",
    "charity": "nonprofit",
    "philanthropy": "nonprofit",
    "foundation": "nonprofit",
    "religious": "nonprofit",
    "civic": "nonprofit",
    "verein": "nonprofit",
}

# NAICS prefixes, longest first wins.
NAICS_PREFIXES: dict[str, str] = {
    "11": "other",
    "21": "energy",
    "22": "energy",
    "23": "construction",
    "31": "manufacturing",
    "32": "manufacturing",
    "33": "manufacturing",
    "3254": "life_sciences",
    "3391": "life_sciences",
    "42": "retail",
    "44": "retail",
    "45": "retail",
    "48": "transportation",
    "49": "transportation",
    "51": "media",
    "5112": "software",
    "5132": "software",
    "517": "telecommunications",
    "518": "it_services",
    "519": "media",
    "52": "financial_services",
    "524": "insurance",
    "53": "real_estate",
    "54": "professional_services",
    "5415": "it_services",
    "54171": "life_sciences",
    "55": "professional_services",
    "56": "professional_services",
    "61": "education",
    "62": "healthcare",
    "624": "nonprofit",
    "71": "media",
    "72": "hospitality",
    "81": "other",
    "813": "nonprofit",
    "92": "government",
}

# SIC prefixes (four-digit codes), longest first wins.
SIC_PREFIXES: dict[str, str] = {
    **{f"{n:02d}": "other" for n in range(1, 10)},
    **{f"{n:02d}": "energy" for n in range(10, 15)},
    "15": "construction",
    "16": "construction",
    "17": "construction",
    **{f"{n:02d}": "manufacturing" for n in range(20, 40)},
    "283": "life_sciences",
    "384": "life_sciences",
    **{f"{n:02d}": "transportation" for n in range(40, 48)},
    "48": "telecommunications",
    "483": "media",
    "484": "media",
    "49": "energy",
    "50": "retail",
    "51": "retail",
    **{f"{n:02d}": "retail" for n in range(52, 60)},
    "58": "hospitality",
    "60": "financial_services",
    "61": "financial_services",
    "62": "financial_services",
    "67": "financial_services",
    "63": "insurance",
    "64": "insurance",
    "65": "real_estate",
    "70": "hospitality",
    "72": "other",
    "73": "professional_services",
    "737": "it_services",
    "7372": "software",
    "78": "media",
    "79": "media",
    "80": "healthcare",
    "81": "professional_services",
    "82": "education",
    "83": "nonprofit",
    "86": "nonprofit",
    "87": "professional_services",
    "8731": "life_sciences",
    **{f"{n:02d}": "government" for n in range(91, 98)},
}


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("&", " and ").replace("/", " ")
    return " " + re.sub(r"[\s,;:()]+", " ", text).strip() + " "


def _by_prefix(code: str, table: Mapping[str, str]) -> str | None:
    digits = re.sub(r"\D", "", code)
    for length in range(len(digits), 1, -1):
        found = table.get(digits[:length])
        if found is not None:
            return found
    return None


def vertical_of_industry(text: str, keywords: Mapping[str, str] | None = None) -> str | None:
    return _vertical_of_industry(text, tuple((keywords or {}).items()))


@functools.lru_cache(maxsize=8_192)
def _vertical_of_industry(text: str, keywords: tuple[tuple[str, str], ...]) -> str | None:
    """Industries repeat (a list, a form's drop-down): each is classified once."""
    folded = _fold(text)
    for keyword, vertical, anywhere in _keyword_table(keywords):
        if f" {keyword} " in folded or (anywhere and keyword in folded):
            return vertical
    return None


@functools.lru_cache(maxsize=16)
def _keyword_table(keywords: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str, bool], ...]:
    """The keywords, longest first, folded once: (folded keyword, vertical, whether it is
    long enough to match inside a word)."""
    table = {**INDUSTRY_KEYWORDS, **dict(keywords)}
    return tuple(
        (_fold(keyword).strip(), table[keyword], len(keyword) >= 6)
        for keyword in sorted(table, key=len, reverse=True)
    )


def vertical_of_naics(code: str) -> str | None:
    return _by_prefix(code, NAICS_PREFIXES)


def vertical_of_sic(code: str) -> str | None:
    return _by_prefix(code, SIC_PREFIXES)


def classify_vertical(
    *,
    industry: str | None,
    sic_code: str | None,
    naics_code: str | None,
    verticals: tuple[str, ...],
    keywords: Mapping[str, str] | None = None,
) -> str | None:
    """The vertical of a company: NAICS, then SIC (codes are precise), then the free text.

    Keywords of the deployment (``keywords``) take precedence over the built-in table.
    """
    found = None
    if naics_code:
        found = vertical_of_naics(naics_code)
    if found is None and sic_code:
        found = vertical_of_sic(sic_code)
    if found is None and industry:
        found = vertical_of_industry(industry, keywords)
        if found is None:
            found = "other"
    if found is None:
        return None
    if found in verticals:
        return found
    return "other" if "other" in verticals else None
