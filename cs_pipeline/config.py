"""Pipeline configuration: one YAML file -> frozen, validated pydantic models (docs/configuration.md).

`load_config()` is the only way in for production code. Every mistake (YAML syntax, a misspelt
key, an unknown metric, a bad op or value) becomes one `ConfigError` that names the file and
each failing key path; nothing falls back to a default when a value is wrong.
"""

import difflib
import hashlib
import json
import math
import os
import re
import types
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SkipValidation,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cs_pipeline.tables import TABLES
from cs_pipeline.vocabulary import (
    BUILTIN_METRICS,
    CATALOG_STATUS_GROUPS,
    LONGEST_WINDOW,
    TEXT_VALUES,
    USAGE_FREQUENCIES,
    MetricKind,
)

ENV_VAR = "CS_PIPELINE_CONFIG"

# --- vocabulary (docs/health.md#rules, docs/lifecycle.md#status-catalog) --------------------------

Op = Literal[">=", ">", "<=", "<", "==", "!=", "in", "not_in", "is_empty", "is_not_empty"]
OPS: tuple[str, ...] = get_args(Op)
ORDERING_OPS = frozenset({">=", ">", "<=", "<"})
LIST_OPS = frozenset({"in", "not_in"})
EMPTINESS_OPS = frozenset({"is_empty", "is_not_empty"})

# The metric and status-group vocabulary is defined once, in cs_pipeline/vocabulary.py.
StatusGroup = Literal[CATALOG_STATUS_GROUPS]  # the groups of the status catalog (statuses:)
STATUS_GROUPS: tuple[str, ...] = CATALOG_STATUS_GROUPS
ACCOUNT_COLUMNS: tuple[str, ...] = tuple(TABLES["accounts"].names())
# Custom metrics become account_metrics columns and attributes become rule names: neither may
# shadow a built-in metric or a warehouse column.
RESERVED_NAMES = (
    frozenset(BUILTIN_METRICS) | frozenset(ACCOUNT_COLUMNS) | frozenset(TABLES["account_metrics"].names(run_id=True))
)

DEFAULT_STATUSES: dict[str, list[str]] = {
    "Free": ["Trial", "Internal-use"],
    "Paying": ["Personal", "Pro", "Enterprise"],
    "Canceled": ["Cancelled"],
}


class ConfigError(ValueError):
    """A config file that cannot be used; one line per problem, each naming file and key."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = problems
        super().__init__("\n".join(f"config {self.path}: {p}" for p in problems))

    def __reduce__(self) -> tuple[type["ConfigError"], tuple[Path, list[str]]]:
        return ConfigError, (self.path, self.problems)  # picklable across Dagster processes


# --- validation helpers -------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """What validators need beyond the value at hand: the YAML's folder and the rule names."""

    base_dir: Path
    kinds: Mapping[str, MetricKind]  # every metric name a rule may use
    custom: frozenset[str]


def _ctx(info: ValidationInfo) -> _Context:
    ctx = (info.context or {}).get("cs_pipeline")
    if not isinstance(ctx, _Context):  # a programming error, not a config error: let it raise
        raise TypeError("build PipelineConfig with load_config() or parse_config()")
    return ctx


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("cs_config", message)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _not_bool(value: Any) -> Any:
    # YAML reads yes/no/on/off as booleans, which pydantic would take as 1/0.
    if isinstance(value, bool):
        raise _fail(f"{value!r} is a yes/no value, not a number")
    return value


def _text(value: str) -> str:
    value = value.strip()  # inputs are trimmed (docs/data-model.md#general-normalisation), so config values are too
    if not value:
        raise _fail("must not be empty")
    return value


