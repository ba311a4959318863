"""A realistic quarter, planned from a seed: no I/O, the same plan for the same arguments.

The plan holds the routing configuration (territories, teams, reps, named accounts, nurture
programs), the campaigns with their sources, doors and costs, and the leads: who they are,
their touchpoints over the quarter, and what sales reported about them afterwards.

Who a lead is decides its grade under the default rulebook, so the plan knows which leads
sales will get:

* **hot**: a director or above at a company of 200+ people in a vertical we sell to, in a
  country we serve: fit 60 or more, an A or a B whatever the touchpoint. Sales follows most
  of them up: contacted (most within the SLA, some late, some never), then accepted or
  rejected with a reason, then an opportunity with an amount, then won or lost.
* **warm**: a manager at a 50-199 company in a vertical we sell to: fit 46, a C after a
  download or a registration (nurture), a B or an A after a directory referral, an event or
  a request (sales gets it, and reports on it, accepting less of it); some nurtured ones
  come back later and ask for a demo, an A, and leave nurture for a rep.
* **cold**: too small, another vertical, a free-mail address or a country we do not serve:
  C or D, nurture.

Feedback is planned only for the leads sales gets from their first touchpoint, and only up
to ``end``: recent leads are still waiting for their first touch. Leads that reach sales
later (a second touchpoint) and purchased-list leads get none: their clocks breach.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.reporting.domain.periods import quarter_of

# A first touchpoint of these types gives a warm lead medium engagement or more: a B or an A.
ENGAGING_TYPES = frozenset(
    {
        "directory_listing",
        "event_attendance",
        "webinar_attendance",
        "demo_request",
        "pricing_request",
        "contact_request",
    }
)
REJECTION_REASONS = ("wrong_target", "no_need", "no_timeframe", "bad_data", "duplicate", "other")


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: str
    source: str
    door: str  # form | api | import
    touchpoint_type: str
    weight: int  # share of the quarter's leads
    hot: float  # share of hot leads
    warm: float  # share of warm leads (the rest are cold)
    cost: Decimal  # for the whole window
    quality: float  # 0..1: how often sales accepts and converts what it brings
    follow_up_type: str | None = None  # a second touchpoint some leads make
    reasons: tuple[float, ...] = (0.35, 0.2, 0.25, 0.1, 0.05, 0.05)  # REJECTION_REASONS
    days: tuple[float, float] = (0.0, 1.0)  # part of the window it ran in


CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign(
        "webinar-pipeline-automation", "web_form", "form", "webinar_registration", 18,
        hot=0.35, warm=0.35, cost=Decimal(72000), quality=0.55,
        follow_up_type="webinar_attendance",
    ),
    Campaign(
        "pricing-page", "web_form", "form", "pricing_request", 9,
        hot=0.7, warm=0.2, cost=Decimal(36000), quality=0.75,
    ),
    Campaign(
        "whitepaper-revops", "web_form", "form", "content_download", 16,
        hot=0.25, warm=0.45, cost=Decimal(48000), quality=0.45,
    ),
    Campaign(
        "g2-directory", "directory", "api", "directory_listing", 14,
        hot=0.45, warm=0.3, cost=Decimal(40000), quality=0.65,
        reasons=(0.25, 0.2, 0.3, 0.1, 0.1, 0.05),
    ),
    Campaign(
        "capterra-listing", "directory", "api", "directory_listing", 7,
        hot=0.4, warm=0.3, cost=Decimal(24000), quality=0.55,
    ),
    Campaign(
        "purchased-list-emea", "purchased_list", "import", "list_import", 18,
        hot=0.15, warm=0.2, cost=Decimal(56000), quality=0.2,
        reasons=(0.5, 0.15, 0.05, 0.25, 0.05, 0.0),
    ),
    Campaign(
        "saastr-europe-booth", "event", "api", "event_attendance", 10,
        hot=0.4, warm=0.35, cost=Decimal(120000), quality=0.5, days=(0.45, 0.48),
    ),
    Campaign(
        "partner-referrals", "partner", "api", "contact_request", 6,
        hot=0.6, warm=0.25, cost=Decimal(16000), quality=0.8,
        reasons=(0.2, 0.3, 0.3, 0.05, 0.1, 0.05),
    ),
)  # fmt: skip

# ---------------------------------------------------------------- routing configuration

TERRITORIES: tuple[dict[str, Any], ...] = (
    {"territory_id": "uk", "name": "United Kingdom", "country": "GB"},
    {"territory_id": "ie", "name": "Ireland", "country": "IE"},
    {"territory_id": "de", "name": "Germany", "country": "DE"},
    {"territory_id": "at", "name": "Austria", "country": "AT"},
    {"territory_id": "ch", "name": "Switzerland", "country": "CH"},
    {"territory_id": "fr", "name": "France", "country": "FR"},
    {"territory_id": "nl", "name": "Netherlands", "country": "NL"},
    {"territory_id": "us", "name": "United States", "country": "US"},
    {"territory_id": "ca", "name": "Canada", "country": "CA"},
)
TEAMS: tuple[dict[str, Any], ...] = (
    {"team_id": "uk-ireland", "name": "UK & Ireland", "territory_ids": ["uk", "ie"]},
    {"team_id": "dach", "name": "DACH", "territory_ids": ["de", "at", "ch"]},
    {"team_id": "france-benelux", "name": "France & Benelux", "territory_ids": ["fr", "nl"]},
    {"team_id": "north-america", "name": "North America", "territory_ids": ["us", "ca"]},
)
_REPS = (
    ("olivia", "Olivia Hughes", "uk-ireland", "Europe/London", 2),
    ("liam", "Liam Byrne", "uk-ireland", "Europe/Dublin", 1),
    ("jonas", "Jonas Becker", "dach", "Europe/Berlin", 1),
    ("lena", "Lena Huber", "dach", "Europe/Vienna", 1),
    ("noah", "Noah Meier", "dach", "Europe/Zurich", 1),
    ("camille", "Camille Laurent", "france-benelux", "Europe/Paris", 1),
    ("daan", "Daan de Vries", "france-benelux", "Europe/Amsterdam", 1),
    ("emma", "Emma Johnson", "north-america", "America/New_York", 2),
    ("mason", "Mason Clark", "north-america", "America/Chicago", 1),
    ("ava", "Ava Tremblay", "north-america", "America/Toronto", 1),
)
REPS: tuple[dict[str, Any], ...] = tuple(
    {
        "rep_id": rep_id,
        "name": name,
        "team_id": team,
        "email": f"{rep_id}@leadflow-demo.example",
        "crm_user_id": f"crm-{rep_id}",
        "time_zone": zone,
        "working_hours": "mon-fri 08:30-17:30",
        # A quarter's worth of open leads: the demo is about the flow, not about capacity.
        "capacity": 400,
        "weight": weight,
    }
    for rep_id, name, team, zone, weight in _REPS
)
PROGRAMS: tuple[dict[str, Any], ...] = (
    {"program_id": "nurture-warm", "name": "Warm: case studies and webinars", "grades": ["C"]},
    {"program_id": "nurture-cold", "name": "Cold: monthly newsletter", "grades": ["D"]},
    {
        "program_id": "nurture-finance",
        "name": "Finance: compliance content",
        "grades": ["C", "D"],
        "verticals": ["financial_services", "insurance"],
    },
)

# ---------------------------------------------------------------- people and companies

COUNTRIES = {  # served countries of hot and warm leads: (weight, tld, names)
    "GB": (24, "co.uk", "United Kingdom"),
    "IE": (3, "ie", "Ireland"),
    "DE": (18, "de", "Germany"),
    "AT": (4, "at", "Austria"),
    "CH": (4, "ch", "Switzerland"),
    "FR": (9, "fr", "France"),
    "NL": (6, "nl", "Netherlands"),
    "US": (26, "com", "United States"),
    "CA": (6, "ca", "Canada"),
}
PHONE_PREFIX = {
    "GB": "+44 20 7946 ",
    "IE": "+353 1 555 ",
    "DE": "+49 30 5555 ",
    "AT": "+43 1 555 ",
    "CH": "+41 44 555 ",
    "FR": "+33 1 55 55 ",
    "NL": "+31 20 555 ",
    "US": "+1 415 555 ",
    "CA": "+1 416 555 ",
}
TARGET_INDUSTRIES = (
    "Software",
    "IT Services",
    "Financial Services",
    "Insurance",
    "Manufacturing",
    "Healthcare",
    "Professional Services",
)
OTHER_INDUSTRIES = ("Retail", "Education", "Hospitality", "Non-profit", "Construction")
HOT_TITLES = (
    "VP Engineering",
    "VP Sales",
    "Chief Technology Officer",
    "Chief Revenue Officer",
    "Director of IT",
    "Director of Operations",
    "Head of Marketing",
    "CFO",
)
WARM_TITLES = ("Marketing Manager", "IT Manager", "Sales Operations Manager", "Finance Manager")
COLD_TITLES = ("Analyst", "Student", "Intern", "Software Engineer", "Assistant")
FIRST = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Tim", "Katherine", "Dennis", "Barbara",
    "Ken", "Frances", "John", "Hedy", "Edsger", "Radia", "Niklaus", "Sophie", "Anita",
    "Donald", "Lynn", "Shafi", "Leslie", "Jean", "Fernando", "Mary", "Claude", "Karen",
    "Bjarne", "Joan", "Guido", "Ines", "Marta", "Yuki", "Priya", "Omar", "Elena",
)  # fmt: skip
LAST = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Berners", "Johnson", "Ritchie",
    "Liskov", "Thompson", "Allen", "Backus", "Lamarr", "Dijkstra", "Perlman", "Wirth",
    "Wilson", "Borg", "Knuth", "Conway", "Goldwasser", "Lamport", "Sammet", "Corbato",
    "Keller", "Shannon", "Jones", "Stroustrup", "Clarke", "Rossum", "Weber", "Garcia",
)  # fmt: skip
SYLLABLES = (
    "ac", "ver", "lo", "tan", "nex", "zen", "ka", "pri", "sol", "tri", "mo", "vi", "qua",
    "ra", "bel", "dor", "fin", "gal", "hex", "ion", "lum", "nor", "orb", "pax", "rix",
)  # fmt: skip
SUFFIXES = ("Systems", "Labs", "Group", "Technologies", "Partners", "Industries", "Networks")


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    domain: str
    employees: int
    industry: str
    country: str


@dataclass(frozen=True, slots=True)
class Touch:
    at: datetime
    campaign: str
    source: str
    door: str
    touchpoint_type: str


@dataclass(frozen=True, slots=True)
class Disposition:
    at: datetime
    status: str
    rejection_reason: str | None = None
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PlannedLead:
    email: str
    person: dict[str, Any]  # as POST /v1/leads takes it, without source/campaign/type/time
    kind: str  # hot | warm | cold
    touches: tuple[Touch, ...]
    feedback: tuple[Disposition, ...] = ()

    @property
    def campaign(self) -> str:
        return self.touches[0].campaign


@dataclass(frozen=True, slots=True)
class Target:
    quarter: str
    scope: str  # campaign | team
    scope_id: str
    leads: int
    mqls: int
    conversion: float


@dataclass(frozen=True, slots=True)
class Quarter:
    start: datetime
    end: datetime
    campaigns: tuple[Campaign, ...]
    leads: tuple[PlannedLead, ...]
    named_accounts: tuple[dict[str, Any], ...]
    costs: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (campaign, quarter)
    targets: tuple[Target, ...] = ()

    @property
    def touches(self) -> int:
        return sum(len(lead.touches) for lead in self.leads)

    @property
    def feedback(self) -> int:
        return sum(len(lead.feedback) for lead in self.leads)


def _company_name(rng: random.Random) -> str:
    stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3)))).capitalize()
    return f"{stem} {rng.choice(SUFFIXES)}"


def _companies(rng: random.Random, count: int) -> list[Company]:
    countries = list(COUNTRIES)
    weights = [COUNTRIES[c][0] for c in countries]
    seen: set[str] = set()
    companies: list[Company] = []
    while len(companies) < count:
        name = _company_name(rng)
        country = rng.choices(countries, weights)[0]
        domain = f"{name.split()[0].lower()}-{name.split()[1].lower()[:4]}.{COUNTRIES[country][1]}"
        if domain in seen:
            continue
        seen.add(domain)
        big = rng.random() < 0.6
        companies.append(
            Company(
                name=name,
                domain=domain,
                employees=rng.randint(200, 5000) if big else rng.randint(50, 199),
                industry=rng.choice(TARGET_INDUSTRIES),
                country=country,
            )
        )
    return companies


def _when(
    rng: random.Random, start: datetime, span: timedelta, days: tuple[float, float]
) -> datetime:
    """A moment in the campaign's part of the window, mostly on weekdays in office hours."""
    low, high = days
    for _ in range(20):
        moment = start + span * rng.uniform(low, high)
        if moment.weekday() < 5 or rng.random() < 0.1:
            break
    hour = rng.choice((8, 9, 9, 10, 10, 11, 11, 13, 14, 14, 15, 16, 17, 19))
    moment = moment.replace(
        hour=hour, minute=rng.randint(0, 59), second=rng.randint(0, 59), microsecond=0
    )
    return min(max(moment, start), start + span)


