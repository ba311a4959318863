"""The rulebook as people write it: a YAML or JSON document, its schema, and its validation.

A rulebook that does not validate is refused with every problem found, each with the path of
the bad part (``fit.rules.3.when.field``) and the reason. The shape is checked by the pydantic
models below; what a schema cannot say (a field that does not exist, a list that is not
declared, a grade matrix with a hole in it) by :func:`_check`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.scoring.domain.facts import lead_getter, touchpoint_getter

Grade = Literal["A", "B", "C", "D"]
GRADES: tuple[Grade, ...] = ("A", "B", "C", "D")
DEFAULT_CATEGORY = "default"

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]*$", max_length=80)]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
ScalarValue = str | int | float | bool
Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a rulebook: where, and why."""

    path: Path
    message: str

    @property
    def where(self) -> str:
        return ".".join(str(part) for part in self.path) or "(document)"


class RulebookInvalid(ValueError):
    """The rulebook does not validate; ``problems`` says where and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.where}: {p.message}" for p in self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------------------- conditions

_FIELD_OPERATORS = (
    "equals",
    "in_",
    "not_in",
    "in_list",
    "range",
    "present",
    "contains_any",
    "matches",
)


class ConditionDoc(_Strict):
    """A test on one field (``field`` and one operator), or ``all``/``any``/``not`` of others."""

    field: str | None = None
    equals: ScalarValue | None = None
    in_: list[ScalarValue] | None = Field(default=None, alias="in", min_length=1)
    not_in: list[ScalarValue] | None = Field(default=None, min_length=1)
    in_list: str | None = None
    min: float | None = None
    max: float | None = None
    present: bool | None = None
    contains_any: list[str] | None = Field(default=None, min_length=1)
    matches: str | None = None
    all: list[ConditionDoc] | None = Field(default=None, min_length=1)
    any: list[ConditionDoc] | None = Field(default=None, min_length=1)
    not_: ConditionDoc | None = Field(default=None, alias="not")

    def operators(self) -> list[str]:
        """The field operators this condition uses (``range`` for min and/or max)."""
        found = [
            name for name in _FIELD_OPERATORS if name != "range" and getattr(self, name) is not None
        ]
        if self.min is not None or self.max is not None:
            found.append("range")
        return found

    def logic(self) -> list[str]:
        return [
            name
            for name, value in (("all", self.all), ("any", self.any), ("not", self.not_))
            if value is not None
        ]

    @model_validator(mode="after")
    def _one_test(self) -> ConditionDoc:
        operators, logic = self.operators(), self.logic()
        spelled = ", ".join("in" if name == "in_" else name for name in operators)
        if logic:
            if len(logic) > 1 or operators or self.field is not None:
                raise ValueError(
                    "a condition is either one of all/any/not, or a field with one test"
                )
            return self
        if self.field is None:
            raise ValueError("give a field and one test, or one of all/any/not")
        if len(operators) != 1:
            raise ValueError(
                "give exactly one test for the field (equals, in, not_in, in_list, "
                f"min/max, present, contains_any, matches); found {spelled or 'none'}"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


# ---------------------------------------------------------------------------- rules


class FitRuleDoc(_Strict):
    """Points for what the lead is. Either ``points`` (when ``when`` holds, or always) or
    ``points_by_value`` looked up by the value of ``field``."""

    id: RuleId
    why: str | None = Field(default=None, max_length=500)
    when: ConditionDoc | None = None
    points: float | None = None
    field: str | None = None
    points_by_value: dict[str, float] | None = Field(default=None, min_length=1)
    categories: list[str] | None = Field(default=None, min_length=1)
    group: str | None = None

    @model_validator(mode="after")
    def _points(self) -> FitRuleDoc:
        if (self.points is None) == (self.points_by_value is None):
            raise ValueError("give either points or points_by_value")
        if self.points_by_value is not None and self.field is None:
            raise ValueError("points_by_value needs the field whose value it looks up")
        if self.points_by_value is None and self.field is not None:
            raise ValueError("field goes with points_by_value; use when: for a condition")
        return self


class EngagementRuleDoc(_Strict):
    """Points for each touchpoint that matches ``when`` (every touchpoint without it)."""

    id: RuleId
    why: str | None = Field(default=None, max_length=500)
    when: ConditionDoc | None = None
    points: float
    daily_cap: float | None = Field(default=None, gt=0)
    categories: list[str] | None = Field(default=None, min_length=1)
    in_market: bool = False


class FitDoc(_Strict):
    rules: list[FitRuleDoc] = Field(default_factory=list)
    # Group name -> the most its rules may add together.
    caps: dict[Slug, float] = Field(default_factory=dict)
    min: float | None = None
    max: float | None = None


class InMarketDoc(_Strict):
    """A touchpoint of an ``in_market`` rule lifts engagement to at least ``min_band`` for
    ``window_days`` after it happened."""

    window_days: float = Field(gt=0)
    min_band: str


class EngagementDoc(_Strict):
    # None: no decay.
    half_life_days: float | None = Field(default=None, gt=0)
    rules: list[EngagementRuleDoc] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None
    in_market: InMarketDoc | None = None


class GradesDoc(_Strict):
    # Band name -> lowest score in the band, highest band first; the last band is null.
    fit_bands: dict[str, float | None] = Field(min_length=1)
    engagement_bands: dict[str, float | None] = Field(min_length=1)
    # Fit band -> engagement band -> grade.
    matrix: dict[str, dict[str, Grade]]


class CategoryDoc(_Strict):
    id: Slug
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class RulebookDoc(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    categories: list[CategoryDoc] = Field(
        default_factory=lambda: [CategoryDoc(id=DEFAULT_CATEGORY)], min_length=1
    )
    lists: dict[Slug, list[ScalarValue]] = Field(default_factory=dict)
    fit: FitDoc
    engagement: EngagementDoc
    grades: GradesDoc

    @property
    def category_ids(self) -> list[str]:
        return [category.id for category in self.categories]


# ---------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """YAML 1.2 scalars where 1.1 surprises: ``NO`` stays Norway, ``on``/``off`` and dates
    stay strings, and a key given twice is an error rather than silently the last one."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)