def _path(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise _fail(f"should be a path, got {_short(value)}")
    return (_ctx(info).base_dir / Path(str(value).strip()).expanduser()).resolve()


def _sql_file(value: Any, info: ValidationInfo) -> Path:
    path = _path(value, info)
    if not path.is_file():
        raise _fail(f"SQL file {path} does not exist")
    return path


_SNAKE = re.compile(r"[a-z][a-z0-9_]*\Z")
_SF_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*\Z")


def _snake_name(name: str) -> str:
    if not _SNAKE.match(name):
        raise _fail(f"{name!r} is not a valid name: use lower_snake_case (a-z, 0-9, _, starting with a letter)")
    if name in RESERVED_NAMES:
        raise _fail(f"{name!r} is a built-in metric or account column name; pick another")
    return name


def _attribute_name(name: str, info: ValidationInfo) -> str:
    _snake_name(name)
    if name in _ctx(info).custom:
        raise _fail(f"{name!r} is also a custom metric under metrics:; pick another")
    return name


def _sf_field(name: str) -> str:
    name = name.strip()
    if not _SF_FIELD.match(name):
        raise _fail(f"{name!r} is not a Salesforce field name (e.g. Name, Segment__c, Product2.Name)")
    return name


def _one_or_more(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _api_version(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise _fail(f'{value!r} should be quoted text such as "62.0" (YAML reads 62.0 as a number)')
    return value


def _api_version_format(value: str) -> str:
    if not re.fullmatch(r"\d+\.\d+", value):
        raise _fail(f'{value!r} is not an API version such as "62.0"')
    return value


def _profile_name(name: str) -> str:
    if not name.strip():
        raise _fail("must not be empty")
    if name != name.strip():
        raise _fail(f"{name!r} must not start or end with spaces")
    if bad := sorted(set(name) & set("|,[]")):
        raise _fail(
            f"{name!r} contains {' '.join(bad)}; profile names become Dagster partition keys, which cannot hold | , [ ]"
        )
    return name


Int = Annotated[int, BeforeValidator(_not_bool)]
PositiveInt = Annotated[Int, Field(gt=0)]
Weight = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]
Share = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=1)]
Text = Annotated[str, AfterValidator(_text)]
ResolvedPath = Annotated[Path, BeforeValidator(_path)]
SqlPath = Annotated[Path, BeforeValidator(_sql_file)]
SfField = Annotated[str, AfterValidator(_sf_field)]
SfFields = Annotated[list[SfField], BeforeValidator(_one_or_more), Field(min_length=1)]
CustomMetricName = Annotated[str, AfterValidator(_snake_name)]
AttributeName = Annotated[str, AfterValidator(_attribute_name)]
ProfileName = Annotated[str, AfterValidator(_profile_name)]
RuleValue = int | float | str | list[int | float] | list[str] | None


# --- rules ----------------------------------------------------------------------------------


