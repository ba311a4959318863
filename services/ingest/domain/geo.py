"""Countries (ISO 3166-1 alpha-2) and regions (ISO 3166-2) from what people really write."""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

import pycountry


def _fold(text: str) -> str:
    """Lower case, no accents, no dots, single spaces: ``U.S.A.`` -> ``usa``."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace(".", "").replace("\u2019", "'")
    text = re.sub(r"[\s_\-,()]+", " ", text)
    return text.strip()


# Names, abbreviations and native spellings pycountry does not know.
COUNTRY_SYNONYMS: dict[str, str] = {
    "usa": "US",
    "us": "US",
    "u s": "US",
    "america": "US",
    "united states": "US",
    "united states of america": "US",
    "the united states": "US",
    "estados unidos": "US",
    "vereinigte staaten": "US",
    "etats unis": "US",
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom": "GB",
    "grossbritannien": "GB",
    "vereinigtes konigreich": "GB",
    "royaume uni": "GB",
    "deutschland": "DE",
    "germany": "DE",
    "brd": "DE",
    "allemagne": "DE",
    "alemania": "DE",
    "germania": "DE",
    "osterreich": "AT",
    "oesterreich": "AT",
    "autriche": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "switzerland": "CH",
    "frankreich": "FR",
    "holland": "NL",
    "the netherlands": "NL",
    "nederland": "NL",
    "niederlande": "NL",
    "pays bas": "NL",
    "espana": "ES",
    "spanien": "ES",
    "italia": "IT",
    "italien": "IT",
    "polska": "PL",
    "polen": "PL",
    "belgie": "BE",
    "belgique": "BE",
    "belgien": "BE",
    "brasil": "BR",
    "mexico": "MX",
    "czech republic": "CZ",
    "czechia": "CZ",
    "cesko": "CZ",
    "tschechien": "CZ",
    "russia": "RU",
    "russland": "RU",
    "rossiya": "RU",
    "south korea": "KR",
    "korea": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "uae": "AE",
    "u a e": "AE",
    "emirates": "AE",
    "turkey": "TR",
    "turkiye": "TR",
    "sverige": "SE",
    "schweden": "SE",
    "norge": "NO",
    "norwegen": "NO",
    "danmark": "DK",
    "danemark": "DK",
    "suomi": "FI",
    "finnland": "FI",
    "eire": "IE",
    "ireland": "IE",
    "republic of ireland": "IE",
    "irland": "IE",
    "hrvatska": "HR",
    "magyarorszag": "HU",
    "ungarn": "HU",
    "ellada": "GR",
    "griechenland": "GR",
    "nippon": "JP",
    "japan": "JP",
    "zhongguo": "CN",
    "china": "CN",
    "prc": "CN",
    "peoples republic of china": "CN",
    "taiwan": "TW",
    "hong kong": "HK",
    "vietnam": "VN",
    "viet nam": "VN",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "macedonia": "MK",
    "north macedonia": "MK",
    "kosovo": "XK",
    "ivory coast": "CI",
    "cote d'ivoire": "CI",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "holy see": "VA",
    "vatican": "VA",
    "palestine": "PS",
    "new zealand": "NZ",
    "aotearoa": "NZ",
    "australien": "AU",
    "kanada": "CA",
    "south africa": "ZA",
    "sudafrika": "ZA",
    "saudi arabia": "SA",
    "ksa": "SA",
    "luxemburg": "LU",
    "portugal": "PT",
    "slovakia": "SK",
    "slowakei": "SK",
    "slovenija": "SI",
    "slowenien": "SI",
    "rumanien": "RO",
    "romania": "RO",
    "bulgarien": "BG",
    "ukraine": "UA",
    "ukraina": "UA",
    "indien": "IN",
    "bharat": "IN",
}

# Region names people write that pycountry spells otherwise (its names are often native).
REGION_SYNONYMS: dict[str, str] = {
    "bavaria": "DE-BY",
    "lower saxony": "DE-NI",
    "north rhine westphalia": "DE-NW",
    "nrw": "DE-NW",
    "rhineland palatinate": "DE-RP",
    "saxony": "DE-SN",
    "saxony anhalt": "DE-ST",
    "thuringia": "DE-TH",
    "hesse": "DE-HE",
    "mecklenburg western pomerania": "DE-MV",
    "mecklenburg vorpommern": "DE-MV",
    "baden wuerttemberg": "DE-BW",
    "bawu": "DE-BW",
    "vienna": "AT-9",
    "wien": "AT-9",
    "tyrol": "AT-7",
    "tirol": "AT-7",
    "carinthia": "AT-2",
    "styria": "AT-6",
    "upper austria": "AT-4",
    "lower austria": "AT-3",
    "zurich": "CH-ZH",
    "geneva": "CH-GE",
    "geneve": "CH-GE",
    "genf": "CH-GE",
    "lombardy": "IT-25",
    "england": "GB-ENG",
    "scotland": "GB-SCT",
    "wales": "GB-WLS",
    "northern ireland": "GB-NIR",
    "greater london": "GB-LND",
    "london": "GB-LND",
    "cal": "US-CA",
    "calif": "US-CA",
    "socal": "US-CA",
    "norcal": "US-CA",
    "mass": "US-MA",
    "penn": "US-PA",
    "wash": "US-WA",
    "dc": "US-DC",
    "washington dc": "US-DC",
    "washington d c": "US-DC",
    "district of columbia": "US-DC",
    "ny": "US-NY",
    "nyc": "US-NY",
    "new york state": "US-NY",
    "tex": "US-TX",
    "quebec": "CA-QC",
    "catalonia": "ES-CT",
    "catalunya": "ES-CT",
    "andalusia": "ES-AN",
    "brittany": "FR-BRE",
    "bretagne": "FR-BRE",
    "north holland": "NL-NH",
    "south holland": "NL-ZH",
    "flanders": "BE-VLG",
}


@cache
def _country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            value = getattr(country, attribute, None)
            if value:
                names[_fold(value)] = country.alpha_2
        names[country.alpha_3.lower()] = country.alpha_2
    for folded, code in COUNTRY_SYNONYMS.items():
        names[_fold(folded)] = code
    return names


@lru_cache(maxsize=4_096)  # a list spells its countries a few ways, over and over
def normalize_country(raw: str) -> str | None:
    """``Deutschland``, ``U.S.A.``, ``UK``, ``GBR``, ``de`` -> ISO alpha-2; None if unknown."""
    folded = _fold(raw)
    if not folded:
        return None
    if len(folded) == 2 and folded.isalpha():
        if folded == "uk":
            return "GB"
        country = pycountry.countries.get(alpha_2=folded.upper())
        return country.alpha_2 if country is not None else None
    return _country_names().get(folded)


@cache
def _subdivisions(country: str) -> dict[str, str]:
    names: dict[str, str] = {}
    found = pycountry.subdivisions.get(country_code=country)  # type: ignore[no-untyped-call]
    for subdivision in found or ():
        names[_fold(subdivision.name)] = subdivision.code
        suffix = subdivision.code.split("-", 1)[1]
        names.setdefault(suffix.lower(), subdivision.code)
    return names


@cache
def _all_region_names() -> dict[str, list[str]]:
    """Every subdivision name, worldwide, to the codes it could be."""
    names: dict[str, list[str]] = {}
    for subdivision in pycountry.subdivisions:
        names.setdefault(_fold(subdivision.name), []).append(subdivision.code)
    return names


def normalize_region(raw: str, *, country: str | None) -> str | None:
    """``Bavaria``/``Bayern``/``BY`` with DE -> ``DE-BY``; ``CA`` with US -> ``US-CA``.

    Without a country, a name that is one subdivision worldwide (``Bavaria``) is enough.
    """
    folded = _fold(raw)
    if not folded:
        return None
    code = raw.strip().upper()
    known = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
    if re.fullmatch(r"[A-Z]{2}-[A-Z0-9]{1,3}", code) and known:
        return code if country is None or code.startswith(country + "-") else None
    synonym = REGION_SYNONYMS.get(folded)
    if synonym is not None and (country is None or synonym.startswith(country + "-")):
        return synonym
    if country is not None:
        return _subdivisions(country).get(folded)
    candidates = _all_region_names().get(folded, [])
    return candidates[0] if len(candidates) == 1 else None


def country_of_region(region: str) -> str:
    return region.split("-", 1)[0]
