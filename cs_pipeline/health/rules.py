"""The reference evaluator of health (docs/health.md): plain Python over one account's metric values.

This module is docs/health.md in code. The pipeline scores accounts set-based (one SQL/Polars
expression per profile); that form is tested against these functions, so they stay small,
exact and free of I/O.

Values. `values` maps a metric name to its value for one account: numbers as int/float,
`usage_frequency` as one of "Inactive", "Monthly", "Weekly", "Daily", text (attributes,
status, ...) as str. A missing value is `None` (or an absent key); nothing else is missing
(blank text never reaches here: inputs are trimmed and blank becomes null, see
docs/data-model.md#general-normalisation). A value of the wrong type for its rule's kind is a
programming error and raises TypeError/ValueError.

Rules (`rule_holds`). `>= > <= <` compare numbers by value and `usage_frequency` by its order
Inactive < Monthly < Weekly < Daily; `== !=` compare exactly; `in` / `not_in` test membership of
the rule's list. On a missing value every op gives None ("left out", like SQL NULL), except
`is_empty` (True) and `is_not_empty` (False), which always evaluate.

Profiles. `matching_profile` returns the first profile whose every `when` rule gives True (a
rule left out does not hold there). `evaluate` scores one account with one profile:

- Scorecard: "No value" if no good or poor rule could be evaluated; else "Poor" if a poor rule
  holds; else "Good" if at least one good rule was evaluated and every evaluated good rule
  holds; else "Average". `health_score` is None and `dimension_scores` is {}.
- Dimensions: a metric scores Poor = 0 if its poor condition holds, else Good = 100 if its good
  condition holds, else Average = 60. It is left out when neither condition can be evaluated,
  i.e. its value is missing and neither condition is is_empty / is_not_empty (for comparison
  conditions this is exactly "a metric with no value is left out"; an emptiness condition
  still decides on a missing value, as in scorecards). Dimension score = weighted mean of its
  scored metrics, rounded half up; a dimension with no scored metric has no score. Overall =
  weighted mean of the rounded dimension scores, rounded half up; banded by the profile's
  `bands`: < average_from Poor, < good_from Average, else Good. No scored dimension ->
  "No value" with health_score None. Weights are taken as the decimals written in the config
  (`Fraction(str(weight))`), so every mean is exact; `round_half_up` is floor(x + 1/2).

Reasons (`Health.reasons`, deterministic):
- Scorecard "Poor": the poor rules that hold; "Good": the good rules evaluated; "Average": the
  poor rules evaluated that do not hold, then the good rules evaluated that do not hold;
  "No value": none. Each in config order, formatted `<metric> <op> <rule value> (value <v>)`:
  `engagement_score < 10 (value 4)`, `csm_risk in ['3 - HIGH', '4 - CRITICAL'] (value '3 - HIGH')`,
  `csm_risk is_empty (value None)` (emptiness ops have no rule value).
- Dimensions: one per scored metric, dimensions then metrics in config order:
  `usage/engagement_score: Good (>= 60, value 72)`, `usage/engagement_score: Poor (< 10, value 4)`,
  `usage/usage_frequency: Average (value 'Monthly')`.
- Literals (`format_value`): None -> `None`; int -> digits; float -> Python repr (the shortest
  round-trip form, e.g. 50.0, 33.333333333333336); text -> single-quoted with any `'` doubled
  (SQL style); a list -> `[a, b]` of those.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from cs_pipeline.config import USAGE_FREQUENCIES, Bands, DimensionMetric, Profile, Rule

HealthLabel = Literal["Good", "Average", "Poor", "No value"]
GOOD_SCORE, AVERAGE_SCORE, POOR_SCORE = 100, 60, 0
_FREQUENCY_RANK = {name: rank for rank, name in enumerate(USAGE_FREQUENCIES)}
_ORDERING = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Health:
    """One account's health under one profile (a row of `account_health`, minus keys)."""

    profile: str
    health: HealthLabel
    health_score: int | None = None  # dimension profiles only; None for scorecards and "No value"
    dimension_scores: dict[str, int] = field(default_factory=dict)  # only dimensions with a score
    reasons: list[str] = field(default_factory=list)


# --- single rules -----------------------------------------------------------------------------


def rule_holds(rule: Rule, values: Mapping[str, object]) -> bool | None:
    """True / False, or None when the rule is left out (its metric has no value)."""
    value = values.get(rule.metric)
    if rule.op == "is_empty":
        return value is None
    if rule.op == "is_not_empty":
        return value is not None
    if value is None:
        return None
    value = _checked(rule, value)
    target = rule.value
    if rule.op in ("in", "not_in"):
        assert isinstance(target, list)
        found = any(value == t for t in target)
        return found if rule.op == "in" else not found
    if rule.op == "==":
        return value == target
    if rule.op == "!=":
        return value != target
    compare = _ORDERING[rule.op]  # >= > <= <: the config allows them on numbers and usage_frequency only
    if rule.kind == "ordinal":
        return compare(_FREQUENCY_RANK[value], _FREQUENCY_RANK[target])  # type: ignore[index]
    return compare(value, target)