MediaType = Literal["yaml", "json"]


def load_source(source: str | bytes, media: MediaType) -> Any:
    """The document's data. JSON is read as JSON, anything else as YAML."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RulebookInvalid([Problem((), f"not UTF-8 text: {error}")]) from None
    if media == "json":
        try:
            return json.loads(source)
        except json.JSONDecodeError as error:
            raise RulebookInvalid(
                [Problem((), f"not valid JSON: {error.msg} at line {error.lineno}")]
            ) from None
    try:
        return yaml.load(source, Loader=_Loader)  # a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise RulebookInvalid([Problem((), f"not valid YAML: {problem}{where}")]) from None


def parse_source(source: str | bytes, media: MediaType = "yaml") -> RulebookDoc:
    return parse_document(load_source(source, media))


def parse_document(data: Any) -> RulebookDoc:
    """Validate a document's data; :class:`RulebookInvalid` lists every problem found."""
    if not isinstance(data, dict):
        raise RulebookInvalid(
            [Problem((), "a rulebook is a mapping with name, fit, engagement and grades")]
        )
    try:
        document = RulebookDoc.model_validate(data)
    except ValidationError as error:
        raise RulebookInvalid(_problems_of(error, data)) from None
    problems = list(_check(document))
    if problems:
        raise RulebookInvalid([_with_rule_id(problem, data) for problem in problems])
    return document


def _problems_of(error: ValidationError, data: Any) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        path = tuple(part for part in item["loc"] if not _is_union_tag(part))
        problems.append(_with_rule_id(Problem(path, message), data))
    return problems


def _is_union_tag(part: str | int) -> bool:
    # pydantic names the union member it tried (``str``, ``float``) in the location.
    return part in ("str", "int", "float", "bool", "list[...]", "dict[...]")


