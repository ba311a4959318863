"""Job titles to seniority (c_level, vp, director, manager, individual) and department."""

from __future__ import annotations

import functools
import re
import unicodedata

from shared.contracts import Seniority


def _fold(title: str) -> str:
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[./,;:()\[\]|]+", " ", text).replace("&", " and ")
    return " " + re.sub(r"\s+", " ", text).strip() + " "


def _any(patterns: str) -> re.Pattern[str]:
    return re.compile(patterns)


# Checked in order: the first that matches decides. Patterns see the folded title padded
# with spaces, so `\b` is not needed around whole words.
_ASSISTANT = _any(r" (assistant|asst|assistent\w*|sekretar\w*|secretary) (to|of|de|des|der)? ")
_SENIORITY: tuple[tuple[Seniority, re.Pattern[str]], ...] = (
    (
        "vp",
        _any(r" (vp|svp|evp|avp|vice president|vice-president|vizeprasident\w*) "),
    ),
    (
        "c_level",
        _any(
            r" (c[a-z]o|ciso|chief [a-z ]+|founder|co founder|cofounder|co-founder|"
            r"(?<!product )owner|"
            r"president|managing director|md|geschaftsfuhrer\w*|geschaeftsfuehrer\w*|"
            r"inhaber\w*|vorstand\w*|directeur general|director general|general manager|gm|"
            r"managing partner) "
        ),
    ),
    (
        "director",
        _any(
            r" (director|directeur|directora|direktor\w*|head|heads|leiter|leiterin|"
            r"bereichsleiter\w*|abteilungsleiter\w*|responsable) "
        ),
    ),
    (
        "manager",
        _any(
            r" (manager|mgr|managerin|lead|leader|team lead|teamleiter\w*|supervisor|"
            r"gruppenleiter\w*|chef|jefe|coordinator lead|superintendent|foreman) "
        ),
    ),
)

# The first department whose pattern matches wins; C-level abbreviations name theirs.
_DEPARTMENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "sales",
        _any(
            r" (cro|sales|vertrieb\w*|verkauf\w*|account executive|ae|sdr|bdr|"
            r"business development|bizdev|account manager|key account|revenue|"
            r"commercial|ventes|ventas) "
        ),
    ),
    (
        "marketing",
        _any(
            r" (cmo|marketing|demand gen\w*|demand generation|growth|brand|"
            r"content|communications|comms|pr|public relations|seo|sem|"
            r"social media|events|kommunikation) "
        ),
    ),
    (
        "finance",
        _any(
            r" (cfo|finance|financial|finanz\w*|accounting|accountant|controller|"
            r"controlling|treasurer|treasury|buchhalt\w*|comptable|tax|audit\w*) "
        ),
    ),
    (
        "legal",
        _any(
            r" (clo|legal|counsel|attorney|lawyer|jurist\w*|compliance|"
            r"general counsel|gc|recht\w*|paralegal) "
        ),
    ),
    (
        "human_resources",
        _any(
            r" (chro|hr|human resources|people|talent|recruit\w*|personal|"
            r"personalwesen|ressources humaines) "
        ),
    ),
    (
        "procurement",
        _any(
            r" (procurement|purchasing|purchaser|buyer|einkauf\w*|sourcing|"
            r"achats|compras) "
        ),
    ),
    (
        "customer_support",
        _any(
            r" (support|customer service|customer success|kundenservice|"
            r"service desk|help desk|helpdesk|customer care|csm) "
        ),
    ),
    ("product", _any(r" (cpo|product|produkt\w*|ux|ui|design) ")),
    (
        "engineering",
        _any(
            r" (cto|engineer\w*|developer|entwickl\w*|software|r and d|rnd|devops|"
            r"architect|programmer|sre|qa|quality assurance|technik|technical|technology) "
        ),
    ),
    (
        "it",
        _any(
            r" (cio|ciso|it|information officer|information technology|information security|"
            r"infosec|"
            r"sysadmin|system administrator|systems|network|infrastructure|helpdesk it|"
            r"edv|informatik\w*|cybersecurity|security) "
        ),
    ),
    (
        "operations",
        _any(
            r" (coo|operations|operating|ops|betrieb\w*|supply chain|logistic\w*|"
            r"facility|facilities|production|produktion|plant) "
        ),
    ),
    (
        "executive",
        _any(
            r" (ceo|founder|co founder|cofounder|owner|president|managing director|"
            r"md|geschaftsfuhrer\w*|geschaeftsfuehrer\w*|inhaber\w*|vorstand\w*|"
            r"general manager|gm|managing partner|chief executive|"
            r"directeur general|director general) "
        ),
    ),
)


# Titles repeat across a list and a campaign's leads: each is folded and matched once.
@functools.lru_cache(maxsize=16_384)
def seniority_of(title: str) -> Seniority | None:
    folded = _fold(title)
    if folded.strip() == "":
        return None
    if _ASSISTANT.search(folded):
        return "individual"
    for level, pattern in _SENIORITY:
        if pattern.search(folded):
            return level
    return "individual"


@functools.lru_cache(maxsize=16_384)
def department_of(title: str, departments: tuple[str, ...]) -> str | None:
    """The department of a title, among ``departments``; ``other`` (if listed) when unknown."""
    folded = _fold(title)
    if folded.strip() == "":
        return None
    for department, pattern in _DEPARTMENTS:
        if department in departments and pattern.search(folded):
            return department
    return "other" if "other" in departments else None
