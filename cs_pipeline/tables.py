"""The registry of the warehouse's tables, public (docs/data-model.md#public-tables) and internal: columns, types,
nullability, keys, published partition columns and a description per table and column.

Everything else derives from it: the DDL (`create_statements`, run by the migrations on a
new warehouse), the pandera schemas of the public tables (`cs_pipeline/schemas.py`), the
`dagster/column_schema` metadata (`warehouse.table_metadata`), the published layer's tables
and partition columns (`publish.PUBLISHED`) and the catalog comments (`comment_statements`).
The built-in metric columns come from `cs_pipeline/vocabulary.py`. Custom metric columns of
`account_metrics` (DOUBLE, added when configured) and the Salesforce mirror tables (one per
mirrored object, their columns from the config's field lists) are dynamic and not listed.

A change of shape here needs a schema version: a column or table with `since` = the next
version is added to existing warehouses by the migrations (`cs_pipeline/migrations.py`);
a table replaced by others moves to RETIRED with `until` = that version, and a column no longer
kept gets `until` = that version (the migrations drop them after the version's function has
moved their content); anything else (a type, a rename) needs a migration function there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.vocabulary import ROLLUP_METRICS, USAGE_METRICS, Metric


@dataclass(frozen=True)
class Column:
    """A column of a registered table."""

    name: str
    type: str  # DuckDB type as information_schema.columns spells it
    nullable: bool = True
    description: str = ""
    since: int = 1  # the schema version that added it
    until: int | None = None  # the schema version that dropped it

    def exists_at(self, version: int | None) -> bool:
        """Whether a warehouse at `version` (None: the newest) has the column."""
        if version is None:
            return self.until is None
        return self.since <= version and (self.until is None or version < self.until)

    def ddl(self) -> str:
        """The column's definition in a CREATE TABLE statement."""
        return f"{quote_identifier(self.name)} {self.type}{'' if self.nullable else ' NOT NULL'}"


@dataclass(frozen=True)
class Table:
    """A table of the warehouse: its columns, key, and the schema version each column came in."""

    name: str
    description: str
    columns: tuple[Column, ...]
    public: bool = False  # docs/data-model.md: names and types are a public interface; published for analysts
    key: tuple[str, ...] = ()  # the columns that identify a row (checked, not enforced)
    partition: tuple[str, ...] = ()  # the published layer's partition columns, in path order
    since: int = 1
    until: int | None = None  # the schema version that dropped it (RETIRED tables)
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns if c.exists_at(None)})
        for name in (*self.key, *self.partition):
            if name not in self._by_name:
                raise ValueError(f"table {self.name}: key or partition column {name!r} is not a column")
        for column in self.columns:
            if column.since > self.since and not column.nullable:
                # ALTER TABLE ADD COLUMN leaves the existing rows without a value
                raise ValueError(f"{self.name}.{column.name}: a column added by a migration must be nullable")

    def column(self, name: str) -> Column:
        """The column called `name` (of the newest version)."""
        return self._by_name[name]

    def has(self, name: str) -> bool:
        """Whether the table has a column called `name`."""
        return name in self._by_name

    def ordered(self, version: int | None = None) -> list[Column]:
        """The columns a warehouse at `version` (None: the newest) has, in table order: a
        column added by a later version comes after those it found (ALTER TABLE ADD COLUMN
        appends), so a new warehouse and an upgraded one have one order."""
        kept = [c for c in self.columns if c.exists_at(version)]
        return sorted(kept, key=lambda c: c.since)  # stable: registry order within a version

    def names(self, *, run_id: bool = False) -> list[str]:
        """The column names in order, run_id left out unless asked for."""
        return [c.name for c in self.ordered() if run_id or c.name != "run_id"]

    def exists_at(self, version: int | None) -> bool:
        """Whether a warehouse at `version` (None: the newest) has the table."""
        if version is None:
            return self.until is None
        return self.since <= version and (self.until is None or version < self.until)

    @property
    def versioned(self) -> bool:
        """Whether the table keeps snapshots as versions (valid_from, valid_to, occurrence)."""
        return self.has("valid_from")

    def payload(self) -> list[str]:
        """A versioned table's content columns: every column but the version columns and run_id."""
        return [c.name for c in self.ordered() if c.name not in (*VERSION_COLUMN_NAMES, "run_id")]

    def create_statement(self, version: int | None = None) -> str:
        """The CREATE TABLE statement of the table as of schema `version` (default: the latest)."""
        columns = ",\n    ".join(c.ddl() for c in self.ordered(version))
        return f"CREATE TABLE {quote_identifier(self.name)} (\n    {columns}\n);"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- columns shared by several tables ----------------------------------------------------