def _feedback(
    rng: random.Random,
    campaign: Campaign,
    first: datetime,
    end: datetime,
    *,
    quality: float = 1.0,
) -> tuple[Disposition, ...]:
    """What sales reported about a lead it got, up to ``end``."""
    if rng.random() < 0.12:
        return ()  # never followed up: the SLA is breached, the lead re-assigned
    roll = rng.random()
    hours = (
        rng.uniform(0.2, 6)
        if roll < 0.7
        else rng.uniform(6, 30)
        if roll < 0.9
        else rng.uniform(30, 90)
    )
    at = first + timedelta(hours=hours)
    plan = [Disposition(at, "contacted")]
    roll = rng.random()
    accept = 0.35 + 0.35 * campaign.quality * quality
    if roll < accept:
        at += timedelta(days=rng.uniform(0.5, 4))
        plan.append(Disposition(at, "accepted"))
        if rng.random() < 0.3 + 0.4 * campaign.quality * quality:
            at += timedelta(days=rng.uniform(4, 25))
            amount = Decimal(rng.randrange(8_000, 90_000, 500))
            plan.append(Disposition(at, "converted", amount=amount))
            outcome = rng.random()
            if outcome < 0.45:
                at += timedelta(days=rng.uniform(10, 45))
                won = (amount * Decimal(rng.uniform(0.85, 1.15))).quantize(Decimal(1))
                plan.append(Disposition(at, "won", amount=won))
            elif outcome < 0.75:
                at += timedelta(days=rng.uniform(10, 45))
                plan.append(Disposition(at, "lost"))
    elif roll < accept + 0.35:
        at += timedelta(days=rng.uniform(0.2, 3))
        reason = rng.choices(REJECTION_REASONS, campaign.reasons)[0]
        plan.append(Disposition(at, "rejected", rejection_reason=reason))
    return tuple(step for step in plan if step.at <= end)


