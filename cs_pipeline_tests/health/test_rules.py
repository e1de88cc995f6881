"""The reference health evaluator (docs/health.md), against hand-computed expectations.

Profiles and rules are always built through the config's validation (`load_config` on a YAML
written to tmp_path, or `parse_config` for one-rule cases), never constructed by hand.
"""

from fractions import Fraction
from pathlib import Path

import pytest

import cs_pipeline
from cs_pipeline.config import ConfigError, Profile, Rule, load_config, parse_config
from cs_pipeline.health.rules import (
    Health,
    band,
    evaluate,
    exact_weight,
    format_value,
    health_of,
    matching_profile,
    round_half_up,
    rule_holds,
)

HEADER = """\
crm:
  files_dir: crm
  mapping: {account: {attributes: {csm_risk: CSM_Risk__c, segment: Segment__c}}}
landing: landing
warehouse: wh.duckdb
"""


def spec_profiles() -> list[Profile]:
    """The profiles of the bundled demo config (test_config pins its shape)."""
    return load_config(Path(cs_pipeline.__file__).resolve().parents[1] / "demo" / "cs_pipeline.yaml").profiles


# The high-touch scorecard of the seeds (docs/health.md#scorecards). Rules are an AND list with no
# OR, so "CSM Risk is '0 - NO RISK' or empty" is ONE good rule `csm_risk in ['0 - NO RISK']`,
# exactly as the bundled config's high_touch profile writes it: when csm_risk is empty that rule is
# left out (docs/health.md#left-out-rules), so it cannot stop Good -- which is the "or empty". Two rules could not
# express it (`in` AND `is_empty` never both hold), and `is_empty` alone would demand emptiness.
# The Poor side's "or" is native: any one poor rule that holds makes the account Poor.
APPENDIX_HIGH_TOUCH = """\
profiles:
  - name: high_touch
    good:
      - {metric: engagement_score, op: ">", value: 60}
      - {metric: license_utilization, op: ">=", value: 50}
      - {metric: usage_frequency, op: ">=", value: Weekly}
      - {metric: csm_risk, op: in, value: ["0 - NO RISK"]}
    poor:
      - {metric: engagement_score, op: "<", value: 10}
      - {metric: license_utilization, op: "<", value: 20}
      - {metric: usage_frequency, op: "==", value: Inactive}
      - {metric: csm_risk, op: in, value: ["3 - HIGH", "4 - CRITICAL"]}
"""


def load_profiles(tmp_path: Path, profiles_yaml: str) -> list[Profile]:
    path = tmp_path / "cs.yaml"
    path.write_text(HEADER + profiles_yaml)
    return load_config(path).profiles


def profile(tmp_path: Path, profiles_yaml: str) -> Profile:
    (only,) = load_profiles(tmp_path, profiles_yaml)
    return only


def rule(metric: str, op: str, value: object = None) -> Rule:
    """One validated rule (the good rule of a one-profile config)."""
    spec: dict[str, object] = {"metric": metric, "op": op}
    if value is not None:
        spec["value"] = value
    data = {
        "crm": {"files_dir": "crm", "mapping": {"account": {"attributes": {"csm_risk": "CSM_Risk__c"}}}},
        "landing": "landing",
        "warehouse": "wh.duckdb",
        "profiles": [{"name": "p", "good": [spec]}],
    }
    return parse_config(data, Path(__file__).with_name("cs.yaml")).profiles[0].good[0]


def dims(*metrics: str, bands: str = "") -> str:
    """A one-dimension profile whose metrics are given as YAML flow mappings."""
    lines = "\n".join(f"          - {m}" for m in metrics)
    return f"profiles:\n  - name: p\n    dimensions:\n      - name: d\n        metrics:\n{lines}\n{bands}"


ENGAGEMENT = '{metric: engagement_score, weight: %s, good: {op: ">=", value: 60}, poor: {op: "<", value: 10}}'
FREQUENCY = '{metric: usage_frequency, weight: %s, good: {op: ">=", value: Weekly}, poor: {op: "==", value: Inactive}}'
UTILIZATION = '{metric: license_utilization, weight: %s, good: {op: ">=", value: 50}, poor: {op: "<", value: 20}}'


# --- single rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "target", "value", "expected"),
    [
        (">=", 60, 60, True),
        (">=", 60, 59, False),
        (">=", 60, 59.999, False),
        (">=", 60, 60.0, True),
        (">", 60, 60, False),
        (">", 60, 61, True),
        (">", 0, -1, False),
        ("<=", 10, 10, True),
        ("<=", 10, 10.5, False),
        ("<", 10, 9, True),
        ("<", 10, 10, False),
        ("<", 10, 0, True),
        ("==", 3, 3.0, True),
        ("==", 3, 4, False),
        ("!=", 3, 4, True),
        ("!=", 3, 3, False),
        (">=", 50.5, 50.5, True),
        (">=", 50.5, 50.49, False),
        ("in", [1, 2], 2, True),
        ("in", [1, 2], 3, False),
        ("not_in", [1, 2], 3, True),
        ("not_in", [1, 2], 1, False),
    ],
)
def test_number_ops(op: str, target: object, value: object, expected: bool) -> None:
    assert rule_holds(rule("engagement_score", op, target), {"engagement_score": value}) is expected


@pytest.mark.parametrize(
    ("op", "target", "value", "expected"),
    [
        ("==", "0 - NO RISK", "0 - NO RISK", True),
        ("==", "0 - NO RISK", "0 - no risk", False),  # exact: case matters
        ("==", "0 - NO RISK", "1 - MINOR", False),
        ("!=", "0 - NO RISK", "1 - MINOR", True),
        ("!=", "0 - NO RISK", "0 - NO RISK", False),
        ("in", ["3 - HIGH", "4 - CRITICAL"], "4 - CRITICAL", True),
        ("in", ["3 - HIGH", "4 - CRITICAL"], "2 - MAJOR", False),
        ("not_in", ["3 - HIGH", "4 - CRITICAL"], "2 - MAJOR", True),
        ("not_in", ["3 - HIGH", "4 - CRITICAL"], "3 - HIGH", False),
    ],
)
def test_text_ops(op: str, target: object, value: str, expected: bool) -> None:
    assert rule_holds(rule("csm_risk", op, target), {"csm_risk": value}) is expected


@pytest.mark.parametrize(
    ("op", "target", "value", "expected"),
    [
        (">=", "Weekly", "Weekly", True),
        (">=", "Weekly", "Daily", True),
        (">=", "Weekly", "Monthly", False),
        (">=", "Weekly", "Inactive", False),
        (">=", "Monthly", "Daily", True),  # by order, not alphabetically ("Daily" < "Monthly")
        (">", "Weekly", "Weekly", False),
        (">", "Weekly", "Daily", True),
        ("<=", "Monthly", "Monthly", True),
        ("<=", "Monthly", "Weekly", False),
        ("<", "Weekly", "Monthly", True),
        ("<", "Weekly", "Weekly", False),
        ("<", "Monthly", "Daily", False),
        ("==", "Inactive", "Inactive", True),
        ("==", "Inactive", "Monthly", False),
        ("!=", "Inactive", "Monthly", True),
        ("in", ["Monthly", "Weekly"], "Weekly", True),
        ("in", ["Monthly", "Weekly"], "Daily", False),
        ("not_in", ["Inactive"], "Daily", True),
        ("not_in", ["Inactive"], "Inactive", False),
    ],
)
def test_usage_frequency_ops(op: str, target: object, value: str, expected: bool) -> None:
    assert rule_holds(rule("usage_frequency", op, target), {"usage_frequency": value}) is expected


@pytest.mark.parametrize("metric", ["csm_risk", "engagement_score", "usage_frequency"])
def test_emptiness_always_evaluates(metric: str) -> None:
    present = {"csm_risk": "1 - MINOR", "engagement_score": 0, "usage_frequency": "Inactive"}[metric]
    is_empty, is_not_empty = rule(metric, "is_empty"), rule(metric, "is_not_empty")
    for missing in ({metric: None}, {}):  # None and an absent key are the same
        assert rule_holds(is_empty, missing) is True
        assert rule_holds(is_not_empty, missing) is False
    assert rule_holds(is_empty, {metric: present}) is False  # 0 and "Inactive" are values
    assert rule_holds(is_not_empty, {metric: present}) is True