RUN_ID = Column("run_id", "VARCHAR", False, "the Dagster run that last wrote the row")
SNAPSHOT_DATE = Column("snapshot_date", "DATE", False, "the CRM snapshot's date (the day it was taken)")

# The schema version that stores the CRM snapshots as versions instead of one copy per day.
CRM_VERSIONS = 5
# The schema version that records what each snapshot date was made from (snapshot_dates.fingerprint),
# so that a day whose CRM did not change is not read again (docs/data-model.md#snapshot-storage).
SNAPSHOT_FINGERPRINTS = 6
# A versioned table holds each snapshot date's rows as versions, the way dbt snapshots do: a row
# is in the snapshot of every snapshot date D with valid_from <= D < valid_to
# (docs/data-model.md#snapshot-storage).
VERSION_COLUMNS = (
    Column("valid_from", "DATE", False, "the first snapshot date the row is in"),
    Column("valid_to", "DATE", True, "the first later snapshot date it is no longer in; null: still in the newest"),
    Column(
        "occurrence", "INTEGER", False, "0, or n for the (n+1)th identical row of a snapshot (a duplicated export line)"
    ),
)
VERSION_COLUMN_NAMES = tuple(c.name for c in VERSION_COLUMNS)
# The schema version that adds usage_event_keys, the 64-bit keys of the stored event_ids
# (cs_pipeline/event_keys.py).
EVENT_KEYS = 7
# The schema version that keeps each account-day's modules and actions as bit sets
# (usage_account_days.module_bits / action_bits, numbered by usage_value_ids): the distinct counts
# of a 30-day window become a bitwise OR per account (docs/data-model.md#bit-sets).
USAGE_BIT_SETS = 8
DAY = Column("date", "DATE", False, "the day (UTC) the row is for")
ACCOUNT_ID = Column("account_id", "VARCHAR", False, "the account (External_Id__c, else the Salesforce Id)")


def _col(name: str, type_: str, nullable: bool, description: str) -> Column:
    return Column(name, type_, nullable, description)


def _columns(*specs: tuple[str, str, bool, str] | Column) -> tuple[Column, ...]:
    return tuple(spec if isinstance(spec, Column) else _col(*spec) for spec in specs)


def _nullable(columns: Iterable[Column]) -> tuple[Column, ...]:
    return tuple(replace(c, nullable=True) for c in columns)


def _metric_columns(metrics: Iterable[Metric]) -> tuple[Column, ...]:
    return tuple(Column(m.name, m.type, m.nullable, m.description, m.since) for m in metrics)


ACCOUNT_DIMENSION = _columns(
    ACCOUNT_ID,
    ("name", "VARCHAR", True, "the account's name; a product account's is '<account name> - <product name>'"),
    ("parent_id", "VARCHAR", True, "the parent account; null for a root"),
    ("root_id", "VARCHAR", False, "the root of the account's hierarchy (itself for a root)"),
    ("depth", "INTEGER", False, "0 for a root, its parent's depth + 1 otherwise"),
    ("path", "VARCHAR[]", False, "the account IDs from the root to the account"),
    ("account_type", "VARCHAR", False, "account, product (a virtual account per product holding) or unknown"),
    ("product_key", "VARCHAR", True, "a product account's product code"),
    ("status", "VARCHAR", True, "the CRM status as given"),
    ("status_group", "VARCHAR", False, "Free, Paying, Canceled (from the status catalog) or Unknown"),
    ("create_date", "DATE", True, "customer since (Customer_Since__c, else CreatedDate)"),
    ("contract_value", "DOUBLE", True, "the contract value"),
    ("renewal_date", "DATE", True, "the next renewal date"),
    ("licenses", "DOUBLE", True, "the licensed seats"),
    ("attributes", "MAP(VARCHAR, VARCHAR)", True, "the mapped CRM attributes (crm.mapping.account.attributes)"),
)
_DIMENSION = {c.name: c for c in ACCOUNT_DIMENSION}