def _quarters(start: datetime, end: datetime) -> dict[str, float]:
    """The share of the window each quarter holds."""
    shares: dict[str, float] = {}
    day = start
    total = (end - start).total_seconds()
    while day < end:
        step = min(day + timedelta(days=1), end)
        quarter = quarter_of(day)
        shares[quarter] = shares.get(quarter, 0.0) + (step - day).total_seconds() / total
        day = step
    return shares


def _person(
    rng: random.Random, kind: str, company: Company, number: int
) -> tuple[dict[str, Any], str]:
    """Who a lead is (as POST /v1/leads takes it), and the domain of their email."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    person: dict[str, Any] = {"first_name": first, "last_name": last}
    domain = company.domain
    if kind == "hot":
        person.update(
            title=rng.choice(HOT_TITLES),
            company=company.name,
            website=f"https://www.{company.domain}",
            employees=max(company.employees, 200),
            industry=company.industry,
            country=company.country,
        )
    elif kind == "warm":
        person.update(
            title=rng.choice(WARM_TITLES),
            company=company.name,
            employees=rng.randint(50, 199),
            industry=company.industry,
            country=company.country,
        )
        domain = f"{company.domain.split('.')[0]}-group.{COUNTRIES[company.country][1]}"
    else:
        cold = rng.random()
        person.update(
            title=rng.choice(COLD_TITLES),
            company=f"{_company_name(rng)}",
            employees=rng.randint(1, 9) if cold < 0.6 else rng.randint(10, 40),
            industry=rng.choice(OTHER_INDUSTRIES),
            country=rng.choice(("BR", "IN", "MX", "ZA")) if cold > 0.8 else company.country,
        )
        domain = "gmail.com" if cold < 0.4 else f"{number}-{company.domain}"
    if rng.random() < 0.6 and person.get("country") in PHONE_PREFIX:
        person["phone"] = f"{PHONE_PREFIX[person['country']]}{rng.randint(1000, 9999)}"
    return person, domain


def _targets(
    rng: random.Random, planned: list[PlannedLead], shares: dict[str, float], leads: int
) -> tuple[Target, ...]:
    """Targets for the quarters the window mostly covers: campaigns and teams."""
    targets: list[Target] = []
    for quarter in shares:
        cohort = [lead for lead in planned if quarter_of(lead.touches[0].at) == quarter]
        if len(cohort) < max(10, leads // 10):
            continue
        for campaign in CAMPAIGNS[:4]:
            mine = [lead for lead in cohort if lead.campaign == campaign.campaign_id]
            hot = sum(1 for lead in mine if lead.kind == "hot")
            targets.append(
                Target(
                    quarter,
                    "campaign",
                    campaign.campaign_id,
                    leads=max(1, round(len(mine) * rng.uniform(0.85, 1.2))),
                    mqls=max(1, round(hot * rng.uniform(0.85, 1.2))),
                    conversion=round(0.04 + 0.08 * campaign.quality, 2),
                )
            )
        for team in TEAMS:
            countries = {
                t["country"] for t in TERRITORIES if t["territory_id"] in team["territory_ids"]
            }
            mine = [lead for lead in cohort if lead.person.get("country") in countries]
            hot = sum(1 for lead in mine if lead.kind == "hot")
            targets.append(
                Target(
                    quarter,
                    "team",
                    str(team["team_id"]),
                    # A team owns the leads it was given: the A and B leads.
                    leads=max(1, round(hot * rng.uniform(0.9, 1.2))),
                    mqls=max(1, round(hot * rng.uniform(0.85, 1.1))),
                    conversion=0.08,
                )
            )
    return tuple(targets)


def plan(*, leads: int, end: datetime, days: int = 91, seed: int = 2031) -> Quarter:
    """The quarter ending at ``end`` (``days`` long), with about ``leads`` leads."""
    rng = random.Random(seed)
    end = end.astimezone(UTC)
    start = end - timedelta(days=days)
    span = end - start
    companies = _companies(rng, max(40, leads // 4))
    named = tuple(
        {"domain": company.domain, "rep_id": rep["rep_id"], "name": company.name}
        for company, rep in zip(
            [c for c in companies if c.employees >= 1000][:6],
            [r for r in REPS if r["weight"] == 1],
            strict=False,
        )
    )
    weights = [campaign.weight for campaign in CAMPAIGNS]
    planned: list[PlannedLead] = []
    emails: set[str] = set()
    for number in range(leads):
        campaign = rng.choices(CAMPAIGNS, weights)[0]
        kind = rng.choices(
            ("hot", "warm", "cold"), (campaign.hot, campaign.warm, 1 - campaign.hot - campaign.warm)
        )[0]
        person, domain = _person(rng, kind, rng.choice(companies), number)
        email = f"{person['first_name']}.{person['last_name']}.{number}@{domain}".lower()
        if email in emails:
            continue
        emails.add(email)
        at = _when(rng, start, span, campaign.days)
        touches = [
            Touch(
                at, campaign.campaign_id, campaign.source, campaign.door, campaign.touchpoint_type
            )
        ]
        if campaign.follow_up_type and rng.random() < 0.55:
            later = at + timedelta(days=rng.uniform(1, 7))
            if later <= end:
                touches.append(
                    Touch(
                        later, campaign.campaign_id, campaign.source, "api", campaign.follow_up_type
                    )
                )
        if kind == "warm" and rng.random() < 0.15:
            later = at + timedelta(days=rng.uniform(5, 40))
            if later <= end:
                touches.append(Touch(later, "pricing-page", "web_form", "form", "demo_request"))
        feedback: tuple[Disposition, ...] = ()
        if kind == "hot":
            feedback = _feedback(rng, campaign, touches[0].at, end)
        elif kind == "warm" and campaign.touchpoint_type in ENGAGING_TYPES:
            feedback = _feedback(rng, campaign, touches[0].at, end, quality=0.5)
        if campaign.door == "import":
            feedback = ()  # reps ignore purchased lists: their A/B leads breach the SLA
        planned.append(PlannedLead(email, person, kind, tuple(touches), feedback))
    planned.sort(key=lambda lead: lead.touches[0].at)
    shares = _quarters(start, end)
    costs = {
        (campaign.campaign_id, quarter): (campaign.cost * Decimal(str(round(share, 4)))).quantize(
            Decimal("0.01")
        )
        for campaign in CAMPAIGNS
        for quarter, share in shares.items()
        if share > 0
    }
    targets = _targets(rng, planned, shares, leads)
    return Quarter(
        start=start,
        end=end,
        campaigns=CAMPAIGNS,
        leads=tuple(planned),
        named_accounts=named,
        costs=costs,
        targets=targets,
    )