def _with_rule_id(problem: Problem, data: Any) -> Problem:
    """Name the rule as well as its index, for the person reading the error."""
    path = problem.path
    if len(path) >= 3 and path[0] in ("fit", "engagement") and path[1] == "rules":
        try:
            rule_id = data[path[0]]["rules"][path[2]]["id"]
        except (KeyError, IndexError, TypeError):
            return problem
        if isinstance(rule_id, str):
            return Problem(path, f"rule {rule_id!r}: {problem.message}")
    return problem


# ---------------------------------------------------------------------------- semantics


def _check(document: RulebookDoc) -> Iterator[Problem]:
    categories = document.category_ids
    yield from _duplicates(
        [(("categories", index, "id"), c.id) for index, c in enumerate(document.categories)],
        "category",
    )
    rule_ids = [
        (("fit", "rules", index, "id"), rule.id) for index, rule in enumerate(document.fit.rules)
    ] + [
        (("engagement", "rules", index, "id"), rule.id)
        for index, rule in enumerate(document.engagement.rules)
    ]
    yield from _duplicates(rule_ids, "rule")
    lists = set(document.lists)
    fit = document.fit
    if fit.min is not None and fit.max is not None and fit.min > fit.max:
        yield Problem(("fit", "min"), f"min {fit.min} is above max {fit.max}")
    for index, fit_rule in enumerate(fit.rules):
        path: Path = ("fit", "rules", index)
        yield from _check_categories(fit_rule.categories, categories, (*path, "categories"))
        if fit_rule.when is not None:
            yield from _check_condition(fit_rule.when, (*path, "when"), "lead", lists)
        if fit_rule.field is not None and lead_getter(fit_rule.field) is None:
            yield Problem((*path, "field"), _unknown_field(fit_rule.field, "lead"))
        if fit_rule.group is not None and fit_rule.group not in fit.caps:
            yield Problem(
                (*path, "group"),
                f"group {fit_rule.group!r} has no cap in fit.caps "
                f"(caps: {', '.join(sorted(fit.caps)) or 'none'})",
            )
    engagement = document.engagement
    low, high = engagement.min, engagement.max
    if low is not None and high is not None and low > high:
        yield Problem(("engagement", "min"), f"min {low} is above max {high}")
    for index, engagement_rule in enumerate(engagement.rules):
        path = ("engagement", "rules", index)
        yield from _check_categories(engagement_rule.categories, categories, (*path, "categories"))
        if engagement_rule.when is not None:
            yield from _check_condition(engagement_rule.when, (*path, "when"), "touchpoint", lists)
        if engagement_rule.in_market and engagement.in_market is None:
            yield Problem(
                (*path, "in_market"),
                "an in_market rule needs engagement.in_market (window_days and min_band)",
            )
    yield from _check_grades(document)


def _duplicates(items: Sequence[tuple[Path, str]], what: str) -> Iterator[Problem]:
    seen: set[str] = set()
    for path, value in items:
        if value in seen:
            yield Problem(path, f"{what} id {value!r} is used more than once")
        seen.add(value)


def _check_categories(given: list[str] | None, known: list[str], path: Path) -> Iterator[Problem]:
    for index, category in enumerate(given or ()):
        if category not in known:
            yield Problem(
                (*path, index),
                f"no category {category!r} (categories: {', '.join(known)})",
            )


def _unknown_field(name: str, namespace: Literal["lead", "touchpoint"]) -> str:
    if namespace == "lead":
        return (
            f"no lead field {name!r}; a lead rule may name a field of the lead snapshot "
            "(company.vertical, seniority, country ...), attributes.<name> or crm_ids.<crm>"
        )
    return (
        f"no touchpoint field {name!r}; an engagement rule may name type, door, source, "
        "campaign, reference or utm.<source|medium|campaign|term|content>"
    )