_USAGE_EVENT_COLUMNS = _columns(
    ("event_id", "VARCHAR", False, "the event's ID, stored once (its earliest delivery)"),
    ("ts", "TIMESTAMP WITH TIME ZONE", False, "when the event happened"),
    ("event_date", "DATE", False, "the UTC date of ts"),
    ("account_id", "VARCHAR", False, "the account the event belongs to"),
    ("user_id", "VARCHAR", True, "the user, if any"),
    ("module", "VARCHAR", True, "the product module, if any"),
    ("action", "VARCHAR", False, "what the user did"),
    ("partition_date", "DATE", False, "the delivery day: the landing folder date=D it came in"),
    ("source_file", "VARCHAR", False, "the file under the delivery's folder"),
    ("source_row", "BIGINT", False, "the 1-based data row (CSV, Parquet) or line (JSON Lines) in source_file"),
    RUN_ID,
)
_ISSUE_COLUMNS = _columns(
    ("account_id", "VARCHAR", True, "the account concerned, when it has an ID"),
    ("issue", "VARCHAR", False, "the kind of problem (docs/data-model.md#hierarchy-issues)"),
    ("detail", "VARCHAR", True, "what was found and what was done about it"),
)
_RAW_COMMON = _columns(
    ("salesforce_id", "VARCHAR", True, "the Salesforce Id"),
    ("system_modstamp", "VARCHAR", True, "SystemModstamp as given"),
)


_STATUS = {
    "account_type": _DIMENSION["account_type"],
    "status": _DIMENSION["status"],
    "status_group": _DIMENSION["status_group"],
}

# every health-lab table says which backtest wrote it (docs/health-lab.md#tables)
_BACKTEST_RANGE = _columns(
    ("start", "DATE", False, "the backtest's first day (D1)"),
    ("end", "DATE", False, "the backtest's last day (D2)"),
    ("horizon", "INTEGER", False, "H: a churn within H days after a day makes it positive"),
)


def _backtest_figures(days: str, description: str) -> tuple[Column, ...]:
    """`days` (described so), positive_days, churn_rate and lift: the figures of a backtest row."""
    return _columns(
        (days, "BIGINT", False, description),
        ("positive_days", "BIGINT", False, "of those, the days followed by a churn within the horizon"),
        ("churn_rate", "DOUBLE", True, f"positive_days / {days}; null without days"),
        ("lift", "DOUBLE", True, "churn_rate / the profile's churn rate over all its days; null where undefined"),
    )


_BACKTEST_AUDIT = _columns(
    ("config_sha256", "VARCHAR", False, "sha256 of the config whose health was tested"),
    RUN_ID,
)

# The tables version CRM_VERSIONS replaced: one full copy of the CRM per snapshot date.
_RAW_ACCOUNTS = Table(
    "crm_accounts_raw",
    "CRM Account records as the source held them on snapshot_date, mapped to canonical names, text as given",
    _columns(
        SNAPSHOT_DATE,
        _RAW_COMMON[0],
        ("account_id", "VARCHAR", True, "External_Id__c, else Id, as given"),
        ("name", "VARCHAR", True, "Name"),
        ("parent_salesforce_id", "VARCHAR", True, "ParentId"),
        ("status", "VARCHAR", True, "Status__c"),
        ("create_date", "VARCHAR", True, "Customer_Since__c, else CreatedDate, as text"),
        ("contract_value", "VARCHAR", True, "Contract_Value__c, as text"),
        ("renewal_date", "VARCHAR", True, "Renewal_Date__c, as text"),
        ("licenses", "VARCHAR", True, "Licenses__c, as text"),
        _DIMENSION["attributes"],
        _RAW_COMMON[1],
        RUN_ID,
    ),
    until=CRM_VERSIONS,
)

_RAW_ASSETS = Table(
    "crm_assets_raw",
    "CRM Asset records (product holdings) of the snapshot, mapped to canonical names, text as given",
    _columns(
        SNAPSHOT_DATE,
        _RAW_COMMON[0],
        ("account_salesforce_id", "VARCHAR", True, "AccountId: the holder's Salesforce Id"),
        ("product_code", "VARCHAR", True, "Product2.ProductCode"),
        ("product_name", "VARCHAR", True, "Product2.Name"),
        ("status", "VARCHAR", True, "Status"),
        ("licenses", "VARCHAR", True, "Quantity, as text"),
        ("contract_value", "VARCHAR", True, "Price, as text"),
        ("create_date", "VARCHAR", True, "InstallDate, as text"),
        _RAW_COMMON[1],
        RUN_ID,
    ),
    until=CRM_VERSIONS,
)

_RAW_CONTACTS = Table(
    "crm_contacts_raw",
    "CRM Contact records of the snapshot, mapped to canonical names, text as given",
    _columns(
        SNAPSHOT_DATE,
        _RAW_COMMON[0],
        ("account_salesforce_id", "VARCHAR", True, "AccountId"),
        ("user_id", "VARCHAR", True, "Email"),
        ("name", "VARCHAR", True, "Name"),
        _RAW_COMMON[1],
        RUN_ID,
    ),
    until=CRM_VERSIONS,
)

_ACCOUNT_SNAPSHOTS = Table(
    "account_snapshots",
    "The resolved account dimension of every CRM snapshot date; accounts is the newest one",
    _columns(SNAPSHOT_DATE, *ACCOUNT_DIMENSION, RUN_ID),
    key=("snapshot_date", "account_id"),
    until=CRM_VERSIONS,
)

_HIERARCHY_ISSUE_SNAPSHOTS = Table(
    "hierarchy_issue_snapshots",
    "The hierarchy issues of every CRM snapshot date; hierarchy_issues is the newest one's",
    _columns(SNAPSHOT_DATE, *_ISSUE_COLUMNS, RUN_ID),
    until=CRM_VERSIONS,
)