def _checked(rule: Rule, value: object) -> object:
    """The value, if its type fits the rule's kind; a mismatch is a bug upstream, so raise."""
    if rule.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | Fraction):
            raise TypeError(f"{rule.metric} is numeric, got {value!r}")
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{rule.metric} is NaN; a missing value must be None")
        return value
    if not isinstance(value, str):
        raise TypeError(f"{rule.metric} is text, got {value!r}")
    if rule.kind == "ordinal" and value not in _FREQUENCY_RANK:
        raise ValueError(f"{rule.metric} must be one of {', '.join(USAGE_FREQUENCIES)}, got {value!r}")
    return value


def matching_profile(profiles: Sequence[Profile], values: Mapping[str, object]) -> Profile | None:
    """The first profile whose every `when` rule holds (left out = does not hold); None if none."""
    for profile in profiles:
        if all(rule_holds(rule, values) is True for rule in profile.when):
            return profile
    return None


# --- profiles ---------------------------------------------------------------------------------


def evaluate(profile: Profile, values: Mapping[str, object]) -> Health:
    """Score one account with `profile` (a scorecard or a dimension profile)."""
    if profile.dimensions:
        return _evaluate_dimensions(profile, values)
    return _evaluate_scorecard(profile, values)


def health_of(profiles: Sequence[Profile], values: Mapping[str, object]) -> Health | None:
    """`evaluate` with the first matching profile; None when no profile matches."""
    profile = matching_profile(profiles, values)
    return None if profile is None else evaluate(profile, values)


def _evaluate_scorecard(profile: Profile, values: Mapping[str, object]) -> Health:
    poor = [(rule, rule_holds(rule, values)) for rule in profile.poor]
    good = [(rule, rule_holds(rule, values)) for rule in profile.good]
    if all(result is None for _, result in poor + good):
        return Health(profile.name, "No value")

    def reasons(results: list[tuple[Rule, bool | None]], wanted: set[bool]) -> list[str]:
        return [rule_reason(rule, values) for rule, result in results if result in wanted]

    if any(result is True for _, result in poor):
        return Health(profile.name, "Poor", reasons=reasons(poor, {True}))
    evaluated_good = [result for _, result in good if result is not None]
    if evaluated_good and all(evaluated_good):
        return Health(profile.name, "Good", reasons=reasons(good, {True}))
    return Health(profile.name, "Average", reasons=reasons(poor, {False}) + reasons(good, {False}))


def _evaluate_dimensions(profile: Profile, values: Mapping[str, object]) -> Health:
    dimension_scores: dict[str, int] = {}
    dimension_weights: dict[str, Fraction] = {}
    reasons: list[str] = []
    for dimension in profile.dimensions:
        scored: list[tuple[Fraction, int]] = []
        for metric in dimension.metrics:
            outcome = metric_score(metric, values)
            if outcome is None:
                continue
            score, reason = outcome
            scored.append((exact_weight(metric.weight), score))
            reasons.append(f"{dimension.name}/{metric.metric}: {reason}")
        if scored:
            dimension_scores[dimension.name] = round_half_up(weighted_mean(scored))
            dimension_weights[dimension.name] = exact_weight(dimension.weight)
    if not dimension_scores:
        return Health(profile.name, "No value")  # nothing was scored, so there is no reason either
    overall = round_half_up(weighted_mean([(dimension_weights[n], s) for n, s in dimension_scores.items()]))
    return Health(profile.name, band(overall, profile.bands), overall, dimension_scores, reasons)


def metric_score(metric: DimensionMetric, values: Mapping[str, object]) -> tuple[int, str] | None:
    """(0 | 100 | 60, reason) for one dimension metric, or None when it is left out."""
    poor, good = rule_holds(metric.poor_rule, values), rule_holds(metric.good_rule, values)
    if poor is None and good is None:
        return None
    shown = format_value(values.get(metric.metric))
    if poor:
        return POOR_SCORE, f"Poor ({_condition(metric.poor_rule)}, value {shown})"
    if good:
        return GOOD_SCORE, f"Good ({_condition(metric.good_rule)}, value {shown})"
    return AVERAGE_SCORE, f"Average (value {shown})"


def band(score: int, bands: Bands) -> HealthLabel:
    """The health label of `score` under `bands`."""
    if score < bands.average_from:
        return "Poor"
    return "Average" if score < bands.good_from else "Good"


# --- exact arithmetic ---------------------------------------------------------------------------


def exact_weight(weight: float | int) -> Fraction:
    """A config weight as the decimal it was written as (1.5 -> 3/2, 0.1 -> 1/10)."""
    return Fraction(str(weight))


def weighted_mean(pairs: Sequence[tuple[Fraction, int]]) -> Fraction:
    """sum(w * s) / sum(w) over (weight, score) pairs; weights are positive (validated)."""
    return sum((w * s for w, s in pairs), Fraction(0)) / sum((w for w, _ in pairs), Fraction(0))


def round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves upwards: 76.5 -> 77, 0.5 -> 1 (floor(x + 1/2))."""
    return math.floor(value + Fraction(1, 2))


# --- reason text ------------------------------------------------------------------------------


def format_value(value: object) -> str:
    """A rule or metric value as shown in reasons (see the module docstring)."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _condition(rule: Rule) -> str:
    if rule.op in ("is_empty", "is_not_empty"):
        return rule.op
    return f"{rule.op} {format_value(rule.value)}"


def rule_reason(rule: Rule, values: Mapping[str, object]) -> str:
    """`<metric> <op> <rule value> (value <v>)`, e.g. `engagement_score < 10 (value 4)`."""
    return f"{rule.metric} {_condition(rule)} (value {format_value(values.get(rule.metric))})"