def _check_metric(name: str, ctx: _Context) -> str:
    if name in ctx.kinds:
        return name
    close = difflib.get_close_matches(name, list(ctx.kinds), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise _fail(
        f"unknown metric {name!r} (not a built-in metric, a custom metric under metrics:, "
        f"or an attribute in crm.mapping.account.attributes){hint}"
    )


def _check_op(metric: str, op: str, ctx: _Context) -> None:
    if op in ORDERING_OPS and ctx.kinds[metric] == "text":
        raise _fail(f"{op!r} compares order, but {metric!r} is text; use ==, !=, in, not_in, is_empty or is_not_empty")


def _scalar(metric: str, kind: MetricKind, value: Any) -> int | float | str:
    if kind == "number":
        number: Any = value.strip() if isinstance(value, str) else value
        if isinstance(number, str):
            try:
                number = float(number)
            except ValueError:
                pass
        if isinstance(number, bool) or not isinstance(number, int | float) or not _finite(number):
            raise _fail(f"{_short(value)} is not a number ({metric} is numeric)")
        return int(number) if isinstance(number, float) and number.is_integer() else number
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(f"{_short(value)} is not text ({metric} is text; quote the value)")
    text = str(value).strip()
    if kind == "ordinal":
        if text not in USAGE_FREQUENCIES:
            raise _fail(f"{text!r} is not a usage frequency (use one of {', '.join(USAGE_FREQUENCIES)})")
    elif not text:
        raise _fail("an empty text never matches (blank inputs are null); use is_empty")
    elif metric in TEXT_VALUES and text not in TEXT_VALUES[metric]:
        raise _fail(f"{text!r} is not a valid {metric} (use one of {', '.join(TEXT_VALUES[metric])})")
    return text


def _finite(number: int | float) -> bool:
    """A float that is not inf/nan, or an int a float can hold (metrics are compared as DOUBLE)."""
    try:
        return math.isfinite(number)
    except OverflowError:  # an int beyond the float range, e.g. 10**400
        return False


def _check_value(metric: str, op: str, value: Any, ctx: _Context) -> RuleValue:
    kind = ctx.kinds[metric]
    if op in EMPTINESS_OPS:
        if value is not None:
            raise _fail(f"{op} takes no value; remove it")
        return None
    if value is None:
        raise _fail(f"is required for op {op!r}")
    if op in LIST_OPS:
        if not isinstance(value, list) or not value:
            raise _fail(f"{op} needs a non-empty list such as [a, b], got {_short(value)}")
        return [_scalar(metric, kind, v) for v in value]  # type: ignore[return-value]
    if isinstance(value, list):
        raise _fail(f"{op!r} takes one value; use in / not_in for a list")
    return _scalar(metric, kind, value)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _OnMetric(_Model):
    """A config entry on one metric (a rule, a dimension's metric): the metric must be known to
    the config (built-in or custom), and its kind is remembered once the config is validated."""

    metric: str
    _kind: MetricKind = PrivateAttr(default="number")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str, info: ValidationInfo) -> str:
        return _check_metric(metric, _ctx(info))

    @model_validator(mode="after")
    def _remember_kind(self, info: ValidationInfo) -> Self:
        self._kind = _ctx(info).kinds[self.metric]
        return self

    @property
    def kind(self) -> MetricKind:
        """The metric's kind, set when the config is validated: how it compares, "number",
        "ordinal" (usage_frequency) or "text"."""
        return self._kind


class Rule(_OnMetric):
    """`{metric, op, value}`; `value` is normalised (numbers parsed, text trimmed, None for is_empty).
    `written_value` keeps the value as the YAML file wrote it (the health lab names rules by it)."""

    op: Op
    value: SkipValidation[RuleValue] = Field(default=None, validate_default=True)
    _written: Any = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_written(cls, data: Any, handler: Any) -> "Rule":
        rule = handler(data)
        if isinstance(data, Mapping):
            rule._written = data.get("value")
        return rule

    @field_validator("op")
    @classmethod
    def _op_fits_metric(cls, op: str, info: ValidationInfo) -> str:
        if "metric" in info.data:
            _check_op(info.data["metric"], op, _ctx(info))
        return op

    @field_validator("value")
    @classmethod
    def _value_fits(cls, value: Any, info: ValidationInfo) -> RuleValue:
        if "metric" not in info.data or "op" not in info.data:
            return value  # the metric or op error is already reported
        return _check_value(info.data["metric"], info.data["op"], value, _ctx(info))

    @property
    def written_value(self) -> Any:
        """The value as written in the config, before normalisation (`40.0` stays a float); the
        normalised value for a rule made in code rather than read from a file."""
        return self._written if self._written is not None else self.value


class Condition(_Model):
    """A dimension metric's good or poor test: `{op, value}` on the metric named beside it."""

    op: Op
    value: SkipValidation[RuleValue] = None  # checked by DimensionMetric, which knows the metric
    _written: Any = PrivateAttr(default=None)  # the value as written (Rule.written_value)