@pytest.mark.parametrize(
    ("metric", "op", "target"),
    [
        ("engagement_score", ">=", 60),
        ("engagement_score", "<", 10),
        ("engagement_score", "!=", 3),
        ("engagement_score", "not_in", [1]),
        ("usage_frequency", "==", "Inactive"),
        ("usage_frequency", "<=", "Daily"),
        ("csm_risk", "!=", "3 - HIGH"),
        ("csm_risk", "not_in", ["3 - HIGH"]),
    ],
)
def test_missing_value_is_left_out(metric: str, op: str, target: object) -> None:
    assert rule_holds(rule(metric, op, target), {metric: None}) is None
    assert rule_holds(rule(metric, op, target), {}) is None


def test_wrong_value_types_raise() -> None:
    with pytest.raises(TypeError):
        rule_holds(rule("engagement_score", ">=", 60), {"engagement_score": "72"})
    with pytest.raises(TypeError):
        rule_holds(rule("engagement_score", ">=", 60), {"engagement_score": True})
    with pytest.raises(ValueError):
        rule_holds(rule("engagement_score", ">=", 60), {"engagement_score": float("nan")})
    with pytest.raises(ValueError):
        rule_holds(rule("usage_frequency", ">=", "Weekly"), {"usage_frequency": "Hourly"})
    with pytest.raises(TypeError):
        rule_holds(rule("csm_risk", "==", "3 - HIGH"), {"csm_risk": 3})


# --- profile selection -----------------------------------------------------------------------


def test_first_matching_profile_wins(tmp_path: Path) -> None:
    profiles = spec_profiles()
    onboarding, high_touch, digital, default = profiles

    def name(values: dict[str, object]) -> str | None:
        found = matching_profile(profiles, values)
        return None if found is None else found.name

    young_enterprise = {"account_age_days": 10, "segment": "Enterprise", "status_group": "Paying"}
    assert name(young_enterprise) == "onboarding"  # several match: the first in config order
    assert name({"account_age_days": 30, "segment": "Enterprise", "status_group": "Paying"}) == "high_touch"
    assert name({"account_age_days": -5, "status_group": "Free"}) == "onboarding"  # before create_date
    # A rule on a missing value does not hold in `when`: no age, no segment -> not onboarding/high_touch.
    assert name({"account_age_days": None, "segment": None, "status_group": "Paying"}) == "digital"
    assert name({"status_group": "Free"}) == "default"  # no `when` at all matches everything
    assert name({}) == "default"

    # Without the catch-all, nothing may match.
    assert matching_profile([onboarding, high_touch, digital], {"status_group": "Free"}) is None
    assert health_of([onboarding, high_touch, digital], {"status_group": "Free"}) is None
    assert matching_profile([], {}) is None
    # Reordering changes the winner.
    assert matching_profile([digital, onboarding], young_enterprise) is digital
    assert health_of(profiles, {"status_group": "Free", "usage_frequency": "Daily"}) == Health(
        "default", "Good", reasons=["usage_frequency >= 'Weekly' (value 'Daily')"]
    )


def test_when_with_emptiness_and_negations(tmp_path: Path) -> None:
    profiles = load_profiles(
        tmp_path,
        """\
profiles:
  - name: unrated
    when: [{metric: csm_risk, op: is_empty}]
    good: [{metric: usage_frequency, op: ">=", value: Weekly}]
  - name: not_high
    when: [{metric: csm_risk, op: "!=", value: "3 - HIGH"}, {metric: segment, op: not_in, value: [SMB]}]
    good: [{metric: usage_frequency, op: ">=", value: Weekly}]
""",
    )
    assert matching_profile(profiles, {}).name == "unrated"  # type: ignore[union-attr]
    assert matching_profile(profiles, {"csm_risk": "1 - MINOR", "segment": "Mid"}).name == "not_high"  # type: ignore[union-attr]
    # != and not_in on a missing value are left out, so they do not hold in `when` (as SQL NULL).
    assert matching_profile(profiles, {"csm_risk": "1 - MINOR"}) is None
    assert matching_profile(profiles, {"csm_risk": "3 - HIGH", "segment": "Mid"}) is None


# --- scorecards ---------------------------------------------------------------------------------

ALL_GOOD = {"engagement_score": 61, "license_utilization": 50.0, "usage_frequency": "Weekly", "csm_risk": "0 - NO RISK"}
GOOD_REASONS = [
    "engagement_score > 60 (value 61)",
    "license_utilization >= 50 (value 50.0)",
    "usage_frequency >= 'Weekly' (value 'Weekly')",
    "csm_risk in ['0 - NO RISK'] (value '0 - NO RISK')",
]