TABLE_LIST: tuple[Table, ...] = (
    *(
        Table(
            f"{family}_versions",
            f"The CRM snapshots' {family.removeprefix('crm_')} records as versions (valid_from, valid_to): "
            f"each snapshot date's rows are those in force on it ({retired.name} before schema version {CRM_VERSIONS})",
            (*VERSION_COLUMNS, *(c for c in retired.columns if c.name != "snapshot_date")),
            since=CRM_VERSIONS,
        )
        for family, retired in (
            ("crm_account", _RAW_ACCOUNTS), ("crm_asset", _RAW_ASSETS), ("crm_contact", _RAW_CONTACTS)
        )
    ),
    Table(
        "account_versions",
        "The resolved account dimension of every snapshot date as versions (valid_from, valid_to); "
        "accounts is the newest one's",
        _columns(*VERSION_COLUMNS, *ACCOUNT_DIMENSION, RUN_ID),
        key=("valid_from", "account_id"),
        since=CRM_VERSIONS,
    ),
    Table(
        "hierarchy_issue_versions",
        "The hierarchy issues of every snapshot date as versions (valid_from, valid_to); "
        "hierarchy_issues is the newest one's",
        _columns(*VERSION_COLUMNS, *_ISSUE_COLUMNS, RUN_ID),
        since=CRM_VERSIONS,
    ),
    Table(
        "snapshot_dates",
        "The snapshot dates each asset stored: crm_snapshot for the crm_*_versions tables, accounts "
        "for account_versions and hierarchy_issue_versions (a date that changed nothing adds no version)",
        _columns(
            ("asset", "VARCHAR", False, "crm_snapshot or accounts"),
            SNAPSHOT_DATE,
            RUN_ID,
            Column(
                "fingerprint",
                "VARCHAR",
                True,
                "a digest of what the date's snapshot was made from (export files, config, code): a later date "
                "with the same one holds the same rows; null when not known (never matched)",
                since=SNAPSHOT_FINGERPRINTS,
            ),
        ),
        key=("asset", "snapshot_date"),
        since=CRM_VERSIONS,
    ),
    Table(
        "user_day_changes",
        "The event days added to and removed from usage_user_days per account and user since users "
        "was last refreshed: what the users asset applies (docs/data-model.md#users)",
        _columns(
            ACCOUNT_ID,
            ("user_id", "VARCHAR", False, "the user"),
            ("added_first", "DATE", True, "the earliest event day added"),
            ("added_last", "DATE", True, "the latest event day added"),
            ("removed_first", "DATE", True, "the earliest event day removed"),
            ("removed_last", "DATE", True, "the latest event day removed"),
        ),
        since=CRM_VERSIONS,
    ),
    Table(
        "user_contacts",
        "The contacts of the newest CRM snapshot as users was last refreshed from, one per account and user",
        _columns(
            ACCOUNT_ID,
            ("user_id", "VARCHAR", False, "the contact's e-mail, lower-cased"),
            ("name", "VARCHAR", True, "the contact's name (the latest-modified contact's)"),
        ),
        key=("account_id", "user_id"),
        since=CRM_VERSIONS,
    ),
    Table(
        "accounts",
        "Every account of the newest CRM snapshot (virtual product accounts included) and every "
        "account known only from events, with its hierarchy and status group",
        _columns(*ACCOUNT_DIMENSION, RUN_ID),
        public=True,
        key=("account_id",),
    ),
    Table(
        "hierarchy_issues",
        "Every broken CRM record of the newest snapshot, cut and reported rather than repaired",
        _columns(*_ISSUE_COLUMNS, RUN_ID),
        public=True,
    ),
    Table(
        "users",
        "Contacts of the newest snapshot and every user seen in events",
        _columns(
            ("account_id", "VARCHAR", False, "the account the user belongs to"),
            ("user_id", "VARCHAR", False, "the user (a contact's e-mail, or the events' user_id)"),
            ("name", "VARCHAR", True, "the contact's name"),
            ("first_seen", "DATE", True, "the first event day; null until an event"),
            ("last_seen", "DATE", True, "the last event day; null until an event"),
            RUN_ID,
        ),
        public=True,
        key=("account_id", "user_id"),
    ),
    Table(
        "usage_events",
        "Product-usage events, each event_id once (its earliest delivery)",
        _USAGE_EVENT_COLUMNS,
        public=True,
        key=("event_id",),
        partition=("partition_date",),
    ),
    Table(
        "usage_event_copies",
        "Later deliveries of a stored event_id, kept so that the next copy can take over when the "
        "earlier delivery is re-delivered without it",
        _nullable(_USAGE_EVENT_COLUMNS),
    ),
    Table(
        "usage_event_keys",
        "One 64-bit key per usage_events row, DuckDB's hash(event_id), by delivery day: the ingest "
        "finds earlier copies of a delivery's event_ids among the keys, then compares the event_ids "
        "only where a key matched (cs_pipeline/event_keys.py)",
        _columns(
            _USAGE_EVENT_COLUMNS[7],
            ("event_key", "UBIGINT", False, "hash(event_id) of a usage_events row of that delivery day"),
        ),
        since=EVENT_KEYS,
    ),
    Table(
        "usage_event_key_canary",
        "Fixed strings and the key DuckDB's hash() gave them when usage_event_keys was built: a "
        "read-write open rebuilds the keys when hash() now gives another (a DuckDB upgrade)",
        _columns(
            ("canary", "VARCHAR", False, "a fixed string"),
            ("event_key", "UBIGINT", False, "its hash() when the keys were built"),
        ),
        since=EVENT_KEYS,
    ),
    Table(
        "rejected_events",
        "Rows of the deliveries that were not stored as events, with the reason",
        _columns(
            _USAGE_EVENT_COLUMNS[7],
            _USAGE_EVENT_COLUMNS[8],
            ("source_row", "BIGINT", True, "the 1-based data row or line in source_file, when known"),
            ("reason", "VARCHAR", False, "why the row was rejected"),
            ("raw", "JSON", True, "the row as delivered (the normalised event for module_limit / action_limit)"),
            RUN_ID,
        ),
        public=True,
        partition=("partition_date",),
    ),
    Table(
        "usage_vocabulary",
        "Distinct modules and actions each delivery day brought, with the earliest ts seen: the "
        "per-tenant limits admit the first ones by (first delivery day, ts)",
        _columns(
            _USAGE_EVENT_COLUMNS[7],
            ("kind", "VARCHAR", False, "module or action"),
            ("value", "VARCHAR", False, "the module or action"),
            ("first_ts", "TIMESTAMP WITH TIME ZONE", False, "its earliest ts in the delivery"),
        ),
    ),
    Table(
        "usage_account_days",
        "Daily aggregate of usage_events per delivery day, event day and account (events "
        "without a user included): what the metrics read",
        _columns(
            _USAGE_EVENT_COLUMNS[7],
            _USAGE_EVENT_COLUMNS[2],
            ACCOUNT_ID,
            ("events", "BIGINT", False, "events"),
            Column("modules", "VARCHAR[]", False, "the distinct modules", until=USAGE_BIT_SETS),
            ("action_events", "MAP(VARCHAR, BIGINT)", False, "events per action"),
            RUN_ID,
            Column(
                "module_bits",
                "BIT",
                True,
                "the distinct modules as a bit set: bit n from the right is usage_value_ids' module n; "
                "null: no module",
                since=USAGE_BIT_SETS,
            ),
            Column(
                "action_bits",
                "BIT",
                True,
                "the distinct actions as a bit set: bit n from the right is usage_value_ids' action n",
                since=USAGE_BIT_SETS,
            ),
        ),
    ),
    Table(
        "usage_value_ids",
        "A number for every module and action the daily aggregates have held, given once and kept: "
        "its bit in usage_account_days.module_bits / action_bits (docs/data-model.md#bit-sets)",
        _columns(
            ("kind", "VARCHAR", False, "module or action"),
            ("value", "VARCHAR", False, "the module or action"),
            ("id", "INTEGER", False, "1, 2, 3... per kind, in the order first aggregated"),
        ),
        key=("kind", "value"),
        since=USAGE_BIT_SETS,
    ),
    Table(
        "usage_user_days",
        "Daily aggregate of usage_events per delivery day, event day, account and (non-null) user",
        _columns(
            _USAGE_EVENT_COLUMNS[7],
            _USAGE_EVENT_COLUMNS[2],
            ACCOUNT_ID,
            ("user_id", "VARCHAR", False, "the user"),
            ("events", "BIGINT", False, "events"),
            ("modules", "VARCHAR[]", False, "the distinct modules the user touched"),
            RUN_ID,
        ),
    ),
    Table(
        "account_metrics",
        "Usage metrics per day and account, with the account columns rules may use: "
        "one row holds every input of that day's health. Custom metrics are DOUBLE columns "
        "added when configured",
        _columns(
            DAY,
            ACCOUNT_ID,
            ("snapshot_date", "DATE", True, "the CRM snapshot the account columns come from"),
            *(_DIMENSION[name] for name in ("account_type", "status", "status_group", "create_date", "renewal_date")),
            *(_DIMENSION[name] for name in ("licenses", "contract_value", "attributes")),
            *_metric_columns(USAGE_METRICS),
            RUN_ID,
        ),
        public=True,
        key=("date", "account_id"),
        partition=("date",),
    ),
    Table(
        "account_health",
        "Health per day and account, by the first profile that matches the account",
        _columns(
            DAY,
            ACCOUNT_ID,
            ("profile", "VARCHAR", False, "the profile that scored the account"),
            ("health", "VARCHAR", False, "Good, Average, Poor or No value"),
            ("health_score", "INTEGER", True, "0-100 for a profile with dimensions; null for a scorecard"),
            ("dimension_scores", "MAP(VARCHAR, INTEGER)", False, "dimension -> score (empty for a scorecard)"),
            ("reasons", "VARCHAR[]", False, "the rules that decided the row, with the account's values"),
            ("previous_health", "VARCHAR", True, "the account's health the day before (any profile)"),
            RUN_ID,
        ),
        public=True,
        key=("date", "profile", "account_id"),
        partition=("date", "profile"),
    ),
    Table(
        "salesforce_sync",
        "One bookmark per mirrored Salesforce object (crm.source: salesforce), moved in the "
        "transaction that updates its mirror table",
        _columns(
            ("object", "VARCHAR", False, "the Salesforce object"),
            ("fields", "VARCHAR[]", False, "the field list the mirror holds: another list means a full refresh"),
            ("bookmark", "TIMESTAMP WITH TIME ZONE", True, "the newest SystemModstamp mirrored"),
            ("synced_at", "TIMESTAMP WITH TIME ZONE", False, "when the sync ran"),
            ("mode", "VARCHAR", False, "full or incremental"),
            RUN_ID,
        ),
        key=("object",),
    ),
    Table(
        "status_history",
        "The status of every account on each CRM snapshot date",
        _columns(DAY, ACCOUNT_ID, *_STATUS.values(), RUN_ID),
        public=True,
        key=("date", "account_id"),
        partition=("date",),
    ),
    Table(
        "status_changes",
        "Each account's status change since the previous snapshot date, by kind",
        _columns(
            DAY,
            ACCOUNT_ID,
            _STATUS["account_type"],
            ("kind", "VARCHAR", False, "new, conversion, churn, reactivation, downgrade, plan_change or unclassified"),
            ("previous_date", "DATE", True, "the previous snapshot date"),
            ("previous_status", "VARCHAR", True, "the status then"),
            ("previous_status_group", "VARCHAR", True, "the status group then"),
            _STATUS["status"],
            _STATUS["status_group"],
            RUN_ID,
        ),
        public=True,
        key=("date", "account_id"),
        partition=("date",),
    ),
    Table(
        "account_rollups",
        "Roll-ups over the subtree of every account with descendants: the metrics "
        "before health, the descendants' health after it",
        _columns(
            DAY,
            ACCOUNT_ID,
            ("descendants", "BIGINT", False, "accounts below it"),
            *_metric_columns(ROLLUP_METRICS),
            ("descendants_good", "BIGINT", True, "descendants in Good health; null until subaccount_health runs"),
            ("descendants_average", "BIGINT", True, "descendants in Average health"),
            ("descendants_poor", "BIGINT", True, "descendants in Poor health"),
            ("subaccount_health", "VARCHAR", True, "the descendants' health (rollups.subaccount_health)"),
            RUN_ID,
        ),
        public=True,
        key=("date", "account_id"),
        partition=("date",),
    ),
    Table(
        "retention_log",
        "One row per purge of an inactive Free account's events",
        _columns(
            ACCOUNT_ID,
            ("purged_on", "DATE", False, "the day whose run purged"),
            ("purged_through", "DATE", False, "events dated on or before it were purged; later ones are skipped"),
            ("rows", "BIGINT", False, "events purged"),
            RUN_ID,
        ),
        public=True,
    ),
    Table(
        "health_backtest",
        "The health lab's backtest (docs/health-lab.md): per profile ('*': all) and label, the scored "
        "observable days, those followed by a churn within the horizon, their churn rate and lift",
        _columns(
            *_BACKTEST_RANGE,
            ("profile", "VARCHAR", False, "the profile that wrote the health rows; '*' for all profiles"),
            ("health", "VARCHAR", False, "Good, Average or Poor"),
            *_backtest_figures("days", "scored observable days (account x day) with this label"),
            *_BACKTEST_AUDIT,
        ),
        public=True,
        key=("start", "end", "horizon", "profile", "health"),
        since=4,
    ),
    Table(
        "health_backtest_churns",
        "The health lab's backtest: each churn with a scored day in its lead window, whether the "
        "account was Poor in that window and how long before the churn it first was",
        _columns(
            *_BACKTEST_RANGE,
            ACCOUNT_ID,
            ("churn_date", "DATE", False, "the date of the status_changes row of kind churn"),
            ("flagged", "BOOLEAN", False, "Poor on at least one day of the lead window"),
            ("lead_days", "INTEGER", True, "churn_date - the first Poor day of the lead window; null when not flagged"),
            *_BACKTEST_AUDIT,
        ),
        public=True,
        key=("start", "end", "horizon", "account_id", "churn_date"),
        since=4,
    ),
    Table(
        "health_backtest_rules",
        "The health lab's backtest per rule of a scorecard profile and per metric of a dimensional "
        "one: the scored observable days it was against the account, and their churn rate and lift",
        _columns(
            *_BACKTEST_RANGE,
            ("profile", "VARCHAR", False, "the profile"),
            ("rule", "VARCHAR", False, "'<good|poor>: <metric> <op> <value as JSON>', or '<dimension>/<metric>'"),
            *_backtest_figures(
                "against_days",
                "days a poor rule held, a good rule was evaluated and failed, or the metric was rated Poor",
            ),
            *_BACKTEST_AUDIT,
        ),
        public=True,
        key=("start", "end", "horizon", "profile", "rule"),
        since=4,
    ),
    Table(
        "schema_version",
        "The warehouse's schema version: one row per migration applied (cs_pipeline/migrations.py)",
        _columns(
            ("version", "INTEGER", False, "the schema version reached"),
            ("applied_at", "TIMESTAMP WITH TIME ZONE", False, "when"),
            ("description", "VARCHAR", False, "what the migration did"),
        ),
        key=("version",),
    ),
    Table(
        "publish_queue",
        "Partitions of the published layer changed since they were last published (publish.py)",
        _columns(
            ("table_name", "VARCHAR", False, "the published table"),
            ("partition", "VARCHAR", False, "the hive path ('date=2025-11-01/profile=default'; '' unpartitioned)"),
        ),
        since=2,  # the published layer came after the code before versions
    ),
)  # fmt: skip
RETIRED: tuple[Table, ...] = (
    _RAW_ACCOUNTS, _RAW_ASSETS, _RAW_CONTACTS, _ACCOUNT_SNAPSHOTS, _HIERARCHY_ISSUE_SNAPSHOTS
)  # fmt: skip
TABLES: dict[str, Table] = {t.name: t for t in TABLE_LIST}
PUBLIC_TABLES: dict[str, Table] = {t.name: t for t in TABLE_LIST if t.public}


def tables_at(version: int | None = None) -> list[Table]:
    """Every table a warehouse at `version` has (None: the newest), retired ones included."""
    return [t for t in (*TABLE_LIST, *RETIRED) if t.exists_at(version)]


def create_statements(version: int | None = None) -> str:
    """CREATE TABLE for every table a warehouse at `version` has (None: the newest)."""
    return "\n".join(t.create_statement(version) for t in tables_at(version))


def comment_statements(version: int | None = None) -> str:
    """The registry's descriptions as catalog comments (duckdb_tables(), duckdb_columns()), for
    the tables and columns a warehouse at `version` (None: the newest) has."""
    statements = []
    for table in tables_at(version):
        statements.append(f"COMMENT ON TABLE {quote_identifier(table.name)} IS {_literal(table.description)};")
        statements += [
            f"COMMENT ON COLUMN {quote_identifier(table.name)}.{quote_identifier(c.name)} IS {_literal(c.description)};"
            for c in table.ordered(version)
            if c.description
        ]
    return "\n".join(statements)