class DimensionMetric(_OnMetric):
    """A metric of a dimension (`profiles[].dimensions[].metrics[]`): its weight and its good and poor conditions."""
    weight: Weight = 1.0
    good: Condition
    poor: Condition

    @field_validator("good", "poor")
    @classmethod
    def _condition_fits(cls, cond: Condition, info: ValidationInfo) -> Condition:
        if "metric" not in info.data:
            return cond
        ctx = _ctx(info)
        _check_op(info.data["metric"], cond.op, ctx)
        checked = cond.model_copy(update={"value": _check_value(info.data["metric"], cond.op, cond.value, ctx)})
        checked._written = cond.value
        return checked

    def _rule(self, cond: Condition) -> Rule:
        rule = Rule.model_construct(metric=self.metric, op=cond.op, value=cond.value)
        rule._kind = self._kind
        rule._written = cond._written
        return rule

    @property
    def good_rule(self) -> Rule:
        """The good condition as a rule on the metric."""
        return self._rule(self.good)

    @property
    def poor_rule(self) -> Rule:
        """The poor condition as a rule on the metric."""
        return self._rule(self.poor)


class Dimension(_Model):
    """A dimension of a dimensional profile (`profiles[].dimensions[]`): its weight and metrics."""
    name: Text
    weight: Weight = 1.0
    metrics: Annotated[list[DimensionMetric], Field(min_length=1)]


class Bands(_Model):
    """Poor < average_from <= Average < good_from <= Good (scores are integers 0-100)."""

    average_from: Annotated[Int, Field(ge=0, le=100)] = 50
    good_from: Annotated[Int, Field(ge=0, le=100)] = 80

    @model_validator(mode="after")
    def _ordered(self) -> "Bands":
        if self.average_from > self.good_from:
            raise _fail(f"average_from ({self.average_from}) must not exceed good_from ({self.good_from})")
        return self


class Profile(_Model):
    """A scorecard (`good`/`poor` rules) or a multidimensional profile (`dimensions`, `bands`)."""

    name: ProfileName
    when: list[Rule] = []
    good: list[Rule] = []
    poor: list[Rule] = []
    dimensions: list[Dimension] = []
    bands: Bands = Bands()

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, Mapping):  # the kind is decided by which keys are written
            scorecard, dims = "good" in data or "poor" in data, "dimensions" in data
            if scorecard and dims:
                raise _fail(
                    "has both good/poor rules and dimensions; a profile is a scorecard or multidimensional, not both"
                )
            if not scorecard and not dims:
                raise _fail("needs good/poor rules (a scorecard) or dimensions (multidimensional)")
            if "bands" in data and not dims:
                raise _fail("bands only apply to a profile with dimensions")
        return data

    @model_validator(mode="after")
    def _has_rules(self) -> "Profile":
        if not (self.good or self.poor or self.dimensions):
            raise _fail("has no good or poor rule and no dimension, so it could never score")
        names = [d.name for d in self.dimensions]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise _fail(f"dimension name {dupes[0]!r} is used twice")
        return self

    @property
    def kind(self) -> Literal["scorecard", "dimensions"]:
        """`dimensions` for a dimensional profile, else `scorecard` (good and poor rules)."""
        return "dimensions" if self.dimensions else "scorecard"


# --- sections -------------------------------------------------------------------------------


class SalesforceConfig(_Model):
    """`crm.salesforce`: the API version, the record count above which Bulk API 2.0 is used, and the
    overlap of incremental extractions (credentials come from environment variables only)."""
    api_version: Annotated[str, BeforeValidator(_api_version), AfterValidator(_api_version_format)] = "62.0"
    bulk_threshold: PositiveInt = 10000  # records above which Bulk API 2.0 is used
    overlap_minutes: Annotated[Int, Field(ge=0)] = 10


class AccountMapping(_Model):
    """Salesforce field names per canonical column; a list means first non-empty wins."""

    account_id: SfFields = ["External_Id__c", "Id"]
    name: SfFields = ["Name"]
    parent_id: SfFields = ["ParentId"]
    status: SfFields = ["Status__c"]
    create_date: SfFields = ["Customer_Since__c", "CreatedDate"]
    contract_value: SfFields = ["Contract_Value__c"]
    renewal_date: SfFields = ["Renewal_Date__c"]
    licenses: SfFields = ["Licenses__c"]
    attributes: dict[AttributeName, SfField] = {}  # canonical name -> Salesforce field