def test_appendix_high_touch_good(tmp_path: Path) -> None:
    card = profile(tmp_path, APPENDIX_HIGH_TOUCH)
    assert evaluate(card, ALL_GOOD) == Health("high_touch", "Good", None, {}, GOOD_REASONS)
    daily = evaluate(card, {**ALL_GOOD, "usage_frequency": "Daily", "engagement_score": 100})
    assert daily.health == "Good"
    # "or empty": an empty CSM risk is left out and does not stop Good.
    assert evaluate(card, {**ALL_GOOD, "csm_risk": None}) == Health("high_touch", "Good", reasons=GOOD_REASONS[:3])
    # An empty license utilization (no licenses) is left out too.
    no_licenses = evaluate(card, {**ALL_GOOD, "license_utilization": None})
    assert no_licenses.health == "Good" and len(no_licenses.reasons) == 3


def test_appendix_high_touch_average(tmp_path: Path) -> None:
    card = profile(tmp_path, APPENDIX_HIGH_TOUCH)
    not_held = [
        "engagement_score < 10 (value 60)",
        "license_utilization < 20 (value 50.0)",
        "usage_frequency == 'Inactive' (value 'Weekly')",
        "csm_risk in ['3 - HIGH', '4 - CRITICAL'] (value '0 - NO RISK')",
    ]
    # Engagement 60 is not > 60: no poor rule holds and one good rule fails.
    assert evaluate(card, {**ALL_GOOD, "engagement_score": 60}) == Health(
        "high_touch", "Average", reasons=[*not_held, "engagement_score > 60 (value 60)"]
    )
    minor = evaluate(card, {**ALL_GOOD, "csm_risk": "1 - MINOR"})
    assert minor.health == "Average"
    assert minor.reasons[-1] == "csm_risk in ['0 - NO RISK'] (value '1 - MINOR')"
    monthly = evaluate(card, {**ALL_GOOD, "usage_frequency": "Monthly", "license_utilization": 49.9})
    assert monthly.health == "Average"
    assert monthly.reasons[-2:] == [
        "license_utilization >= 50 (value 49.9)",
        "usage_frequency >= 'Weekly' (value 'Monthly')",
    ]
    # Only the CSM risk is known and it is neither good nor poor: Average, both rules as reasons.
    assert evaluate(card, {"csm_risk": "2 - MAJOR"}) == Health(
        "high_touch",
        "Average",
        reasons=[
            "csm_risk in ['3 - HIGH', '4 - CRITICAL'] (value '2 - MAJOR')",
            "csm_risk in ['0 - NO RISK'] (value '2 - MAJOR')",
        ],
    )


def test_appendix_high_touch_poor_wins(tmp_path: Path) -> None:
    card = profile(tmp_path, APPENDIX_HIGH_TOUCH)
    # One poor rule holding is enough, whatever the good rules say.
    assert evaluate(card, {**ALL_GOOD, "csm_risk": "3 - HIGH"}) == Health(
        "high_touch", "Poor", reasons=["csm_risk in ['3 - HIGH', '4 - CRITICAL'] (value '3 - HIGH')"]
    )
    assert evaluate(card, {**ALL_GOOD, "license_utilization": 19.99}).reasons == [
        "license_utilization < 20 (value 19.99)"
    ]
    assert evaluate(card, {**ALL_GOOD, "license_utilization": 20}).health == "Average"  # < 20 is strict
    several = evaluate(card, {**ALL_GOOD, "engagement_score": 4, "usage_frequency": "Inactive"})
    assert several == Health(
        "high_touch",
        "Poor",
        reasons=["engagement_score < 10 (value 4)", "usage_frequency == 'Inactive' (value 'Inactive')"],
    )
    # Poor with everything else missing.
    assert evaluate(card, {"csm_risk": "4 - CRITICAL"}).health == "Poor"


def test_scorecard_no_value(tmp_path: Path) -> None:
    card = profile(tmp_path, APPENDIX_HIGH_TOUCH)
    empty = dict.fromkeys(ALL_GOOD)
    assert evaluate(card, empty) == Health("high_touch", "No value", None, {}, [])
    assert evaluate(card, {}) == Health("high_touch", "No value")
    # One evaluated good rule is enough for Good.
    assert evaluate(card, {"csm_risk": "0 - NO RISK"}).health == "Good"


