"""Health profiles (docs/health.md) as DuckDB SQL: the set-based twin of `rules.py`.

`rules.py` scores one account in Python and is the reference; this module turns the same
config into SQL text that scores every account of one profile in one query, row for row equal to
`rules.health_of` (`cs_pipeline_tests/test_health_sql.py` checks that on random configs). Pure
functions: config in, SQL out, no connection.

Input (`source`, a table or view name): one row per account with `account_id`, the numeric
metric columns (BIGINT / INTEGER / DOUBLE), `usage_frequency`, `status`, `status_group`,
`account_type` and `attributes MAP(VARCHAR, VARCHAR)`. A rule metric that is an attribute reads
`"attributes"['name']`, which in DuckDB 2.0 gives the value itself, NULL for a missing key.
Output (`health_query`): the key columns (`account_id`; a simulation scoring many days at
once adds `date`), `health`, `health_score INTEGER`,
`dimension_scores MAP(VARCHAR, INTEGER)`, `reasons VARCHAR[]`, as in `rules.Health`.

The translation:
- A rule is a three-valued SQL boolean that is NULL exactly where `rule_holds` gives None: SQL
  comparisons already propagate NULL, `is_empty` / `is_not_empty` are `IS [NOT] NULL`. `==` is
  `=`, `in` an OR of `=`, `!=` / `not_in` their NOT. `usage_frequency` orders by its rank
  (Inactive 0 .. Daily 3), compares by text otherwise.
- Numbers compare exactly as Python does. Ints up to 2**53 are written as digits (exact against
  an integer column, and exactly a double against a DOUBLE one); a float as
  `CAST('<repr>' AS DOUBLE)`, since `0.1` alone would be a DECIMAL. A larger int may lie
  between two doubles, where DuckDB would round it; it becomes the doubles bounding it
  (`x >= v` is `x >= the smallest double >= v`, and nothing equals it). This assumes integer
  columns stay within +-2**53 (they are counts, days and scores).
- Profile assignment is one `CASE WHEN <all when rules> THEN name ...` in config order; a NULL
  rule does not take its branch, so it does not hold.
- Scorecards follow `_evaluate_scorecard` step for step, on one boolean column per rule.
- Dimension profiles: metric scores 0 / 60 / 100 (NULL when left out); each weighted mean is
  computed in HUGEINT from weights scaled in Python to coprime integers (`exact_weight`, then a
  common denominator), and rounded half up as (2*sum(w*s) + sum(w)) // (2*sum(w)): exact, so
  76.5 gives 77 and no float artefact can move a score. Weights so far apart that this could
  overflow 128 bits (1e-30 beside 1e10) raise ValueError when the SQL is built.
- Reasons are built as text, byte-identical to `Health.reasons`: the constant part is rendered
  here with `rules.format_value`, a metric's value in SQL. CAST(DOUBLE AS VARCHAR) in DuckDB
  2.0 prints the shortest round-trip form, exactly Python's `repr(float)` (50.0, 1e-05, 1e+16,
  -0.0), and integers print as digits, so a number is simply cast; text is quoted with `'`
  doubled; NULL shows as `None`. The test suite pins this DuckDB behaviour.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from cs_pipeline.config import EMPTINESS_OPS, LIST_OPS, ORDERING_OPS, USAGE_FREQUENCIES, MetricKind, Profile, Rule
from cs_pipeline.health.rules import AVERAGE_SCORE, GOOD_SCORE, POOR_SCORE, exact_weight, format_value
from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.vocabulary import ACTIVE_STATUS_GROUPS

HEALTH_GROUPS = ACTIVE_STATUS_GROUPS  # only these status groups take part in health (docs/health.md#who-is-scored)
ATTRIBUTES_COLUMN = "attributes"
_EXACT_INT_LIMIT = 2**53  # every int up to this size is also a double
_HUGEINT_MAX = 2**127 - 1


# --- literals and names -------------------------------------------------------------------------


def text_literal(text: str) -> str:
    """`text` as a SQL string literal, in single quotes."""
    return "'" + text.replace("'", "''") + "'"


def _double_literal(value: float) -> str:
    # From text: DuckDB parses it correctly rounded, whereas 0.1 alone would be a DECIMAL.
    return f"CAST('{value!r}' AS DOUBLE)"


def _number_bounds(value: int | float) -> tuple[str, str]:
    """(largest double <= value, smallest double >= value) as SQL; one literal twice when exact."""
    if isinstance(value, float):
        return _double_literal(value), _double_literal(value)
    if abs(value) <= _EXACT_INT_LIMIT:
        return str(value), str(value)
    nearest = float(value)  # cannot overflow: the config's math.isfinite check already converted it
    if nearest == value:
        below = above = nearest
    elif nearest < value:
        below, above = nearest, math.nextafter(nearest, math.inf)
    else:
        below, above = math.nextafter(nearest, -math.inf), nearest
    return _double_literal(below), _double_literal(above)


# --- rules ----------------------------------------------------------------------------------------


def metric_expression(metric: str, attribute_names: Collection[str]) -> str:
    """The SQL for a metric's value: its column, or its entry in the attributes map."""
    if metric in attribute_names:
        return f"{quote_identifier(ATTRIBUTES_COLUMN)}[{text_literal(metric)}]"
    return quote_identifier(metric)


def _frequency_rank(value_sql: str) -> str:
    ranks = " ".join(f"WHEN {text_literal(name)} THEN {rank}" for rank, name in enumerate(USAGE_FREQUENCIES))
    return f"(CASE {value_sql} {ranks} END)"


def _equals(value_sql: str, kind: MetricKind, target: int | float | str) -> str:
    if kind != "number":
        assert isinstance(target, str)
        return f"{value_sql} = {text_literal(target)}"
    assert not isinstance(target, str)
    below, above = _number_bounds(target)
    if below == above:
        return f"{value_sql} = {below}"
    # No double (nor integer within 2**53) equals the target: FALSE, and NULL on NULL.
    return f"({value_sql} >= {above} AND {value_sql} <= {below})"


def _ordered(value_sql: str, kind: MetricKind, op: str, target: int | float | str) -> str:
    if kind == "ordinal":
        assert isinstance(target, str)
        return f"{_frequency_rank(value_sql)} {op} {USAGE_FREQUENCIES.index(target)}"
    assert not isinstance(target, str)
    below, above = _number_bounds(target)
    # With no double strictly between the bounds: x >= v iff x >= above, x > v iff x > below, ...
    return f"{value_sql} {op} {above if op in ('>=', '<') else below}"


def rule_expression(rule: Rule, attribute_names: Collection[str]) -> str:
    """A SQL boolean: TRUE / FALSE where `rule_holds` is, NULL where it is None (left out)."""
    value_sql = metric_expression(rule.metric, attribute_names)
    if rule.op in EMPTINESS_OPS:
        return f"({value_sql} IS {'' if rule.op == 'is_empty' else 'NOT '}NULL)"
    assert rule.value is not None
    if rule.op in ORDERING_OPS:
        assert not isinstance(rule.value, list)
        return f"({_ordered(value_sql, rule.kind, rule.op, rule.value)})"
    targets = rule.value if rule.op in LIST_OPS else [rule.value]
    assert isinstance(targets, list)
    any_equal = "(" + " OR ".join(_equals(value_sql, rule.kind, target) for target in targets) + ")"
    return any_equal if rule.op in ("==", "in") else f"(NOT {any_equal})"


def assignment_expression(profiles: Sequence[Profile], attribute_names: Collection[str]) -> str:
    """SQL giving the name of the first profile whose every `when` rule holds, NULL if none does."""
    if not profiles:
        return "CAST(NULL AS VARCHAR)"
    branches = []
    for profile in profiles:
        holds = " AND ".join(rule_expression(rule, attribute_names) for rule in profile.when) or "TRUE"
        branches.append(f"WHEN {holds} THEN {text_literal(profile.name)}")
    return "(CASE " + " ".join(branches) + " END)"


# --- reason text ----------------------------------------------------------------------------------


def _shown_value(metric: str, kind: MetricKind, attribute_names: Collection[str]) -> str:
    """SQL text of `format_value(value)` for a metric's value (see the module docstring)."""
    value_sql = metric_expression(metric, attribute_names)
    if kind == "number":
        shown = f"CAST({value_sql} AS VARCHAR)"
    else:
        shown = f"'''' || replace({value_sql}, '''', '''''') || ''''"
    return f"coalesce({shown}, 'None')"


def _condition_text(rule: Rule) -> str:
    return rule.op if rule.op in EMPTINESS_OPS else f"{rule.op} {format_value(rule.value)}"


def _reason(prefix: str, shown_sql: str) -> str:
    """SQL for `<prefix><shown value>)`: every reason ends with its value in parentheses."""
    return f"{text_literal(prefix)} || {shown_sql} || ')'"


def _non_null_list(items: Sequence[str]) -> str:
    """SQL: the list of the items that are not NULL, in order (a VARCHAR[] here)."""
    return f"list_filter([{', '.join(items)}], lambda item: item IS NOT NULL)"


# --- queries --------------------------------------------------------------------------------------


def health_query(
    profile: Profile,
    profiles: Sequence[Profile],
    attribute_names: Collection[str],
    source: str,
    keys: Sequence[str] = ("account_id",),
) -> str:
    """SELECT <keys>, health, health_score, dimension_scores, reasons for the Free/Paying rows of
    `source` (a table or view name) assigned to `profile` among `profiles`; `keys` are columns of
    `source` that identify a row (one day: account_id; several days: date and account_id)."""
    if profile.name not in [p.name for p in profiles]:
        raise ValueError(f"profile {profile.name!r} is not among the profiles it is assigned from")
    groups = ", ".join(text_literal(group) for group in HEALTH_GROUPS)
    assigned = f"""\
WITH profile_rows AS (
    SELECT * FROM {quote_identifier(source)}
    WHERE {quote_identifier("status_group")} IN ({groups})
        AND {assignment_expression(profiles, attribute_names)} = {text_literal(profile.name)}
)"""
    key_columns = ", ".join(quote_identifier(key) for key in keys)
    if profile.dimensions:
        return assigned + _dimensions_query(profile, attribute_names, key_columns)
    return assigned + _scorecard_query(profile, attribute_names, key_columns)


def _columns(named: Sequence[tuple[str, str]]) -> str:
    """`, <sql> AS "<name>"` for each (name, sql), one per line."""
    return "".join(f",\n        {sql} AS {quote_identifier(name)}" for name, sql in named)


def _scorecard_query(profile: Profile, attribute_names: Collection[str], key_columns: str) -> str:
    health = quote_identifier("health")
    results: list[tuple[str, str]] = []  # (column, rule SQL), poor rules then good rules
    reasons: list[tuple[str, str]] = []  # (column, reason text SQL)
    listed: list[str] = []  # each rule's reason where `_evaluate_scorecard` lists it, else NULL
    for side, label, rules in (("poor", "Poor", profile.poor), ("good", "Good", profile.good)):
        for index, rule in enumerate(rules):
            result, reason = f"{side}_{index}", f"{side}_{index}_reason"
            results.append((result, rule_expression(rule, attribute_names)))
            shown = _shown_value(rule.metric, rule.kind, attribute_names)
            reasons.append((reason, _reason(f"{rule.metric} {_condition_text(rule)} (value ", shown)))
            # Listed: a rule that holds, on its side's label; a rule that does not hold, on Average.
            holds = quote_identifier(result)
            is_listed = f"({health} = '{label}' AND {holds}) OR ({health} = 'Average' AND NOT {holds})"
            listed.append(f"CASE WHEN {is_listed} THEN {quote_identifier(reason)} END")
    poor = [quote_identifier(f"poor_{i}") for i in range(len(profile.poor))]
    good = [quote_identifier(f"good_{i}") for i in range(len(profile.good))]
    outcomes = ["WHEN " + " AND ".join(f"{c} IS NULL" for c in poor + good) + " THEN 'No value'"]
    if poor:
        outcomes.append("WHEN " + " OR ".join(poor) + " THEN 'Poor'")
    if good:
        evaluated = " OR ".join(f"{c} IS NOT NULL" for c in good)
        failed = " OR ".join(f"{c} IS FALSE" for c in good)
        outcomes.append(f"WHEN ({evaluated}) AND NOT ({failed}) THEN 'Good'")
    return f""",
rule_results AS (
    SELECT {key_columns}{_columns(results + reasons)}
    FROM profile_rows
),
labelled AS (
    SELECT *, CASE {" ".join(outcomes)} ELSE 'Average' END AS {health}
    FROM rule_results
)
SELECT
    {key_columns},
    {health},
    CAST(NULL AS INTEGER) AS {quote_identifier("health_score")},
    CAST(MAP {{}} AS MAP(VARCHAR, INTEGER)) AS {quote_identifier("dimension_scores")},
    {_non_null_list(listed)} AS {quote_identifier("reasons")}
FROM labelled
"""