class AssetMapping(_Model):
    """`crm.mapping.asset`: the Asset fields each canonical column is read from, first non-empty wins."""
    account_id: SfFields = ["AccountId"]
    product_code: SfFields = ["Product2.ProductCode"]
    product_name: SfFields = ["Product2.Name"]
    status: SfFields = ["Status"]
    licenses: SfFields = ["Quantity"]
    contract_value: SfFields = ["Price"]
    create_date: SfFields = ["InstallDate"]


class ContactMapping(_Model):
    """`crm.mapping.contact`: the Contact fields each canonical column is read from, first non-empty wins."""
    account_id: SfFields = ["AccountId"]
    user_id: SfFields = ["Email"]
    name: SfFields = ["Name"]


class MappingConfig(_Model):
    """`crm.mapping`: the field mapping of each CRM object."""
    account: AccountMapping = AccountMapping()
    asset: AssetMapping = AssetMapping()
    contact: ContactMapping = ContactMapping()


class CrmConfig(_Model):
    """`crm`: where the CRM comes from (export files or Salesforce) and how its records map."""
    source: Literal["files", "salesforce"] = "files"
    files_dir: ResolvedPath | None = Field(default=None, validate_default=True)
    product_separator: Annotated[str, Field(min_length=1)] = "_"
    salesforce: SalesforceConfig = SalesforceConfig()
    mapping: MappingConfig = MappingConfig()

    @field_validator("files_dir")
    @classmethod
    def _files_need_dir(cls, files_dir: Path | None, info: ValidationInfo) -> Path | None:
        if files_dir is None and info.data.get("source") == "files":
            raise _fail("is required when crm.source is files (the folder holding Account.csv, Asset.csv, Contact.csv)")
        return files_dir


class LimitsConfig(_Model):
    """`limits`: the most distinct modules and actions a tenant's events may bring."""
    modules: PositiveInt = 100
    actions: PositiveInt = 500


class CustomMetric(_Model):
    """Exactly one of count_action / distinct_users_of_module (with window) / sql."""

    count_action: Text | None = None
    distinct_users_of_module: Text | None = None
    sql: SqlPath | None = None
    window: Annotated[Int, Field(ge=1, le=LONGEST_WINDOW)] = LONGEST_WINDOW

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> "CustomMetric":
        given = [k for k in ("count_action", "distinct_users_of_module", "sql") if getattr(self, k) is not None]
        if len(given) != 1:
            got = f" (got {', '.join(given)})" if given else ""
            raise _fail(f"needs exactly one of count_action, distinct_users_of_module, sql{got}")
        if self.sql is not None and "window" in self.model_fields_set:
            raise _fail("window does not apply to a sql metric (its query picks its own days)")
        return self

    @property
    def kind(self) -> Literal["count_action", "distinct_users_of_module", "sql"]:
        """Which of the three custom metric kinds this is."""
        if self.count_action is not None:
            return "count_action"
        return "distinct_users_of_module" if self.distinct_users_of_module is not None else "sql"

    @property
    def argument(self) -> str:
        """The action or module counted; for a sql metric, the query file's path."""
        return self.count_action or self.distinct_users_of_module or str(self.sql)

    @property
    def sql_path(self) -> Path | None:
        """The resolved SQL file of an `sql` metric, else None."""
        return self.sql


class SubaccountHealth(_Model):
    """`rollups.subaccount_health`: what the Poor and Good shares of descendants weigh by, and their thresholds."""
    by: Literal["count", "contract_value"] = "contract_value"
    poor_share: Share = 0.5
    good_share: Share = 0.5


class RollupsConfig(_Model):
    """`rollups`: settings of the roll-ups over the account hierarchy."""
    subaccount_health: SubaccountHealth = SubaccountHealth()


class RetentionConfig(_Model):
    """`retention`: when Free accounts' events are purged (null disables it)."""
    free_inactive_days: PositiveInt | None = 90  # null disables purging


class TimeoutsConfig(_Model):
    """How long a run waits for what another process holds before it fails with an error
    naming the holder: the warehouse file's lock, and the `duckdb` pool's slot."""

    warehouse_lock_seconds: PositiveInt = 600
    pool_seconds: PositiveInt = 600


