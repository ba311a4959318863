"""Companies: the registrable domain of a website or email domain, and a name key for matching.

The public-suffix list is the snapshot bundled with tldextract: never fetched.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

import tldextract
from rapidfuzz import fuzz, process

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

# Legal forms and filler words that do not tell two companies apart.
_LEGAL_FORMS: frozenset[str] = frozenset(
    {
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "cos",
        "ltd",
        "limited",
        "llc",
        "llp",
        "lp",
        "plc",
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "ohg",
        "ug",
        "ev",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "sl",
        "bv",
        "nv",
        "oy",
        "ab",
        "as",
        "asa",
        "aps",
        "pty",
        "pvt",
        "kk",
        "se",
        "sp",
        "zoo",
        "the",
        "holding",
        "holdings",
    }
)
# Free hosting and placeholder values that are not a company's site.
_NOT_A_COMPANY_SITE: frozenset[str] = frozenset(
    {"linkedin.com", "facebook.com", "google.com", "example.com", "n/a", "none"}
)

K = TypeVar("K")


@functools.lru_cache(maxsize=16_384)
def registrable_domain(value: str) -> str | None:
    """``https://www.Shop.ACME.co.uk/about`` -> ``acme.co.uk``; None when there is none."""
    text = value.strip().lower()
    if not text:
        return None
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return None
    host = host.rstrip(".")
    if not host or " " in host:
        return None
    parts = _EXTRACT(host)
    if not parts.domain or not parts.suffix:
        return None
    return f"{parts.domain}.{parts.suffix}"


def website_domain(website: str) -> str | None:
    domain = registrable_domain(website)
    if domain is None or domain in _NOT_A_COMPANY_SITE:
        return None
    return domain


@functools.lru_cache(maxsize=16_384)
def company_key(name: str) -> str:
    """A comparable key: ``ACME Corp.`` and ``Acme Corporation`` both give ``acme``."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("&", " and ").replace("+", " and ")
    text = re.sub(r"[^a-z0-9 ]+", " ", text.replace(".", ""))
    words = [word for word in text.split() if word not in _LEGAL_FORMS]
    if not words:  # a name that is only a legal form: keep what was written
        words = text.split()
    return " ".join(words)


def best_name_match(
    key: str, candidates: Iterable[tuple[K, str]], *, threshold: float = 90.0
) -> K | None:
    """The candidate whose name key is closest to ``key``, if it is close enough."""
    if not key:
        return None
    pairs: Sequence[tuple[K, str]] = list(candidates)
    for ident, candidate in pairs:
        if candidate == key:
            return ident
    if not pairs:
        return None
    choices = [candidate for _, candidate in pairs]
    found = process.extractOne(key, choices, scorer=fuzz.token_sort_ratio, score_cutoff=threshold)
    if found is None:
        return None
    return pairs[found[2]][0]