def _integer_weights(weights: Sequence[float], where: str) -> list[int]:
    """The weights as coprime integers in the same ratios as their exact decimals."""
    exact = [exact_weight(w) for w in weights]
    denominator = math.lcm(*(w.denominator for w in exact))
    scaled = [int(w * denominator) for w in exact]
    divisor = math.gcd(*scaled)
    integers = [s // divisor for s in scaled]
    # The largest intermediate of `_rounded_mean` is 2*sum(w*100) + sum(w).
    if (2 * GOOD_SCORE + 1) * sum(integers) > _HUGEINT_MAX:
        raise ValueError(f"{where}: the weights are too far apart to average exactly in 128-bit integers")
    return integers


def _weighted_sums(name: str, weighted_scores: Sequence[tuple[int, str]]) -> list[tuple[str, str]]:
    """Columns `<name>_weighted` = sum(w*s) and `<name>_weight` = sum(w) over the scores that are
    not NULL, in HUGEINT (the integer weights can be large)."""
    weighted = " + ".join(f"coalesce(CAST({w} AS HUGEINT) * {s}, 0)" for w, s in weighted_scores)
    weight = " + ".join(f"(CASE WHEN {s} IS NULL THEN 0 ELSE CAST({w} AS HUGEINT) END)" for w, s in weighted_scores)
    return [(f"{name}_weighted", weighted), (f"{name}_weight", weight)]


def _rounded_mean(name: str) -> tuple[str, str]:
    """Column `<name>` = round_half_up(weighted / weight), NULL when nothing was scored (weight 0)."""
    weighted, weight = quote_identifier(f"{name}_weighted"), quote_identifier(f"{name}_weight")
    return name, f"CAST((2 * {weighted} + {weight}) // NULLIF(2 * {weight}, 0) AS INTEGER)"


def _dimensions_query(profile: Profile, attribute_names: Collection[str], key_columns: str) -> str:
    results: list[tuple[str, str]] = []  # per metric: its poor and good rule, its shown value
    metric_scores: list[tuple[str, str]] = []
    dimension_sums: list[tuple[str, str]] = []
    dimension_scores: list[tuple[str, str]] = []
    reasons: list[str] = []  # per metric, dimensions then metrics in config order; NULL when left out
    for d, dimension in enumerate(profile.dimensions):
        where = f"profile {profile.name!r}, dimension {dimension.name!r}"
        weights = _integer_weights([metric.weight for metric in dimension.metrics], where)
        weighted: list[tuple[int, str]] = []
        for m, (metric, weight) in enumerate(zip(dimension.metrics, weights, strict=True)):
            poor, good, shown, score = (f"{part}_{d}_{m}" for part in ("poor", "good", "shown", "score"))
            results += [
                (poor, rule_expression(metric.poor_rule, attribute_names)),
                (good, rule_expression(metric.good_rule, attribute_names)),
                (shown, _shown_value(metric.metric, metric.kind, attribute_names)),
            ]
            poor, good, shown, score = map(quote_identifier, (poor, good, shown, score))
            metric_scores.append(
                (
                    f"score_{d}_{m}",
                    f"CASE WHEN {poor} IS NULL AND {good} IS NULL THEN NULL WHEN {poor} THEN {POOR_SCORE} "
                    f"WHEN {good} THEN {GOOD_SCORE} ELSE {AVERAGE_SCORE} END",
                )
            )
            weighted.append((weight, score))
            label = f"{dimension.name}/{metric.metric}: "
            poor_text = _reason(f"{label}Poor ({_condition_text(metric.poor_rule)}, value ", shown)
            good_text = _reason(f"{label}Good ({_condition_text(metric.good_rule)}, value ", shown)
            average_text = _reason(f"{label}Average (value ", shown)
            reasons.append(
                f"CASE WHEN {poor} THEN {poor_text} WHEN {good} THEN {good_text} "
                f"WHEN {score} IS NOT NULL THEN {average_text} END"
            )
        dimension_sums += _weighted_sums(f"dimension_{d}", weighted)
        dimension_scores.append(_rounded_mean(f"dimension_{d}"))

    dimension_weights = _integer_weights([dim.weight for dim in profile.dimensions], f"profile {profile.name!r}")
    dimension_columns = [quote_identifier(name) for name, _ in dimension_scores]
    overall = quote_identifier("overall")
    entries = ", ".join(
        f"{{'key': {text_literal(dimension.name)}, 'value': {column}}}"
        for dimension, column in zip(profile.dimensions, dimension_columns, strict=True)
    )
    bands = profile.bands
    return f""",
rule_results AS (
    SELECT {key_columns}{_columns(results)}
    FROM profile_rows
),
metric_scored AS (
    SELECT *{_columns(metric_scores)}
    FROM rule_results
),
dimension_sums AS (
    SELECT *{_columns(dimension_sums)}
    FROM metric_scored
),
dimension_scored AS (
    SELECT *{_columns(dimension_scores)}
    FROM dimension_sums
),
overall_sums AS (
    SELECT *{_columns(_weighted_sums("overall", list(zip(dimension_weights, dimension_columns, strict=True))))}
    FROM dimension_scored
),
overall_scored AS (
    SELECT *{_columns([_rounded_mean("overall")])}
    FROM overall_sums
)
SELECT
    {key_columns},
    CASE WHEN {overall} IS NULL THEN 'No value' WHEN {overall} < {bands.average_from} THEN 'Poor'
        WHEN {overall} < {bands.good_from} THEN 'Average' ELSE 'Good' END AS {quote_identifier("health")},
    {overall} AS {quote_identifier("health_score")},
    CAST(
        map_from_entries(list_filter([{entries}], lambda entry: entry.value IS NOT NULL)) AS MAP(VARCHAR, INTEGER)
    ) AS {quote_identifier("dimension_scores")},
    {_non_null_list(reasons)} AS {quote_identifier("reasons")}
FROM overall_scored
"""