def test_scorecard_edge_cases(tmp_path: Path) -> None:
    profiles = load_profiles(
        tmp_path,
        """\
profiles:
  - name: poor_only
    poor: [{metric: engagement_score, op: "<", value: 10}]
  - name: good_only
    good: [{metric: engagement_score, op: ">=", value: 60}]
  - name: both
    good: [{metric: usage_frequency, op: ">=", value: Weekly}]
    poor: [{metric: csm_risk, op: in, value: ["3 - HIGH"]}]
  - name: emptiness
    good: [{metric: csm_risk, op: is_empty}]
    poor: [{metric: csm_risk, op: is_not_empty}]
""",
    )
    poor_only, good_only, both, emptiness = profiles
    # No good rule evaluated (there is none): never Good.
    assert evaluate(poor_only, {"engagement_score": 50}) == Health(
        "poor_only", "Average", reasons=["engagement_score < 10 (value 50)"]
    )
    assert evaluate(poor_only, {"engagement_score": 5}).health == "Poor"
    assert evaluate(poor_only, {}).health == "No value"
    assert evaluate(good_only, {"engagement_score": 60}).health == "Good"
    assert evaluate(good_only, {"engagement_score": 59}) == Health(
        "good_only", "Average", reasons=["engagement_score >= 60 (value 59)"]
    )
    # Every good rule holds and a poor rule holds too: Poor takes precedence, only it is a reason.
    assert evaluate(both, {"usage_frequency": "Daily", "csm_risk": "3 - HIGH"}) == Health(
        "both", "Poor", reasons=["csm_risk in ['3 - HIGH'] (value '3 - HIGH')"]
    )
    assert evaluate(both, {"usage_frequency": "Daily", "csm_risk": "2 - MAJOR"}).health == "Good"
    # is_empty / is_not_empty evaluate on a missing value, so the row is never "No value".
    assert evaluate(emptiness, {}) == Health("emptiness", "Good", reasons=["csm_risk is_empty (value None)"])
    assert evaluate(emptiness, {"csm_risk": "it's"}) == Health(
        "emptiness", "Poor", reasons=["csm_risk is_not_empty (value 'it''s')"]
    )


def test_spec_high_touch_scorecard(tmp_path: Path) -> None:
    high_touch = spec_profiles()[1]
    values = {"usage_frequency": "Daily", "engagement_score": 60, "license_utilization": 75.5, "csm_risk": None}
    assert evaluate(high_touch, values) == Health(
        "high_touch",
        "Good",
        reasons=[
            "usage_frequency >= 'Weekly' (value 'Daily')",
            "engagement_score >= 60 (value 60)",
            "license_utilization >= 50 (value 75.5)",
        ],
    )
    assert evaluate(high_touch, {**values, "engagement_score": 59}).health == "Average"
    assert evaluate(high_touch, {**values, "engagement_score": 9}).health == "Poor"


# --- multidimensional -------------------------------------------------------------------------


def test_digital_left_out_metric_and_dimension(tmp_path: Path) -> None:
    digital = spec_profiles()[2]
    values = {"engagement_score": 72, "usage_frequency": "Monthly", "license_utilization": None}
    # usage = (100*1 + 60*1) / 2 = 80; adoption has no score; overall = 80 -> Good (80 <= Good).
    assert evaluate(digital, values) == Health(
        "digital",
        "Good",
        80,
        {"usage": 80},
        ["usage/engagement_score: Good (>= 60, value 72)", "usage/usage_frequency: Average (value 'Monthly')"],
    )


