"""The routing decision: rule precedence, team matching, capacity and out-of-office."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.routing.domain.decision import (
    Skipped,
    decide,
    decide_nurture,
    match_program,
    match_team,
    teams_involved,
)
from services.routing.domain.model import (
    Absence,
    LeadFacts,
    NamedAccount,
    NurtureProgram,
    Rep,
    RoutingConfig,
    Team,
    Territory,
)
from services.routing.domain.round_robin import Rotation

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def lead(**overrides: Any) -> LeadFacts:
    values: dict[str, Any] = {
        "lead_id": uuid.uuid4(),
        "grade": "A",
        "country": "DE",
        "region": "DE-BY",
        "postal_code": "80331",
        "vertical": "software",
        "domain": "example.de",
    }
    values.update(overrides)
    return LeadFacts(**values)


def config(**overrides: Any) -> RoutingConfig:
    parts: dict[str, Any] = {
        "territories": [
            Territory("de", country="DE"),
            Territory("bavaria", country="DE", region="DE-BY"),
            Territory("munich", country="DE", postal_prefixes=("80", "81")),
            Territory("munich-centre", country="DE", postal_prefixes=("803",)),
            Territory("uk", country="GB"),
        ],
        "teams": [
            Team("dach", territory_ids=("de",)),
            Team("bavaria", territory_ids=("bavaria",)),
            Team("global"),
            Team("health", verticals=frozenset({"healthcare"})),
        ],
        "reps": [
            Rep("ana", team_id="dach"),
            Rep("ben", team_id="dach"),
            Rep("bo", team_id="bavaria", weight=2),
            Rep("bea", team_id="bavaria"),
            Rep("gil", team_id="global"),
            Rep("hal", team_id="health"),
        ],
        "accounts": [NamedAccount("Example.DE", rep_id="ana")],
        "programs": [
            NurtureProgram("generic"),
            NurtureProgram(
                "software-c", grades=frozenset({"C"}), verticals=frozenset({"software"})
            ),
        ],
    }
    parts.update(overrides)
    return RoutingConfig.of(**parts)


def route(facts: LeadFacts, cfg: RoutingConfig, **kw: Any) -> Any:
    kw.setdefault("rotations", {})
    kw.setdefault("loads", {})
    kw.setdefault("now", NOW)
    return decide(facts, config=cfg, **kw)


# ------------------------------------------------------------------ precedence


def test_a_named_account_owner_who_can_take_it_comes_first() -> None:
    decision = route(lead(), config())
    assert (decision.outcome, decision.rule, decision.rep_id, decision.team_id) == (
        "assigned",
        "named_account",
        "ana",
        "dach",
    )
    assert "example.de is a named account of ana" in decision.explanation
    assert decision.rotation is None  # ownership does not use up a round-robin turn


def test_the_named_account_domain_is_matched_without_case_or_www() -> None:
    assert route(lead(domain="WWW.Example.de"), config()).rep_id == "ana"


@pytest.mark.parametrize(
    ("owner", "loads", "reason"),
    [
        (Rep("ana", team_id="dach", active=False), {}, "inactive"),
        (
            Rep("ana", team_id="dach", absences=(Absence(NOW - timedelta(days=1)),)),
            {},
            "out_of_office",
        ),
        (Rep("ana", team_id="dach", capacity=3), {"ana": 3}, "at_capacity"),
        (Rep("ana", team_id="dach", capacity=0), {}, "at_capacity"),
    ],
)
def test_an_owner_who_cannot_take_it_is_skipped_with_the_reason_and_the_territory_decides(
    owner: Rep, loads: dict[str, int], reason: str
) -> None:
    cfg = config()
    reps = [owner if rep.rep_id == "ana" else rep for rep in cfg.reps.values()]
    decision = route(lead(), config(reps=reps), loads=loads)
    assert decision.rule == "round_robin"
    assert decision.team_id == "bavaria"
    assert decision.skipped[0] == Skipped("ana", reason)  # type: ignore[arg-type]
    assert f"named account of ana, who is {reason}" in decision.explanation


def test_an_owner_who_is_no_rep_any_more_is_skipped() -> None:
    cfg = config(accounts=[NamedAccount("example.de", rep_id="gone")])
    decision = route(lead(), cfg)
    assert decision.skipped[0] == Skipped("gone", "unknown_rep")
    assert decision.rule == "round_robin"


def test_without_an_account_the_most_specific_territory_picks_the_team() -> None:
    cfg = config(
        teams=[
            Team("dach", territory_ids=("de",)),
            Team("bavaria", territory_ids=("bavaria",)),
            Team("munich", territory_ids=("munich",)),
            Team("centre", territory_ids=("munich-centre",)),
            Team("global"),
        ],
        reps=[
            Rep(f"{t}-rep", team_id=t) for t in ("dach", "bavaria", "munich", "centre", "global")
        ],
        accounts=[],
    )
    # Postal prefix 803 beats prefix 80, which beats region, which beats country.
    assert match_team(lead(postal_code="80331"), cfg).team.team_id == "centre"  # type: ignore[union-attr]
    assert match_team(lead(postal_code="80999"), cfg).team.team_id == "munich"  # type: ignore[union-attr]
    assert match_team(lead(postal_code="90402"), cfg).team.team_id == "bavaria"  # type: ignore[union-attr]
    assert match_team(lead(region="DE-BE", postal_code="10115"), cfg).team.team_id == "dach"  # type: ignore[union-attr]
    assert match_team(lead(country="FR", region=None), cfg).team.team_id == "global"  # type: ignore[union-attr]
    decision = route(lead(postal_code="80 331"), cfg)
    assert (decision.team_id, decision.rep_id) == ("centre", "centre-rep")
    assert "territory munich-centre" in decision.explanation


def test_a_team_that_lists_the_vertical_beats_one_that_takes_every_vertical() -> None:
    cfg = config(
        teams=[
            Team("dach", territory_ids=("de",)),
            Team("dach-health", territory_ids=("de",), verticals=frozenset({"healthcare"})),
        ],
        reps=[Rep("ana", team_id="dach"), Rep("hal", team_id="dach-health")],
        accounts=[],
    )
    assert route(lead(vertical="healthcare"), cfg).rep_id == "hal"
    assert route(lead(vertical="software"), cfg).rep_id == "ana"
    assert route(lead(vertical=None), cfg).rep_id == "ana"


def test_territory_is_weighed_before_vertical() -> None:
    cfg = config(accounts=[])
    # "health" covers every territory but lists the vertical; "bavaria" covers the region.
    assert route(lead(vertical="healthcare"), cfg).team_id == "bavaria"
    assert route(lead(country="FR", region=None, vertical="healthcare"), cfg).team_id == "health"


def test_equally_specific_teams_go_to_the_lowest_team_id_and_say_so() -> None:
    cfg = config(
        teams=[Team("zeta", territory_ids=("de",)), Team("alpha", territory_ids=("de",))],
        reps=[Rep("z", team_id="zeta"), Rep("a", team_id="alpha")],
        accounts=[],
    )
    decision = route(lead(region=None), cfg)
    assert decision.team_id == "alpha"
    assert "as specific as zeta" in decision.explanation


def test_no_team_covers_it() -> None:
    cfg = config(teams=[Team("uk", territory_ids=("uk",))], reps=[], accounts=[])
    decision = route(lead(), cfg)
    assert (decision.outcome, decision.rule, decision.team_id) == ("queued", "no_team", None)
    assert "no team covers DE / DE-BY / 80331 / software" in decision.explanation


# ------------------------------------------------------------------ inside the team


def test_round_robin_skips_reps_who_cannot_take_it_and_says_why() -> None:
    cfg = config(
        teams=[Team("dach", territory_ids=("de",))],
        reps=[
            Rep("ana", team_id="dach", active=False),
            Rep("ben", team_id="dach", absences=(Absence(NOW, NOW + timedelta(days=3)),)),
            Rep("cy", team_id="dach", capacity=2),
            Rep("dee", team_id="dach"),
        ],
        accounts=[],
    )
    decision = route(lead(), cfg, loads={"cy": 2, "dee": 1})
    assert decision.rep_id == "dee"
    assert decision.skipped == (
        Skipped("ana", "inactive"),
        Skipped("ben", "out_of_office"),
        Skipped("cy", "at_capacity"),
    )
    assert "cy at_capacity 2/2" in decision.explanation


def test_an_absence_that_ended_or_has_not_begun_does_not_count() -> None:
    absences = (
        Absence(NOW - timedelta(days=5), NOW - timedelta(seconds=1)),
        Absence(NOW + timedelta(hours=1), None),
    )
    cfg = config(
        teams=[Team("dach")], reps=[Rep("ana", team_id="dach", absences=absences)], accounts=[]
    )
    assert route(lead(), cfg).rep_id == "ana"
    assert route(lead(), cfg, now=NOW + timedelta(hours=2)).outcome == "queued"


def test_nobody_can_take_it_queues_it_for_the_team_with_every_reason() -> None:
    cfg = config(
        teams=[Team("dach")],
        reps=[Rep("ana", team_id="dach", capacity=1), Rep("ben", team_id="dach", active=False)],
        accounts=[],
    )
    decision = route(lead(), cfg, loads={"ana": 1})
    assert (decision.outcome, decision.rule, decision.team_id, decision.rep_id) == (
        "queued",
        "team_queue",
        "dach",
        None,
    )
    assert decision.skipped == (Skipped("ana", "at_capacity"), Skipped("ben", "inactive"))
    assert "nobody in team dach can take it: ana at_capacity 1/1, ben inactive" in (
        decision.explanation
    )


def test_a_team_without_reps_queues_it() -> None:
    decision = route(lead(), config(teams=[Team("dach")], reps=[], accounts=[]))
    assert decision.outcome == "queued"
    assert "team dach has no reps" in decision.explanation


def test_reps_who_had_the_lead_are_skipped_on_reassignment() -> None:
    decision = route(lead(), config(), excluded=frozenset({"ana", "bo"}))
    assert decision.rep_id == "bea"
    assert Skipped("ana", "had_lead_before") in decision.skipped
    assert Skipped("bo", "had_lead_before") in decision.skipped


def test_round_robin_follows_the_stored_rotation_and_returns_the_new_one() -> None:
    cfg = config(accounts=[])
    first = route(lead(), cfg)
    assert first.rotation_team_id == "bavaria"
    assert first.rotation is not None
    second = route(lead(), cfg, rotations={"bavaria": first.rotation})
    third = route(lead(), cfg, rotations={"bavaria": second.rotation})
    # bo has weight 2, bea 1: bo gets two of three.
    assert sorted([first.rep_id, second.rep_id, third.rep_id]) == ["bea", "bo", "bo"]
    assert route(lead(), cfg, rotations={"bavaria": Rotation()}).rep_id == first.rep_id


def test_teams_involved_are_the_owners_and_the_matching_one() -> None:
    assert teams_involved(lead(), config()) == ["bavaria", "dach"]
    assert teams_involved(lead(domain=None), config()) == ["bavaria"]
    assert teams_involved(
        lead(country="US", region=None, vertical=None, domain=None), config()
    ) == ["global"]


# ------------------------------------------------------------------ nurture


def test_c_and_d_go_to_the_most_specific_nurture_program() -> None:
    cfg = config()
    c_software = route(lead(grade="C"), cfg)
    assert (c_software.outcome, c_software.rule, c_software.program_id) == (
        "nurture",
        "nurture",
        "software-c",
    )
    assert c_software.rep_id is None
    assert route(lead(grade="D"), cfg).program_id == "generic"
    assert route(lead(grade="C", vertical="retail"), cfg).program_id == "generic"


def test_no_program_for_the_grade_still_nurtures_and_says_so() -> None:
    decision = route(lead(grade="D"), config(programs=[]))
    assert (decision.outcome, decision.program_id) == ("nurture", None)
    assert "no program takes grade D" in decision.explanation


def test_a_recycled_lead_is_nurtured_as_if_it_were_grade_c() -> None:
    decision = decide_nurture(lead(grade="A"), config(), as_grade="C")
    assert decision.program_id == "software-c"
    assert match_program("A", "software", config()) is None