class PipelineConfig(_Model):
    """The whole validated config file (docs/configuration.md)."""
    source_path: Path  # set by load_config, never read from the YAML
    crm: CrmConfig
    landing: ResolvedPath
    warehouse: ResolvedPath
    # Beyond the reference example: the published query layer's folder (docs/data-model.md#published-layer), by default
    # published/ beside the warehouse file.
    published: ResolvedPath | None = Field(default=None, validate_default=True)
    # Beyond the reference example (docs/configuration.md): the first daily partition (Dagster needs one). Extend it to
    # backfill older history.
    start_date: date = date(2024, 1, 1)
    statuses: dict[StatusGroup, list[Text]] = Field(
        default_factory=lambda: {group: list(names) for group, names in DEFAULT_STATUSES.items()}
    )
    limits: LimitsConfig = LimitsConfig()
    metrics: dict[CustomMetricName, CustomMetric] = {}
    profiles: list[Profile]
    rollups: RollupsConfig = RollupsConfig()
    retention: RetentionConfig = RetentionConfig()
    # Beyond the reference example (docs/configuration.md): how long to wait for another process's lock or pool slot
    timeouts: TimeoutsConfig = TimeoutsConfig()
    _sha256: str = PrivateAttr(default="")

    @field_validator("statuses")
    @classmethod
    def _statuses_unique(cls, statuses: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for group, names in statuses.items():
            for name in names:
                if name.lower() in seen:  # matching is case-insensitive (docs/lifecycle.md#status-catalog)
                    raise _fail(
                        f"status {name!r} is listed twice (under {seen[name.lower()]} and {group}); "
                        "matching ignores case"
                    )
                seen[name.lower()] = group
        return statuses

    @field_validator("warehouse")
    @classmethod
    def _warehouse_creatable(cls, warehouse: Path) -> Path:
        # said here, naming the key, rather than by the first run's mkdir deep in a step
        folder = warehouse.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise _fail(f"{warehouse} cannot be created: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise _fail(f"{warehouse} cannot be created: no permission to write in {folder}")
        return warehouse

    @field_validator("published")
    @classmethod
    def _published_default(cls, published: Path | None, info: ValidationInfo) -> Path | None:
        warehouse = info.data.get("warehouse")
        if published is None and warehouse is not None:
            return warehouse.parent / "published"
        if published is not None and warehouse is not None and published in (warehouse, *warehouse.parents):
            raise _fail(f"{published} holds the warehouse file; give the published layer a folder of its own")
        return published

    @field_validator("profiles")
    @classmethod
    def _profiles_unique(cls, profiles: list[Profile]) -> list[Profile]:
        if not profiles:
            raise _fail("needs at least one profile")
        names = [p.name for p in profiles]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise _fail(f"profile name {dupes[0]!r} is used twice")
        return profiles

    def config_hash(self) -> str:
        """sha256 hex of the YAML file's bytes as loaded (recorded with runs for audit)."""
        return self._sha256

    def status_catalog(self) -> list[tuple[str, str]]:
        """[(status as spelt in the catalog, group)], in config order."""
        return [(name, group) for group, names in self.statuses.items() for name in names]

    def profile_names(self) -> list[str]:
        """The profiles' names in config order."""
        return [p.name for p in self.profiles]

    def metric_kind(self, name: str) -> MetricKind | None:
        """Kind of any name a rule may use; None if unknown."""
        if name in BUILTIN_METRICS:
            return BUILTIN_METRICS[name]
        if name in self.metrics:
            return "number"
        return "text" if name in self.crm.mapping.account.attributes else None


# --- loading --------------------------------------------------------------------------------


def default_config_path() -> Path:
    """$CS_PIPELINE_CONFIG if set, else the bundled demo config."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[1] / "demo" / "cs_pipeline.yaml"


def load_config(path: str | os.PathLike[str] | None = None) -> PipelineConfig:
    """The validated config at `path` (default: CS_PIPELINE_CONFIG, else the bundled demo config); a bad
    file raises ConfigError naming the file and the key."""
    source = (Path(path) if path is not None else default_config_path()).expanduser().resolve()
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file ({exc.strerror})"]) from None
    try:
        data = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(source, [_yaml_problem(exc)]) from None
    return parse_config(data, source, raw=raw)


def parse_config(data: Any, source_path: str | os.PathLike[str], *, raw: bytes | None = None) -> PipelineConfig:
    """Validate already-parsed YAML; relative paths are taken from source_path's folder."""
    source = Path(source_path).expanduser().resolve()
    if data is None:
        raise ConfigError(source, ["the file is empty"])
    if not isinstance(data, Mapping):
        raise ConfigError(
            source, [f"the top level should be a mapping of sections (crm, landing, ...), got {_short(data)}"]
        )
    if "source_path" in data:
        raise ConfigError(source, ["source_path: unknown key (it is set from the file's location)"])
    try:
        cfg = PipelineConfig.model_validate(
            {**data, "source_path": source}, context={"cs_pipeline": _context_for(data, source.parent)}
        )
    except ValidationError as exc:
        raise ConfigError(source, [f"{_format_loc(e['loc'])}: {_describe(e)}" for e in exc.errors()]) from None
    if raw is None:
        raw = json.dumps(data, sort_keys=True, default=str).encode()
    cfg._sha256 = hashlib.sha256(raw).hexdigest()
    return cfg


def _context_for(data: Mapping[str, Any], base_dir: Path) -> _Context:
    """Rule names come from sibling sections; read them from the raw data, best effort
    (if those sections are malformed, their own errors are reported)."""

    def names(section: Any) -> set[str]:
        return {k for k in section if isinstance(k, str)} if isinstance(section, Mapping) else set()

    attrs: Any = data
    for key in ("crm", "mapping", "account", "attributes"):
        attrs = attrs.get(key) if isinstance(attrs, Mapping) else None
    custom = names(data.get("metrics"))
    kinds: dict[str, MetricKind] = {
        **{a: "text" for a in names(attrs)},
        **{c: "number" for c in custom},
        **BUILTIN_METRICS,  # last: a colliding name is an error anyway, keep the built-in kind
    }
    return _Context(base_dir=base_dir, kinds=kinds, custom=frozenset(custom))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = loader.construct_object(key_node)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"invalid YAML{where}: {problem}"


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue  # the message says it is the key that is wrong
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out or "(top level)"


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error in plain words (no pydantic URLs or jargon)."""
    kind, loc, value = error["type"], error["loc"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "cs_config":
        return str(error["msg"])
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return f"unknown key{_allowed_keys(loc)}"
    if kind == "literal_error":
        what = "status group" if loc and loc[-1] == "[key]" else "op" if loc and loc[-1] == "op" else "value"
        options = ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return f"{_short(value)} is not a valid {what} (use one of {options})"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{_short(value)} is not a whole number"
    if kind in ("float_parsing", "float_type"):
        return f"{_short(value)} is not a number"
    if kind == "string_type":
        return f"should be text, got {_short(value)}"
    if kind == "list_type":
        return f"should be a list, got {_short(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"should be a mapping of keys to values, got {_short(value)}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} item(s)"
    message = str(error["msg"]).replace("Input should be", "should be").removeprefix("Value error, ")
    return f"{message} (got {_short(value)})"


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    """' (allowed: ...; did you mean ...?)' for a misspelt key, found by walking the models."""
    tp: Any = PipelineConfig
    for part in loc[:-1]:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return ""
            tp = field.annotation
        elif get_origin(tp) in (list, dict):
            tp = get_args(tp)[-1]
        else:
            return ""
    tp = _unwrap(tp)
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return ""
    allowed = [name for name in tp.model_fields if name != "source_path"]
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    return f" (allowed: {', '.join(allowed)}" + (f"; did you mean {close[0]!r}?)" if close else ")")


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp
