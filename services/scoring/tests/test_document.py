"""The rulebook document: what validates, and every refusal naming the path of the bad part."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.document import (
    GRADES,
    Problem,
    RulebookInvalid,
    parse_document,
    parse_source,
)
from services.scoring.rulebooks import default_source
from services.scoring.tests.builders import document


def problems(data: Any) -> list[Problem]:
    with pytest.raises(RulebookInvalid) as refused:
        parse_document(data)
    return list(refused.value.problems)


def refused_at(data: Any, path: tuple[str | int, ...], *words: str) -> Problem:
    """The one problem at ``path``, whose message has all of ``words``."""
    found = [problem for problem in problems(data) if problem.path == path]
    assert found, f"no problem at {path}: {problems(data)}"
    [problem] = found
    for word in words:
        assert word in problem.message, problem.message
    return problem


def test_the_default_rulebook_validates() -> None:
    rulebook = parse_source(default_source())
    assert rulebook.name == "default"
    assert rulebook.category_ids == ["default"]
    assert {rule.id for rule in rulebook.engagement.rules if rule.in_market} == {
        "demo_request",
        "pricing_request",
        "contact_request",
    }
    # A and B are the grades that go to sales: both reachable from the matrix.
    grades = {grade for row in rulebook.grades.matrix.values() for grade in row.values()}
    assert grades == set(GRADES)


def test_the_minimal_rulebook_validates_with_one_default_category() -> None:
    rulebook = parse_document(document())
    assert rulebook.category_ids == ["default"]
    assert rulebook.engagement.half_life_days is None


def test_yaml_reads_like_yaml_1_2_norway_stays_norway() -> None:
    source = """
name: quirks
lists:
  countries: [NO, DE, on, off, yes]
  days: [2024-01-01]
fit: {rules: []}
engagement: {rules: []}
grades:
  fit_bands: {high: 50, low: null}
  engagement_bands: {high: 20, low: null}
  matrix: {high: {high: A, low: B}, low: {high: C, low: D}}
"""
    rulebook = parse_source(source)
    assert rulebook.lists["countries"] == ["NO", "DE", "on", "off", "yes"]
    assert rulebook.lists["days"] == ["2024-01-01"]


def test_json_is_accepted_too() -> None:
    rulebook = parse_source(json.dumps(document()), "json")
    assert rulebook.name == "test"


@pytest.mark.parametrize(
    ("source", "media", "words"),
    [
        ("name: [unclosed", "yaml", ["not valid YAML", "line 1, column 16"]),
        ("name: a\nname: b\n", "yaml", ["key 'name' is given twice", "line 2"]),
        ("{", "json", ["not valid JSON", "line 1"]),
        ("- a list\n", "yaml", ["a rulebook is a mapping"]),
        (b"\xff\xfe", "yaml", ["not UTF-8"]),
    ],
)
def test_a_document_that_cannot_be_read_is_refused_at_its_root(
    source: str | bytes, media: Any, words: list[str]
) -> None:
    with pytest.raises(RulebookInvalid) as refused:
        parse_source(source, media)
    [problem] = refused.value.problems
    assert problem.path == ()
    assert problem.where == "(document)"
    for word in words:
        assert word in problem.message


def test_unknown_and_missing_keys() -> None:
    data = document()
    data["fitt"] = {}
    del data["engagement"]
    refused_at(data, ("fitt",), "unknown key")
    refused_at(data, ("engagement",), "required")


def test_a_bad_value_names_the_rule_by_index_and_id() -> None:
    data = document(
        fit={"rules": [{"id": "ok", "points": 1}, {"id": "vertical", "points": "lots"}]}
    )
    problem = refused_at(data, ("fit", "rules", 1, "points"), "rule 'vertical'", "number")
    assert problem.where == "fit.rules.1.points"


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        (
            {"id": "r", "when": {"field": "compnay.vertical", "equals": "x"}, "points": 1},
            ("when", "field"),
            ["no lead field 'compnay.vertical'"],
        ),
        (
            {"id": "r", "when": {"field": "country", "in_list": "served"}, "points": 1},
            ("when", "in_list"),
            ["no list 'served'"],
        ),
        (
            {"id": "r", "when": {"field": "title", "matches": "(unclosed"}, "points": 1},
            ("when", "matches"),
            ["not a regular expression"],
        ),
        (
            {"id": "r", "when": {"field": "title", "equals": "x", "in": ["y"]}, "points": 1},
            ("when",),
            ["exactly one test", "equals, in"],
        ),
        (
            {"id": "r", "when": {"field": "title"}, "points": 1},
            ("when",),
            ["exactly one test", "found none"],
        ),
        (
            {"id": "r", "when": {"field": "title", "all": [{"field": "x", "present": True}]}},
            ("when",),
            ["either one of all/any/not"],
        ),
        (
            {"id": "r", "when": {"equals": 3}, "points": 1},
            ("when",),
            ["give a field"],
        ),
        (
            {"id": "r", "when": {"field": "company.employees", "min": 9, "max": 1}, "points": 1},
            ("when",),
            ["min 9.0 is above max 1.0"],
        ),
        (
            {"id": "r", "points": 1, "points_by_value": {"vp": 1}, "field": "seniority"},
            (),
            ["either points or points_by_value"],
        ),
        ({"id": "r", "points_by_value": {"vp": 1}}, (), ["needs the field"]),
        ({"id": "r", "points": 1, "field": "seniority"}, (), ["field goes with"]),
        (
            {"id": "r", "field": "senority", "points_by_value": {"vp": 1}},
            ("field",),
            ["no lead field 'senority'"],
        ),
        ({"id": "r", "points": 1, "group": "role"}, ("group",), ["no cap in fit.caps"]),
        ({"id": "r", "points": 1, "categories": ["nope"]}, ("categories", 0), ["no category"]),
        ({"id": "Bad Id", "points": 1}, ("id",), ["pattern"]),
    ],
)
def test_a_bad_fit_rule_is_refused_with_its_path(
    rule: dict[str, Any], path: tuple[str | int, ...], words: list[str]
) -> None:
    data = document(fit={"rules": [{"id": "first", "points": 1}, rule]})
    refused_at(data, ("fit", "rules", 1, *path), *words)


def test_conditions_nest_and_their_paths_follow() -> None:
    rule = {
        "id": "deep",
        "points": 3,
        "when": {
            "any": [{"field": "type", "equals": "x"}, {"not": {"field": "tpye", "equals": 1}}]
        },
    }
    data = document(engagement={"rules": [rule]})
    refused_at(
        data,
        ("engagement", "rules", 0, "when", "any", 1, "not", "field"),
        "rule 'deep'",
        "no touchpoint field 'tpye'",
    )


def test_a_lead_field_is_not_a_touchpoint_field() -> None:
    rule = {"id": "e", "points": 3, "when": {"field": "company.vertical", "equals": "x"}}
    refused_at(document(engagement={"rules": [rule]}), ("engagement", "rules", 0, "when", "field"))


def test_any_attribute_and_crm_id_is_a_lead_field() -> None:
    rules = [
        {"id": "a", "points": 1, "when": {"field": "attributes.budget", "min": 1000}},
        {"id": "b", "points": 1, "when": {"field": "crm_ids.hubspot", "present": True}},
    ]
    assert len(parse_document(document(fit={"rules": rules})).fit.rules) == 2
    refused_at(
        document(fit={"rules": [{"id": "c", "points": 1, "when": {"field": "attributes."}}]}),
        ("fit", "rules", 0, "when"),
    )


def test_rule_ids_are_unique_across_fit_and_engagement() -> None:
    data = document(
        fit={"rules": [{"id": "demo", "points": 1}]},
        engagement={"rules": [{"id": "demo", "points": 1}]},
    )
    refused_at(data, ("engagement", "rules", 0, "id"), "'demo' is used more than once")


def test_category_ids_are_unique() -> None:
    data = document(categories=[{"id": "crm"}, {"id": "crm"}])
    refused_at(data, ("categories", 1, "id"), "more than once")


@pytest.mark.parametrize(
    ("engagement", "path", "words"),
    [
        ({"half_life_days": 0}, ("engagement", "half_life_days"), ["greater than 0"]),
        (
            {"rules": [{"id": "e", "points": 5, "daily_cap": -1}]},
            ("engagement", "rules", 0, "daily_cap"),
            ["rule 'e'", "greater than 0"],
        ),
        (
            {"rules": [{"id": "e", "points": 5, "in_market": True}]},
            ("engagement", "rules", 0, "in_market"),
            ["needs engagement.in_market"],
        ),
        (
            {"in_market": {"window_days": 7, "min_band": "hot"}},
            ("engagement", "in_market", "min_band"),
            ["no engagement band 'hot'"],
        ),
        ({"min": 5, "max": 1}, ("engagement", "min"), ["above max"]),
    ],
)
def test_bad_engagement_settings(
    engagement: dict[str, Any], path: tuple[str | int, ...], words: list[str]
) -> None:
    refused_at(document(engagement={"rules": [], **engagement}), path, *words)


def test_fit_bounds_must_be_ordered() -> None:
    refused_at(document(fit={"rules": [], "min": 10, "max": 0}), ("fit", "min"), "above max")


def grades(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "fit_bands": {"high": 50, "low": None},
        "engagement_bands": {"high": 20, "low": None},
        "matrix": {"high": {"high": "A", "low": "B"}, "low": {"high": "C", "low": "D"}},
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("overrides", "path", "words"),
    [
        (
            {"fit_bands": {"high": 50, "low": 10}},
            ("grades", "fit_bands", "low"),
            ["make it null"],
        ),
        (
            {"fit_bands": {"high": None, "low": None}},
            ("grades", "fit_bands", "high"),
            ["only the last band"],
        ),
        (
            {"engagement_bands": {"high": 20, "mid": 30, "low": None}},
            ("grades", "engagement_bands", "mid"),
            ["30.0 is not below 20.0"],
        ),
        (
            {"matrix": {"high": {"high": "A", "low": "B"}, "low": {"high": "C"}}},
            ("grades", "matrix", "low", "low"),
            ["missing"],
        ),
        (
            {
                "matrix": {
                    "high": {"high": "A", "low": "B"},
                    "low": {"high": "C", "low": "D"},
                    "mid": {"high": "B", "low": "C"},
                }
            },
            ("grades", "matrix", "mid"),
            ["no fit band 'mid'"],
        ),
        (
            {
                "matrix": {
                    "high": {"high": "A", "low": "B", "x": "C"},
                    "low": {"high": "C", "low": "D"},
                }
            },
            ("grades", "matrix", "high", "x"),
            ["no engagement band 'x'"],
        ),
        (
            {"matrix": {"high": {"high": "A", "low": "B"}, "low": {"high": "C", "low": "E"}}},
            ("grades", "matrix", "low", "low"),
            ["'A', 'B', 'C' or 'D'"],
        ),
        (
            {"matrix": {"high": {"high": "B", "low": "B"}, "low": {"high": "A", "low": "D"}}},
            ("grades", "matrix", "low", "high"),
            ["better fit may not grade worse"],
        ),
        (
            {"matrix": {"high": {"high": "B", "low": "A"}, "low": {"high": "C", "low": "D"}}},
            ("grades", "matrix", "high", "low"),
            ["more engagement may not grade worse"],
        ),
    ],
)
def test_a_bad_grade_matrix_is_refused_with_its_path(
    overrides: dict[str, Any], path: tuple[str | int, ...], words: list[str]
) -> None:
    refused_at(document(grades=grades(**overrides)), path, *words)


def test_every_problem_is_reported_at_once() -> None:
    data = document(
        fit={
            "rules": [
                {"id": "a", "points": 1, "when": {"field": "nope", "equals": 1}},
                {"id": "b", "points": 1, "group": "nope"},
            ]
        },
        grades=grades(fit_bands={"high": 50, "low": 10}),
    )
    paths = {problem.path for problem in problems(data)}
    assert paths == {
        ("fit", "rules", 0, "when", "field"),
        ("fit", "rules", 1, "group"),
        ("grades", "fit_bands", "low"),
    }


def is_monotone(matrix: list[list[str]]) -> bool:
    rank = GRADES.index
    rows, columns = len(matrix), len(matrix[0])
    return all(
        rank(matrix[r][c]) >= rank(matrix[r2][c2])
        for r, c, r2, c2 in itertools.product(range(rows), range(columns), repeat=2)
        if r >= r2 and c >= c2
    )


@given(
    st.integers(1, 3).flatmap(
        lambda rows: st.integers(1, 3).flatmap(
            lambda columns: st.lists(
                st.lists(st.sampled_from(GRADES), min_size=columns, max_size=columns),
                min_size=rows,
                max_size=rows,
            )
        )
    )
)
def test_a_matrix_validates_exactly_when_it_is_monotone(matrix: list[list[str]]) -> None:
    fit_names = [f"f{index}" for index in range(len(matrix))]
    engagement_names = [f"e{index}" for index in range(len(matrix[0]))]

    def bands(names: list[str]) -> dict[str, float | None]:
        return {
            name: (None if i == len(names) - 1 else 100.0 - 10 * i) for i, name in enumerate(names)
        }

    data = document(
        grades={
            "fit_bands": bands(fit_names),
            "engagement_bands": bands(engagement_names),
            "matrix": {
                fit: dict(zip(engagement_names, row, strict=True))
                for fit, row in zip(fit_names, matrix, strict=True)
            },
        }
    )
    try:
        parse_document(data)
        valid = True
    except RulebookInvalid:
        valid = False
    assert valid == is_monotone(matrix)