def _check_condition(
    condition: ConditionDoc,
    path: Path,
    namespace: Literal["lead", "touchpoint"],
    lists: set[str],
) -> Iterator[Problem]:
    for name, children in (("all", condition.all), ("any", condition.any)):
        for index, child in enumerate(children or ()):
            yield from _check_condition(child, (*path, name, index), namespace, lists)
    if condition.not_ is not None:
        yield from _check_condition(condition.not_, (*path, "not"), namespace, lists)
    if condition.field is not None:
        getter = lead_getter if namespace == "lead" else touchpoint_getter
        if getter(condition.field) is None:
            yield Problem((*path, "field"), _unknown_field(condition.field, namespace))
    if condition.in_list is not None and condition.in_list not in lists:
        yield Problem(
            (*path, "in_list"),
            f"no list {condition.in_list!r} in lists (lists: {', '.join(sorted(lists)) or 'none'})",
        )
    if condition.matches is not None:
        try:
            re.compile(condition.matches)
        except re.error as error:
            yield Problem((*path, "matches"), f"not a regular expression: {error}")


def _check_bands(bands: dict[str, float | None], path: Path) -> Iterator[Problem]:
    names = list(bands)
    previous: float | None = None
    for index, name in enumerate(names):
        floor = bands[name]
        last = index == len(names) - 1
        if last and floor is not None:
            yield Problem(
                (*path, name), "the last band takes everything below the others: make it null"
            )
        if not last and floor is None:
            yield Problem((*path, name), "only the last band may be null; give its lowest score")
        if floor is not None and not math.isfinite(floor):
            yield Problem((*path, name), "a band's lowest score must be a finite number")
        if floor is not None and previous is not None and floor >= previous:
            yield Problem(
                (*path, name),
                f"bands go from the highest down: {floor} is not below {previous}",
            )
        if floor is not None:
            previous = floor


def _check_grades(document: RulebookDoc) -> Iterator[Problem]:
    grades = document.grades
    yield from _check_bands(grades.fit_bands, ("grades", "fit_bands"))
    yield from _check_bands(grades.engagement_bands, ("grades", "engagement_bands"))
    fit_bands, engagement_bands = list(grades.fit_bands), list(grades.engagement_bands)
    in_market = document.engagement.in_market
    if in_market is not None and in_market.min_band not in engagement_bands:
        yield Problem(
            ("engagement", "in_market", "min_band"),
            f"no engagement band {in_market.min_band!r} (bands: {', '.join(engagement_bands)})",
        )
    matrix = grades.matrix
    for fit_band in matrix:
        if fit_band not in fit_bands:
            yield Problem(
                ("grades", "matrix", fit_band),
                f"no fit band {fit_band!r} (bands: {', '.join(fit_bands)})",
            )
            continue
        for engagement_band in matrix[fit_band]:
            if engagement_band not in engagement_bands:
                yield Problem(
                    ("grades", "matrix", fit_band, engagement_band),
                    f"no engagement band {engagement_band!r} "
                    f"(bands: {', '.join(engagement_bands)})",
                )
    complete = True
    for fit_band in fit_bands:
        for engagement_band in engagement_bands:
            if engagement_band not in matrix.get(fit_band, {}):
                complete = False
                yield Problem(
                    ("grades", "matrix", fit_band, engagement_band),
                    "missing: the matrix needs a grade for every fit band and engagement band",
                )
    if not complete:
        return
    # Better fit or more engagement never makes a worse grade.
    rank = {grade: index for index, grade in enumerate(GRADES)}
    for row, fit_band in enumerate(fit_bands):
        for column, engagement_band in enumerate(engagement_bands):
            grade = matrix[fit_band][engagement_band]
            if row > 0:
                above = matrix[fit_bands[row - 1]][engagement_band]
                if rank[grade] < rank[above]:
                    yield Problem(
                        ("grades", "matrix", fit_band, engagement_band),
                        f"{grade} is better than {above} for the better fit band "
                        f"{fit_bands[row - 1]!r}: better fit may not grade worse",
                    )
            if column > 0:
                left = matrix[fit_band][engagement_bands[column - 1]]
                if rank[grade] < rank[left]:
                    yield Problem(
                        ("grades", "matrix", fit_band, engagement_band),
                        f"{grade} is better than {left} for the higher engagement band "
                        f"{engagement_bands[column - 1]!r}: more engagement may not grade worse",
                    )