def test_digital_all_dimensions(tmp_path: Path) -> None:
    digital = spec_profiles()[2]
    # usage = 100, adoption = 60 (30 is neither < 20 nor >= 50); overall (2*100 + 60) / 3 = 86.67 -> 87.
    values = {"engagement_score": 72, "usage_frequency": "Weekly", "license_utilization": 30.0}
    assert evaluate(digital, values) == Health(
        "digital",
        "Good",
        87,
        {"usage": 100, "adoption": 60},
        [
            "usage/engagement_score: Good (>= 60, value 72)",
            "usage/usage_frequency: Good (>= 'Weekly', value 'Weekly')",
            "adoption/license_utilization: Average (value 30.0)",
        ],
    )
    # usage = (0 + 100) / 2 = 50, adoption = 0; overall (2*50 + 0) / 3 = 33.33 -> 33 -> Poor.
    low = evaluate(digital, {"engagement_score": 4, "usage_frequency": "Daily", "license_utilization": 10.0})
    assert (low.health, low.health_score, low.dimension_scores) == ("Poor", 33, {"usage": 50, "adoption": 0})
    assert low.reasons == [
        "usage/engagement_score: Poor (< 10, value 4)",
        "usage/usage_frequency: Good (>= 'Weekly', value 'Daily')",
        "adoption/license_utilization: Poor (< 20, value 10.0)",
    ]
    # A missing metric renormalises its dimension: usage = Inactive alone = 0 (not (0 + ?)/2);
    # adoption = 100; overall (2*0 + 100) / 3 = 33.33 -> 33.
    renorm = evaluate(digital, {"engagement_score": None, "usage_frequency": "Inactive", "license_utilization": 55.0})
    assert (renorm.health, renorm.health_score, renorm.dimension_scores) == ("Poor", 33, {"usage": 0, "adoption": 100})


def test_digital_no_value(tmp_path: Path) -> None:
    digital = spec_profiles()[2]
    nothing = {"engagement_score": None, "usage_frequency": None, "license_utilization": None}
    assert evaluate(digital, nothing) == Health("digital", "No value", None, {}, [])
    assert evaluate(digital, {"status_group": "Paying"}) == Health("digital", "No value")


def test_dimension_renormalises_weights(tmp_path: Path) -> None:
    card = profile(tmp_path, dims(ENGAGEMENT % 3, FREQUENCY % 1, UTILIZATION % 4))
    # All three: (3*100 + 1*60 + 4*0) / 8 = 45 -> Poor.
    full = evaluate(card, {"engagement_score": 72, "usage_frequency": "Monthly", "license_utilization": 0.0})
    assert (full.health_score, full.dimension_scores, full.health) == (45, {"d": 45}, "Poor")
    # Utilization missing: (3*100 + 1*60) / 4 = 90 -> Good.
    part = evaluate(card, {"engagement_score": 72, "usage_frequency": "Monthly"})
    assert (part.health_score, part.dimension_scores, part.health) == (90, {"d": 90}, "Good")


def test_dimension_mean_half_rounds_up_exactly(tmp_path: Path) -> None:
    # Good 0.6, Average 1.1, Poor 0.7: (60 + 66) / 2.4 = 52.5 exactly -> 53. In floats the same
    # mean is 52.49999999999999 (-> 52), and banker's rounding of 52.5 gives 52 as well.
    card = profile(tmp_path, dims(ENGAGEMENT % 0.6, FREQUENCY % 1.1, UTILIZATION % 0.7))
    values = {"engagement_score": 72, "usage_frequency": "Monthly", "license_utilization": 5.0}
    assert (100 * 0.6 + 60 * 1.1) / (0.6 + 1.1 + 0.7) < 52.5
    result = evaluate(card, values)
    assert (result.dimension_scores, result.health_score, result.health) == ({"d": 53}, 53, "Average")


def test_overall_half_rounds_up(tmp_path: Path) -> None:
    # a: Average alone = 60; b: (3*100 + 5*60) / 8 = 75; overall (60 + 75) / 2 = 67.5 -> 68.
    card = profile(
        tmp_path,
        f"""\
profiles:
  - name: p
    dimensions:
      - name: a
        metrics:
          - {FREQUENCY % 1}
      - name: b
        metrics:
          - {ENGAGEMENT % 3}
          - {UTILIZATION % 5}
""",
    )
    result = evaluate(card, {"usage_frequency": "Monthly", "engagement_score": 80, "license_utilization": 35.0})
    assert (result.dimension_scores, result.health_score, result.health) == ({"a": 60, "b": 75}, 68, "Average")


def test_overall_uses_rounded_dimension_scores(tmp_path: Path) -> None:
    # u: (1*100 + 7*0) / 8 = 12.5 -> 13; v: 60. Overall (13 + 60) / 2 = 36.5 -> 37, whereas the
    # unrounded (12.5 + 60) / 2 = 36.25 would give 36. Weight 1.5 on both dimensions: relative only.
    card = profile(
        tmp_path,
        f"""\
profiles:
  - name: p
    dimensions:
      - name: u
        weight: 1.5
        metrics:
          - {ENGAGEMENT % 1}
          - {UTILIZATION % 7}
      - name: v
        weight: 1.5
        metrics:
          - {FREQUENCY % 1}
""",
    )
    result = evaluate(card, {"engagement_score": 90, "license_utilization": 1.0, "usage_frequency": "Monthly"})
    assert (result.dimension_scores, result.health_score, result.health) == ({"u": 13, "v": 60}, 37, "Poor")


@pytest.mark.parametrize(
    ("good_weight", "poor_weight", "score", "health"),
    [
        (49, 51, 49, "Poor"),
        (1, 1, 50, "Average"),
        (79, 21, 79, "Average"),
        (4, 1, 80, "Good"),
        (0.795, 0.205, 80, "Good"),  # 79.5 rounds up to 80 before banding
        (1, 0.1, 91, "Good"),  # 100 / 1.1 = 90.909...
    ],
)
def test_default_band_boundaries(
    tmp_path: Path, good_weight: float, poor_weight: float, score: int, health: str
) -> None:
    card = profile(tmp_path, dims(ENGAGEMENT % good_weight, UTILIZATION % poor_weight))
    result = evaluate(card, {"engagement_score": 72, "license_utilization": 3.0})
    assert (result.health_score, result.health) == (score, health)


def test_configured_bands(tmp_path: Path) -> None:
    card = profile(tmp_path, dims(FREQUENCY % 1, bands="    bands: {average_from: 40, good_from: 60}\n"))
    assert evaluate(card, {"usage_frequency": "Monthly"}).health == "Good"  # 60 >= good_from
    assert [band(s, card.bands) for s in (0, 39, 40, 59, 60, 100)] == [
        "Poor",
        "Poor",
        "Average",
        "Average",
        "Good",
        "Good",
    ]


def test_dimension_metric_with_emptiness_condition(tmp_path: Path) -> None:
    card = profile(
        tmp_path,
        dims('{metric: csm_risk, good: {op: is_empty}, poor: {op: in, value: ["3 - HIGH", "4 - CRITICAL"]}}'),
    )
    # An emptiness condition evaluates on a missing value, so the metric is scored, not left out.
    assert evaluate(card, {}) == Health("p", "Good", 100, {"d": 100}, ["d/csm_risk: Good (is_empty, value None)"])
    assert evaluate(card, {"csm_risk": "3 - HIGH"}).reasons == [
        "d/csm_risk: Poor (in ['3 - HIGH', '4 - CRITICAL'], value '3 - HIGH')"
    ]
    assert evaluate(card, {"csm_risk": "1 - MINOR"}).health_score == 60


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(153, 2), 77),
        (Fraction(1, 2), 1),
        (Fraction(5, 2), 3),  # round() would give 2
        (Fraction(0), 0),
        (Fraction(4999, 100), 50),
        (Fraction(4949, 100), 49),
        (Fraction(100), 100),
        (Fraction(200, 3), 67),
    ],
)
def test_round_half_up(value: Fraction, expected: int) -> None:
    assert round_half_up(value) == expected


def test_exact_weights_and_formatting() -> None:
    assert exact_weight(1.5) == Fraction(3, 2)
    assert exact_weight(0.1) == Fraction(1, 10)
    assert exact_weight(2.0) == 2
    assert format_value(None) == "None"
    assert format_value(4) == "4"
    assert format_value(50.0) == "50.0"
    assert format_value(100 / 3) == "33.333333333333336"
    assert format_value("it's") == "'it''s'"
    assert format_value(["3 - HIGH", 2.5]) == "['3 - HIGH', 2.5]"


def test_validation_is_not_bypassed(tmp_path: Path) -> None:
    # The evaluator trusts the config; a rule it could not evaluate never gets that far.
    with pytest.raises(ConfigError, match="compares order"):
        load_profiles(tmp_path, 'profiles:\n  - name: p\n    good: [{metric: csm_risk, op: ">=", value: "1"}]\n')
    with pytest.raises(ConfigError, match="not a usage frequency"):
        rule("usage_frequency", ">=", "weekly")
