"""Synthetic tenant generator for the demo, the tests and the benchmarks.

It writes what a real tenant delivers (docs/data-model.md#crm-export-files and
#usage-events-landing-zone):

* ``<out>/crm/date=YYYY-MM-DD/Account.csv``, ``Asset.csv``, ``Contact.csv``: dated Salesforce
  exports (one on the window's first day, then every ``crm_export_every`` days, and one on its
  last day), each a full snapshot of the CRM as it was that day, Salesforce field names as
  headers, relationship fields flattened (``Product2.ProductCode``);
* ``<out>/landing/usage/date=YYYY-MM-DD/events-NNN.<fmt>``: each day's usage deliveries,
  the files rotating through the requested formats.

The exports tell a story worth backtesting: over the window about 12 % of the accounts change
status (churn, conversion, plan change, downgrade, reactivation, an uncatalogued status
migrated into the catalog) and accounts created meanwhile appear in later exports. The usage
of most churners declines over the weeks before they cancel, with noise: a quarter of them
look healthy to the end, and a few healthy accounts have a seasonal dip.

The data is untidy on purpose, like real inputs: mixed-case statuses and e-mails, padded
IDs, missing optional fields, timestamps with UTC offsets, late events and (``bad_rows``)
rows the pipeline must reject or deduplicate. Accounts follow usage archetypes (daily,
weekly, monthly, dormant, churned, onboarding) so that every health outcome occurs.

All work is vectorised with numpy and polars; Python loops only run over days, files and
short constant lists. A seed gives the same bytes on every run (gzip members carry no
timestamp).
"""

from __future__ import annotations

import gzip
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum
from pathlib import Path

import numpy as np
import polars as pl

__all__ = [
    "ACCOUNT_COLUMNS",
    "ASSET_COLUMNS",
    "CONTACT_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_FORMATS",
    "GHOST_ACCOUNT_IDS",
    "MODULE_ACTIONS",
    "PRODUCTS",
    "STATUS_CATALOG",
    "TenantSummary",
    "generate_tenant",
]

EVENT_FORMATS: tuple[str, ...] = ("parquet", "jsonl", "jsonl.gz", "csv")
EVENT_COLUMNS: tuple[str, ...] = ("event_id", "ts", "account_id", "user_id", "module", "action")

ACCOUNT_COLUMNS: tuple[str, ...] = (
    "Id", "External_Id__c", "Name", "ParentId", "Status__c", "Customer_Since__c",
    "CreatedDate", "Contract_Value__c", "Renewal_Date__c", "Licenses__c", "CSM_Risk__c",
    "Segment__c", "SystemModstamp", "IsDeleted",
)  # fmt: skip
ASSET_COLUMNS: tuple[str, ...] = (
    "Id", "AccountId", "Product2.ProductCode", "Product2.Name", "Status", "Quantity",
    "Price", "InstallDate", "SystemModstamp", "IsDeleted",
)  # fmt: skip
CONTACT_COLUMNS: tuple[str, ...] = ("Id", "AccountId", "Email", "Name", "SystemModstamp", "IsDeleted")

PRODUCTS: tuple[tuple[str, str], ...] = (
    ("Widget1", "Widget 1"),
    ("Widget2", "Widget 2"),
    ("Analytics", "Analytics"),
)
PRODUCT_SEPARATOR = "_"
GHOST_ACCOUNT_IDS: tuple[str, ...] = tuple(f"ghost-{i:02d}" for i in range(1, 6))

# Module -> (action, relative frequency). Names follow the bundled config's custom metrics
# ('Send invoice', the Clients module) and the escalations SQL metric ('Escalate ticket').
MODULE_ACTIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "Invoicing": (("Create invoice", 8), ("Send invoice", 10), ("Void invoice", 1), ("Download invoice PDF", 3)),
    "Billing": (("Add payment method", 1), ("Update billing details", 1), ("Pay bill", 3)),
    "Reporting": (("Open report", 8), ("Export report", 3), ("Schedule report", 1)),
    "Clients": (("View client", 8), ("Add client", 3), ("Edit client", 4), ("Import clients", 0.5)),
    "Settings": (("Invite user", 1), ("Change password", 0.5), ("Update profile", 1)),
    "Support": (("Search help center", 2), ("Open ticket", 1), ("Close ticket", 0.8), ("Escalate ticket", 0.2)),
}
# The module each product's own events favour (index into the modules, modulo their number).
_PRODUCT_MODULE = np.array([0, 1, 2])

STATUS_CATALOG: tuple[str, ...] = ("Trial", "Internal-use", "Personal", "Pro", "Enterprise", "Cancelled")
_CANCELLED = STATUS_CATALOG.index("Cancelled")
# Catalog values, then a missing status and an uncatalogued one (both group Unknown).
_STATUS_VALUES: tuple[str, ...] = (*STATUS_CATALOG, "", "Legacy")
_STATUS_WEIGHTS = (0.10, 0.03, 0.14, 0.33, 0.18, 0.17, 0.025, 0.025)
_TRIAL, _PERSONAL, _PRO, _LEGACY = 0, 2, 3, 7
_FREE, _PAYING, _UNKNOWN = (0, 1), (2, 3, 4), (6, 7)

# The story of the window: the share of accounts per kind of status change (about 12 % in all;
# at least one of each from 48 accounts on), the statuses each kind changes from (others are
# given one of them) and the status it is given when none fits.
_CHANGE_KINDS: tuple[str, ...] = ("churn", "conversion", "plan_change", "downgrade", "reactivation", "unclassified")
_CHANGE_SHARES = (0.04, 0.03, 0.02, 0.01, 0.01, 0.01)
_CHANGE_FROM = ((*_FREE, *_PAYING), (_TRIAL,), _PAYING, _PAYING, (_CANCELLED,), _UNKNOWN)
_CHANGE_FORCED = (_PRO, _TRIAL, _PERSONAL, _PRO, _CANCELLED, _LEGACY)
_CHURN, _REACTIVATION = _CHANGE_KINDS.index("churn"), _CHANGE_KINDS.index("reactivation")
_CHURNER_ARCHETYPES = (0.45, 0.35, 0.10, 0.10)  # DAILY, WEEKLY, MONTHLY, DORMANT
_SURPRISE_CHURN = 0.25  # churners whose usage does not decline first
_FADE_DAYS = (14, 36)  # the others' decline lasts this many days (low, high + 1) ...
_FADE_FLOOR = 0.05  # ... down to this share of their usual activity
_DIP_SHARE, _DIP_DAYS, _DIP_LEVEL = 0.06, (10, 22), 0.15  # healthy accounts with a seasonal dip

SEGMENTS: tuple[str, ...] = ("SMB", "Mid-Market", "Enterprise")
_SEGMENT_WEIGHTS = (0.50, 0.35, 0.15)
_SEGMENT_VOLUME = np.array([1.0, 2.0, 4.0])  # bigger customers send more events
_SEGMENT_CONTRACT = np.array([3_000.0, 20_000.0, 120_000.0])
_SEGMENT_LICENSES = np.array([[1, 20], [10, 200], [50, 2_000]])
_SEGMENT_CONTACTS = np.array([2.0, 4.0, 8.0])

CSM_RISKS: tuple[str, ...] = ("", "0 - NO RISK", "1 - MINOR", "2 - MAJOR", "3 - HIGH", "4 - CRITICAL")
_CSM_RISK_WEIGHTS = (0.40, 0.30, 0.14, 0.08, 0.05, 0.03)

_ASSET_STATUSES: tuple[str, ...] = ("", "Pro", "Enterprise", "Trial", "Cancelled")
_ASSET_STATUS_WEIGHTS = (0.75, 0.10, 0.06, 0.05, 0.04)

_COMPANY_WORDS: tuple[str, ...] = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Soylent",
    "Tyrell", "Cyberdyne", "Aperture", "Vandelay", "Dunder", "Oscorp", "Monarch", "Sterling",
    "Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Proseware", "Adatum",
    "Vehement", "Massive", "Gekko", "Nakatomi", "Virtucon", "Zorg", "Bluth", "Krusty",
)  # fmt: skip
_COMPANY_SUFFIXES: tuple[str, ...] = (
    "Inc", "LLC", "Ltd", "GmbH", "Group", "Holdings", "Labs", "Systems", "Partners", "Co",
)  # fmt: skip
_CITIES: tuple[str, ...] = (
    "Boston", "London", "Berlin", "Paris", "Madrid", "Austin", "Denver", "Toronto", "Sydney",
    "Tokyo", "Dublin", "Lisbon", "Oslo", "Chicago", "Seattle", "Singapore",
)  # fmt: skip
_FIRST_NAMES: tuple[str, ...] = (
    "Anna", "Ben", "Carla", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas",
    "Kira", "Liam", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sam", "Tara",
    "Umar", "Vera", "Will", "Xenia", "Yusuf", "Zoe",
)  # fmt: skip
_LAST_NAMES: tuple[str, ...] = (
    "Smith", "Garcia", "Muller", "Rossi", "Dubois", "Silva", "Kowalski", "Nguyen", "Khan",
    "Tanaka", "Brown", "Novak", "Jensen", "Moreau", "Fischer", "Lopez", "Ivanova", "Cohen",
    "Okafor", "Larsen",
)  # fmt: skip

# Events: volume by weekday, timestamp spellings, shares of special rows, file size.
_WEEKDAY_VOLUME, _WEEKEND_VOLUME = 1.2, 0.5  # 5 x 1.2 + 2 x 0.5 = 7: a week averages events_per_day
_TS_OFFSETS_MIN = np.array([120, -300, 330, -480, 60, 540])  # +02:00, -05:00, +05:30, ...
_TS_STYLE_WEIGHTS = (0.60, 0.30, 0.10)  # 'Z', no offset (UTC), explicit offset
_LATE_SHARE = 0.003
_BAD_SHARE = 0.002
_REDELIVERY_SHARE = 0.0005
_ROWS_PER_FILE = 500_000
_MS_PER_DAY = 86_400_000
_EPOCH = date(1970, 1, 1)
_NEVER = np.iinfo(np.int64).max // 2  # an epoch day later than any window
_ALWAYS = -_NEVER

_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_SF_CHECKSUM_CHARS = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)


class _Archetype(IntEnum):
    """How an account uses the product; drives its chance to be active on a day."""

    DAILY = 0
    WEEKLY = 1
    MONTHLY = 2
    DORMANT = 3  # no events at all
    CHURNED = 4  # daily until its last_active day, silent since
    ONBOARDING = 5  # daily-ish from its create date on


# Probability of being active on a weekday / weekend day, indexed by _Archetype. Daily
# accounts reach >= 9 active days in 14, weekly ones 2-8, monthly ones mostly < 2.
_P_ACTIVE_WEEKDAY = np.array([0.93, 0.40, 0.05, 0.0, 0.93, 0.85])
_P_ACTIVE_WEEKEND = np.array([0.45, 0.10, 0.01, 0.0, 0.45, 0.35])
_ARCHETYPE_VOLUME = np.array([1.5, 1.0, 0.6, 0.0, 1.2, 1.0])


class _UserKind(IntEnum):
    BLANK = 0
    INTERNAL = 1
    UPPER_EMAIL = 2
    PADDED_EMAIL = 3
    EMAIL = 4


_USER_KIND_CUMULATIVE = np.array([0.03, 0.11, 0.15, 0.18])  # thresholds for kinds 0..3


class _EventKind(IntEnum):
    NORMAL = 0
    LATE = 1  # ts on the previous UTC day
    BAD = 2  # must be rejected
    REDELIVERY = 3  # exact copy of an earlier day's event


@dataclass(frozen=True)
class TenantSummary:
    """What `generate_tenant` wrote. Counts are rows in the event files of all days; CRM counts
    those of the newest export (the CRM on the last day)."""

    crm_dir: Path  # crm.files_dir: the date=YYYY-MM-DD/ export folders
    landing_dir: Path
    accounts: int
    assets: int
    contacts: int
    days: list[date]
    events_written: int  # every row, bad and redelivered ones included
    bad_rows_written: int  # rows to reject: blank account_id/action, bad or future ts
    late_events_written: int = 0  # valid rows whose ts is the previous UTC day
    redelivered_rows_written: int = 0  # exact copies (same event_id) of earlier rows
    crm_exports: tuple[date, ...] = ()  # the dates of the CRM exports, oldest first
    status_changes_planned: int = 0  # CRM accounts whose status changes between two exports

    @property
    def latest_crm_export(self) -> Path:
        """The folder of the newest CRM export: the CRM as it is on the last day."""
        return self.crm_dir / f"date={max(self.crm_exports).isoformat()}"


@dataclass(frozen=True)
class _Population:
    """Every ID that sends events: CRM accounts, then product accounts, then ghost IDs.

    Event rows hold indexes into `account_values` and `user_values`, which list every
    spelling an event can carry; strings are gathered only when a file is written, so a
    day of millions of rows stays cheap to sort and shuffle.
    """

    archetype: np.ndarray
    weight: np.ndarray  # relative event volume on an active day
    active_from: np.ndarray  # epoch day of the first possible event (create/install date)
    last_active: np.ndarray  # epoch day of the last possible event (churned accounts)
    fade_from: np.ndarray  # activity declines from this epoch day ...
    fade_to: np.ndarray  # ... to almost nothing on this one (a churn); _NEVER: no decline
    dip_from: np.ndarray  # a seasonal dip: little activity from this epoch day ...
    dip_to: np.ndarray  # ... until the day before this one; _NEVER: none
    user_start: np.ndarray  # the sender's contacts are contacts[start : start + count]
    user_count: np.ndarray
    internal_user_base: np.ndarray  # the sender's internal user IDs: internal[base : base + 4]
    preferred_module: np.ndarray
    account_values: pl.Series  # IDs, the same IDs padded with spaces, "", null
    user_values: pl.Series  # e-mails, upper-cased, padded; internal IDs; "", null
    n_contacts: int
    vocabulary: _Vocabulary  # the modules and actions events carry

    @property
    def size(self) -> int:
        return self.archetype.size

    @property
    def blank_account(self) -> int:
        """Index of "" in account_values (null follows it)."""
        return 2 * self.size

    @property
    def blank_user(self) -> int:
        """Index of "" in user_values (null follows it)."""
        return len(self.user_values) - 2


@dataclass(frozen=True)
class _Crm:
    """Every record ever in the CRM, with what varies between exports in helper columns
    (names starting with `_`, see `_export_rows`); `accounts` holds every account."""

    accounts: pl.DataFrame
    assets: pl.DataFrame
    contacts: pl.DataFrame
    population: _Population
    story: _Story


@dataclass(frozen=True)
class _Story:
    """Each CRM account's status over the window (indexes into _STATUS_VALUES): `status` until
    `change_day`, `new_status` from it on (_NEVER: no change), the change's `kind` (index into
    _CHANGE_KINDS, -1 none), and how its usage goes."""

    status: np.ndarray
    new_status: np.ndarray
    change_day: np.ndarray
    kind: np.ndarray
    archetype: np.ndarray
    fade_from: np.ndarray
    fade_to: np.ndarray
    dip_from: np.ndarray
    dip_to: np.ndarray


def generate_tenant(
    out_dir: Path,
    *,
    end_date: date,
    days: int = 60,
    accounts: int = 60,
    events_per_day: int = 2_000,
    seed: int = 7,
    bad_rows: bool = True,
    formats: Sequence[str] = EVENT_FORMATS,
    progress: Callable[[str], None] | None = None,
    crm_export_every: int = 7,
    module_actions: Mapping[str, Sequence[tuple[str, float]]] | None = None,
    contacts_per_account: tuple[int, int] | None = None,
) -> TenantSummary:
    """Write a synthetic tenant: dated CRM exports and `days` days of usage ending at `end_date`.

    The CRM is exported on the window's first day, every `crm_export_every` days after it, and
    on `end_date`. Rewrites the CRM folder (stale exports and loose CSV files of an earlier
    run are removed) and the event files of the window's days; partitions of other days are
    left alone. `progress` hears once per day written.

    Other tenant shapes (the benchmarks'): `module_actions` replaces MODULE_ACTIONS (module ->
    (action, relative frequency); at least one module, action names unique across modules), and
    `contacts_per_account` = (low, high) gives every CRM account between low and high contacts,
    uniformly, instead of a few by segment. Left out, the tenant is the demo's, byte for byte.
    """
    if days < 1 or accounts < 1 or events_per_day < 0 or crm_export_every < 1:
        raise ValueError("days, accounts and crm_export_every must be >= 1 and events_per_day >= 0")
    if contacts_per_account is not None and not 0 <= contacts_per_account[0] <= contacts_per_account[1]:
        raise ValueError(f"contacts_per_account must be (low, high) with 0 <= low <= high, got {contacts_per_account}")
    vocabulary = _DEMO_VOCABULARY if module_actions is None else _vocabulary(module_actions)
    unknown = sorted(set(formats) - set(EVENT_FORMATS))
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {EVENT_FORMATS}, got {list(formats)}")

    out_dir = Path(out_dir)
    crm_dir = out_dir / "crm"
    landing_dir = out_dir / "landing"
    window = [end_date - timedelta(days=days - 1 - i) for i in range(days)]
    exports = sorted({*window[::crm_export_every], end_date})

    # Independent streams, so that e.g. changing the event volume leaves the CRM as it is.
    crm_seq, population_seq, story_seq = np.random.SeedSequence([seed, 0]).spawn(3)
    crm = _build_crm(
        np.random.default_rng(crm_seq),
        np.random.default_rng(population_seq),
        np.random.default_rng(story_seq),
        accounts,
        np.array([_epoch_day(day) for day in exports]),
        vocabulary,
        contacts_per_account,
    )
    _write_crm(crm, crm_dir, exports)

    events = bad = late = redelivered = 0
    carry = _empty_rows()
    for day in window:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, _epoch_day(day)]))
        fresh = _simulate_day(crm.population, day, events_per_day, bad_rows, rng)
        day_rows, carry = _deliver_day(crm.population, fresh, carry, day, formats, landing_dir, bad_rows, rng)
        events += day_rows.height
        kinds = day_rows["kind"]
        bad += int((kinds == _EventKind.BAD).sum())
        late += int((kinds == _EventKind.LATE).sum())
        redelivered += int((kinds == _EventKind.REDELIVERY).sum())
        if progress is not None:
            progress(f"usage {day.isoformat()}: {day_rows.height:,} rows")

    return TenantSummary(
        crm_dir=crm_dir,
        landing_dir=landing_dir,
        accounts=crm.accounts.height,
        assets=crm.assets.height,
        contacts=crm.contacts.height,
        days=window,
        events_written=events,
        bad_rows_written=bad,
        late_events_written=late,
        redelivered_rows_written=redelivered,
        crm_exports=tuple(exports),
        status_changes_planned=int((crm.story.kind >= 0).sum()),
    )


# --------------------------------------------------------------------------- CRM


@dataclass(frozen=True)
class _AccountTraits:
    """What assets, contacts and events need to know of each CRM account (Account.csv order)."""

    sf_id: pl.Series
    account_id: pl.Series  # External_Id__c, else Id: the ID events carry
    word: np.ndarray  # index into _COMPANY_WORDS of the account's group
    root: np.ndarray  # row of the account's root
    segment: np.ndarray
    create_day: np.ndarray  # the pipeline's create_date, as an epoch day
    created_day: np.ndarray  # when the record was created: it is in the exports from then on
    active_from: np.ndarray  # its first possible event
    archetype: np.ndarray
    last_active: np.ndarray
    weight: np.ndarray
    story: _Story

    @property
    def size(self) -> int:
        return self.archetype.size


@dataclass(frozen=True)
class _ProductAccounts:
    """The virtual product accounts, one per Asset row."""

    holder: np.ndarray  # row of the holding account
    ids: pl.Series  # <account_id>_<ProductCode>
    archetype: np.ndarray
    weight: np.ndarray
    active_from: np.ndarray
    last_active: np.ndarray
    module: np.ndarray  # the module the product's events favour


def _build_crm(
    rng: np.random.Generator,
    pop_rng: np.random.Generator,
    story_rng: np.random.Generator,
    n: int,
    export_days: np.ndarray,
    vocabulary: _Vocabulary,
    contacts_per_account: tuple[int, int] | None,
) -> _Crm:
    """Accounts with a 3-level hierarchy, their product holdings, contacts, and the event
    senders they make up. `pop_rng` draws only what never reaches the CRM files, `story_rng`
    the status changes and the usage around them."""
    accounts, traits = _build_accounts(rng, story_rng, n, export_days)
    assets, products = _build_assets(rng, pop_rng, accounts, traits, export_days, vocabulary)
    contacts, user_start, user_count, emails = _build_contacts(rng, accounts, traits, contacts_per_account)
    population = _build_population(pop_rng, traits, products, user_start, user_count, emails, vocabulary)
    return _Crm(accounts=accounts, assets=assets, contacts=contacts, population=population, story=traits.story)


def _in_exports_from(day: np.ndarray, export_days: np.ndarray) -> np.ndarray:
    """The first export day on or after `day` for a day inside the window (when a record
    created that day first shows), else `day` itself."""
    index = np.minimum(np.searchsorted(export_days, day), export_days.size - 1)
    return np.where(day > export_days[0], export_days[index], day)


def _plan_story(
    rng: np.random.Generator,
    status: np.ndarray,
    archetype: np.ndarray,
    existing: np.ndarray,
    start_day: int,
    end_day: int,
) -> _Story:
    """Who changes status when during the window (accounts that exist before it), and whose
    usage declines before a churn or dips for a while. Returns copies."""
    n = status.size
    status, archetype = status.copy(), archetype.copy()
    kind = np.full(n, -1, dtype=np.int8)
    change_day = np.full(n, _NEVER, dtype=np.int64)
    span = end_day - start_day
    if span >= 2:  # a change needs an export before it and one after
        first = start_day + max(1, min(14, span // 3))  # leaves a lead time inside the window
        free = existing.copy()
        for index, (share, sources, forced) in enumerate(
            zip(_CHANGE_SHARES, _CHANGE_FROM, _CHANGE_FORCED, strict=True)
        ):
            count = max(round(share * n), 1 if n >= 8 * len(_CHANGE_KINDS) else 0)
            order = rng.permutation(n)
            fits = free & np.isin(status, sources)
            # others are given a status the kind changes from; cancelled (silent) accounts only
            # when reactivating
            others = free & ~fits & ((status != _CANCELLED) | (index == _REACTIVATION))
            picked = np.concatenate([order[fits[order]], order[others[order]]])[:count]
            status[picked] = np.where(np.isin(status[picked], sources), status[picked], forced)
            kind[picked] = index
            change_day[picked] = rng.integers(first, end_day + 1, size=picked.size)
            free[picked] = False
    paying = np.array(_PAYING)
    new_status = np.select(
        [kind == i for i in range(len(_CHANGE_KINDS))],
        [
            np.full(n, _CANCELLED),  # churn
            paying[_pick(rng, (0.4, 0.45, 0.15), n)],  # conversion
            _PERSONAL + (status - _PERSONAL + rng.integers(1, 3, size=n)) % 3,  # plan change
            np.full(n, _TRIAL),  # downgrade
            paying[rng.integers(0, 2, size=n)],  # reactivation: Personal or Pro
            np.full(n, _PRO),  # unclassified: a Legacy or missing status migrated to Pro
        ],
        status,
    )
    # Reactivated accounts come back to life on their change day (silent before).
    reactivated = kind == _REACTIVATION
    archetype[reactivated] = np.where(rng.random(int(reactivated.sum())) < 0.5, _Archetype.DAILY, _Archetype.WEEKLY)
    # Churners mostly used the product; their usage declines over a few weeks before they
    # cancel, but not always.
    churners = kind == _CHURN
    archetype[churners] = _pick(rng, _CHURNER_ARCHETYPES, int(churners.sum()))
    fading = churners & (rng.random(n) >= _SURPRISE_CHURN)
    fade_to = np.where(fading, change_day, _NEVER)
    fade_from = np.where(fading, change_day - rng.integers(*_FADE_DAYS, size=n), _NEVER)
    # Some healthy accounts look bad for a while: a seasonal dip, sometimes up to the end.
    dipping = (
        existing
        & (kind < 0)
        & np.isin(archetype, [_Archetype.DAILY, _Archetype.WEEKLY])
        & (status != _CANCELLED)
        & (rng.random(n) < _DIP_SHARE)
    )
    dip_start = start_day + rng.integers(0, max(1, span - 4), size=n)
    dip_from = np.where(dipping, dip_start, _NEVER)
    dip_to = np.where(dipping, dip_start + rng.integers(*_DIP_DAYS, size=n), _NEVER)
    return _Story(status, new_status, change_day, kind, archetype, fade_from, fade_to, dip_from, dip_to)


def _build_accounts(
    rng: np.random.Generator, story_rng: np.random.Generator, n: int, export_days: np.ndarray
) -> tuple[pl.DataFrame, _AccountTraits]:
    start_day, end_day = int(export_days[0]), int(export_days[-1])
    # Hierarchy: ~70% roots, ~20% children of a root, ~10% grandchildren.
    level = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    level[0] = 0
    if not (level == 1).any():
        level[level == 2] = 1
    is_child, is_grandchild = level == 1, level == 2
    parent = np.full(n, -1, dtype=np.int64)
    parent[is_child] = rng.choice(np.flatnonzero(level == 0), size=int(is_child.sum()))
    if is_grandchild.any():
        parent[is_grandchild] = rng.choice(np.flatnonzero(is_child), size=int(is_grandchild.sum()))
    root = np.arange(n)
    root[is_child] = parent[is_child]
    root[is_grandchild] = parent[parent[is_grandchild]]

    sf_ids = _salesforce_ids("001", n, rng)
    # A subsidiary is named after its group ("Acme Boston" under "Acme Inc").
    word = rng.integers(len(_COMPANY_WORDS), size=n)[root]
    segment = _pick(rng, _SEGMENT_WEIGHTS, n)
    status = _pick(rng, _STATUS_WEIGHTS, n)

    # Dates, as epoch days. Most accounts predate the window; ~5% are onboarding (created
    # in the last 30 days), at least two of them in the last 5 days. Onboarding accounts
    # have no sub-accounts, so that no export has a child without its parent.
    created_day = start_day - 1 - rng.integers(0, 1_500, size=n)
    leaves = np.setdiff1d(np.arange(n), parent[parent >= 0])
    onboarding = rng.choice(leaves, size=min(leaves.size, max(2, round(0.05 * n))), replace=False)
    n_onboarding = onboarding.size
    created_day[onboarding] = end_day - rng.integers(0, 30, size=n_onboarding)
    newest = onboarding[:2]
    created_day[newest] = end_day - rng.integers(0, 5, size=newest.size)
    created_ms = created_day * _MS_PER_DAY + rng.integers(0, 86_400, size=n) * 1_000
    # Customer_Since__c often predates the CRM record (migrated customers).
    customer_since = created_day - np.where(rng.random(n) < 0.4, rng.integers(1, 366, size=n), 0)
    customer_since[onboarding] = created_day[onboarding]
    since_blank = rng.random(n) < 0.10
    create_day = np.where(since_blank, created_day, customer_since)

    archetype = _pick(rng, (0.36, 0.30, 0.17, 0.11, 0.06), n)  # DAILY..CHURNED
    cancelled = status == _CANCELLED
    archetype[cancelled] = np.where(rng.random(int(cancelled.sum())) < 0.85, _Archetype.CHURNED, _Archetype.DORMANT)
    archetype[onboarding] = np.where(rng.random(n_onboarding) < 0.8, _Archetype.ONBOARDING, _Archetype.DORMANT)
    story = _plan_story(story_rng, status, archetype, created_day < start_day, start_day, end_day)
    status, archetype = story.status, story.archetype
    last_active = _last_active_days(rng, archetype, start_day, end_day)
    # Accounts cancelled before the window are silent in it; churners stop on their churn day.
    cancelled_before = (status == _CANCELLED) & (story.kind != _REACTIVATION)
    last_active = np.where(cancelled_before, np.minimum(last_active, start_day - 1), last_active)
    last_active = np.where(story.kind == _CHURN, np.minimum(last_active, story.change_day - 1), last_active)
    # Events start once the account shows in an export; a reactivated one's on its reactivation.
    active_from = np.maximum(create_day, _in_exports_from(created_day, export_days))
    active_from = np.where(story.kind == _REACTIVATION, story.change_day, active_from)
    weight = _SEGMENT_VOLUME[segment] * _ARCHETYPE_VOLUME[archetype] * rng.lognormal(0.0, 0.8, size=n)

    contract = np.round(_SEGMENT_CONTRACT[segment] * rng.lognormal(0.0, 0.6, size=n), -2)
    contract_blank = rng.random(n) < 0.08  # and free accounts pay nothing
    licenses = rng.integers(_SEGMENT_LICENSES[segment, 0], _SEGMENT_LICENSES[segment, 1] + 1).astype(np.float64)
    licenses[rng.random(n) < 0.02] = 0.0
    status_case = rng.random(n)  # mixed-case catalog values: the pipeline matches case-insensitively
    external_blank = rng.random(n) < 0.05  # the pipeline falls back to Id
    raw = pl.DataFrame(
        {
            "Id": sf_ids,
            "word": pl.Series(_COMPANY_WORDS).gather(word),
            "prefix": pl.Series([w[:4].upper() for w in _COMPANY_WORDS]).gather(word),
            "suffix": pl.Series(_COMPANY_SUFFIXES).gather(rng.integers(len(_COMPANY_SUFFIXES), size=n)),
            "city": pl.Series(_CITIES).gather(rng.integers(len(_CITIES), size=n)),
            "level": level,
            "parent": np.where(parent < 0, 0, parent),
            "status": pl.Series(_STATUS_VALUES).gather(status),
            "new_status": pl.Series(_STATUS_VALUES).gather(story.new_status),
            "status_case": status_case,
            "since": customer_since.astype(np.int32),
            "created_ms": created_ms,
            "contract": contract,
            "renewal": (end_day + rng.integers(-30, 366, size=n)).astype(np.int32),
            "licenses": licenses,
            "risk": pl.Series(CSM_RISKS).gather(_pick(rng, _CSM_RISK_WEIGHTS, n)),
            "segment": pl.Series(SEGMENTS).gather(segment),
            "_since_ms": created_ms,
            "_modstamp_at": rng.random(n),  # see _export_rows
        }
    )
    number = pl.int_range(1, n + 1).cast(pl.String).str.zfill(max(4, len(str(n))))

    def spelt(column: str) -> pl.Expr:
        catalogued = pl.col(column).is_in(STATUS_CATALOG)
        return (
            pl.when(pl.col(column) == "")
            .then(pl.lit(None, dtype=pl.String))
            .when(catalogued & (pl.col("status_case") < 0.06))
            .then(pl.col(column).str.to_lowercase())
            .when(catalogued & (pl.col("status_case") < 0.08))
            .then(pl.col(column).str.to_uppercase())
            .otherwise(pl.col(column))
        )

    def contract_value(status: np.ndarray) -> pl.Expr:
        return _blank_where(pl.col("contract").cast(pl.String), contract_blank | np.isin(status, _FREE))

    accounts = raw.select(
        pl.col("Id"),
        _blank_where(pl.concat_str([pl.col("prefix"), pl.lit("-"), number]), external_blank).alias("External_Id__c"),
        pl.when(pl.col("level") == 0)
        .then(pl.concat_str([pl.col("word"), pl.col("suffix")], separator=" "))
        .otherwise(pl.concat_str([pl.col("word"), pl.col("city")], separator=" "))
        .alias("Name"),
        _blank_where(pl.col("Id").gather(pl.col("parent")), parent < 0).alias("ParentId"),
        spelt("status").alias("Status__c"),
        _blank_where(_date_text(pl.col("since")), since_blank).alias("Customer_Since__c"),
        _datetime_text(pl.col("created_ms")).alias("CreatedDate"),
        contract_value(status).alias("Contract_Value__c"),
        _blank_where(_date_text(pl.col("renewal")), rng.random(n) < 0.15).alias("Renewal_Date__c"),
        _blank_where(pl.col("licenses").cast(pl.String), rng.random(n) < 0.08).alias("Licenses__c"),
        _blank_where(pl.col("risk"), pl.col("risk") == "").alias("CSM_Risk__c"),
        pl.col("segment").alias("Segment__c"),
        pl.lit(None, dtype=pl.String).alias("SystemModstamp"),  # per export
        pl.lit("false").alias("IsDeleted"),
        # what varies between exports (_export_rows)
        pl.lit(pl.Series(created_day)).alias("_visible_from"),
        "_since_ms",
        "_modstamp_at",
        pl.lit(pl.Series(story.change_day)).alias("_change_day"),
        spelt("new_status").alias("_new_status"),
        contract_value(story.new_status).alias("_new_contract"),
    )
    traits = _AccountTraits(
        sf_id=sf_ids,
        account_id=accounts.select(pl.coalesce("External_Id__c", "Id")).to_series(),
        word=word,
        root=root,
        segment=segment,
        create_day=create_day,
        created_day=created_day,
        active_from=active_from,
        archetype=archetype,
        last_active=last_active,
        weight=weight,
        story=story,
    )
    return accounts, traits


def _build_assets(
    rng: np.random.Generator,
    pop_rng: np.random.Generator,
    accounts: pl.DataFrame,
    traits: _AccountTraits,
    export_days: np.ndarray,
    vocabulary: _Vocabulary,
) -> tuple[pl.DataFrame, _ProductAccounts]:
    """Product holdings: about a third of accounts hold one or two distinct products. A
    holding shows in the exports from its install date (else its holder's creation) on; when
    its holder churns, a status of its own becomes Cancelled (an empty one follows the holder's)."""
    start_day, end_day = int(export_days[0]), int(export_days[-1])
    n = traits.size
    holds = rng.random(n) < 1 / 3
    holds_two = holds & (rng.random(n) < 0.35)
    first = rng.integers(len(PRODUCTS), size=n)
    second = (first + rng.integers(1, len(PRODUCTS), size=n)) % len(PRODUCTS)  # never the same product
    holder = np.concatenate([np.flatnonzero(holds), np.flatnonzero(holds_two)])
    product = np.concatenate([first[holds], second[holds_two]])
    order = np.lexsort((product, holder))
    holder, product = holder[order], product[order]
    m = holder.size

    status = _pick(rng, _ASSET_STATUS_WEIGHTS, m)
    install_day = np.minimum(traits.create_day[holder] + rng.integers(0, 600, size=m), end_day)
    install_blank = rng.random(m) < 0.15
    codes = pl.Series([code for code, _ in PRODUCTS]).gather(product)
    holder_churn = np.where(traits.story.kind[holder] == _CHURN, traits.story.change_day[holder], _NEVER)
    own_status = (status != 0) & (status != _ASSET_STATUSES.index("Cancelled"))
    visible_from = np.maximum(np.where(install_blank, 0, install_day), traits.created_day[holder])
    assets = pl.DataFrame(
        {
            "Id": _salesforce_ids("02i", m, rng),
            "AccountId": traits.sf_id.gather(holder),
            "Product2.ProductCode": codes,
            "Product2.Name": pl.Series([name for _, name in PRODUCTS]).gather(product),
            "status": pl.Series(_ASSET_STATUSES).gather(status),
            "quantity": rng.integers(1, 51, size=m).astype(np.float64),
            "price": np.round(rng.lognormal(np.log(2_000.0), 0.7, size=m), -2),
            "install": install_day.astype(np.int32),
            "_since_ms": install_day * _MS_PER_DAY,
            "_modstamp_at": rng.random(m),
        }
    ).select(
        "Id",
        "AccountId",
        "Product2.ProductCode",
        "Product2.Name",
        _blank_where(pl.col("status"), pl.col("status") == "").alias("Status"),  # empty: inherited
        _blank_where(pl.col("quantity").cast(pl.String), rng.random(m) < 0.20).alias("Quantity"),
        _blank_where(pl.col("price").cast(pl.String), rng.random(m) < 0.25).alias("Price"),
        _blank_where(_date_text(pl.col("install")), install_blank).alias("InstallDate"),
        pl.lit(None, dtype=pl.String).alias("SystemModstamp"),  # per export
        pl.lit("false").alias("IsDeleted"),
        pl.lit(pl.Series(visible_from)).alias("_visible_from"),
        "_since_ms",
        "_modstamp_at",
        pl.lit(pl.Series(np.where(own_status, holder_churn, _NEVER))).alias("_change_day"),
        pl.lit("Cancelled").alias("_new_status"),
    )

    # As event senders: products of silent holders stay silent; others have their own
    # pattern, from their install date (else the holder's create date) on, once the holding
    # shows in an export and its holder is active.
    active_from = np.where(install_blank, traits.create_day[holder], install_day)
    active_from = np.maximum.reduce(
        [active_from, traits.active_from[holder], _in_exports_from(visible_from, export_days)]
    )
    own = _pick(pop_rng, (0.45, 0.35, 0.20), m)  # DAILY, WEEKLY, MONTHLY
    own = np.where(active_from > end_day - 30, _Archetype.ONBOARDING, own)
    own = np.where(status == _ASSET_STATUSES.index("Cancelled"), _Archetype.CHURNED, own)
    holder_silent = np.isin(traits.archetype[holder], [_Archetype.DORMANT, _Archetype.CHURNED])
    archetype = np.where(holder_silent, traits.archetype[holder], own)
    last_active = np.where(
        holder_silent, traits.last_active[holder], _last_active_days(pop_rng, archetype, start_day, end_day)
    )
    last_active = np.minimum(last_active, traits.last_active[holder])  # never after the holder's
    products = _ProductAccounts(
        holder=holder,
        ids=traits.account_id.gather(holder) + PRODUCT_SEPARATOR + codes,
        archetype=archetype,
        weight=0.5 * traits.weight[holder] * pop_rng.lognormal(0.0, 0.5, size=m),
        active_from=active_from,
        last_active=last_active,
        module=_PRODUCT_MODULE[product] % vocabulary.modules,
    )
    return assets, products


def _build_contacts(
    rng: np.random.Generator,
    accounts: pl.DataFrame,
    traits: _AccountTraits,
    contacts_per_account: tuple[int, int] | None,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, pl.Series]:
    """A few contacts per account (or `contacts_per_account` = (low, high), uniformly), grouped
    by account; e-mails use the group's domain.

    Returns Contact.csv, each account's first contact row and contact count, and the
    contacts' lower-case e-mails.
    """
    n = traits.size
    if contacts_per_account is None:
        per_account = np.where(rng.random(n) < 0.03, 0, 1 + rng.poisson(_SEGMENT_CONTACTS[traits.segment]))
        per_account = np.minimum(per_account, 25)
    else:
        per_account = rng.integers(contacts_per_account[0], contacts_per_account[1] + 1, size=n)
    user_start = np.cumsum(per_account) - per_account
    account = np.repeat(np.arange(n), per_account)
    c = account.size

    domain = (
        pl.Series([w.lower() for w in _COMPANY_WORDS]).gather(traits.word[account])
        + "-"
        + pl.Series(traits.root[account] + 1).cast(pl.String).str.zfill(max(4, len(str(n))))
        + ".example.com"
    )
    email_case = rng.random(c)
    raw = pl.DataFrame(
        {
            "Id": _salesforce_ids("003", c, rng),
            "AccountId": traits.sf_id.gather(account),
            "account": account,
            "ordinal": np.arange(c) - user_start[account],
            "first": pl.Series(_FIRST_NAMES).gather(rng.integers(len(_FIRST_NAMES), size=c)),
            "last": pl.Series(_LAST_NAMES).gather(rng.integers(len(_LAST_NAMES), size=c)),
            "domain": domain,
            "_since_ms": traits.create_day[account] * _MS_PER_DAY,
            "_modstamp_at": rng.random(c),
        }
    )
    local = pl.concat_str([pl.col("first"), pl.lit("."), pl.col("last")]).str.to_lowercase()
    raw = raw.with_columns(email=pl.concat_str([local, pl.lit("@"), pl.col("domain")]))
    # Two namesakes in one account would share an address: number the later ones.
    raw = raw.with_columns(
        email=pl.when(pl.col("email").is_first_distinct().over("account"))
        .then(pl.col("email"))
        .otherwise(pl.concat_str([local, pl.col("ordinal").cast(pl.String), pl.lit("@"), pl.col("domain")]))
    )
    contacts = raw.select(
        "Id",
        "AccountId",
        pl.when(pl.lit(pl.Series(email_case < 0.07)))
        .then(pl.col("email").str.to_titlecase())
        .when(pl.lit(pl.Series(email_case < 0.10)))
        .then(pl.col("email").str.to_uppercase())
        .otherwise(pl.col("email"))
        .alias("Email"),
        pl.concat_str([pl.col("first"), pl.col("last")], separator=" ").alias("Name"),
        pl.lit(None, dtype=pl.String).alias("SystemModstamp"),  # per export
        pl.lit("false").alias("IsDeleted"),
        pl.lit(pl.Series(traits.created_day[account])).alias("_visible_from"),
        "_since_ms",
        "_modstamp_at",
    )
    return contacts, user_start, per_account, raw["email"]


def _build_population(
    pop_rng: np.random.Generator,
    traits: _AccountTraits,
    products: _ProductAccounts,
    user_start: np.ndarray,
    user_count: np.ndarray,
    emails: pl.Series,
    vocabulary: _Vocabulary,
) -> _Population:
    """CRM accounts, product accounts (sharing their holder's users) and ghost IDs."""
    n, n_ghosts = traits.size, len(GHOST_ACCOUNT_IDS)
    holder = products.holder
    ids = pl.concat([traits.account_id, products.ids, pl.Series(GHOST_ACCOUNT_IDS)])
    n_internal = 4 * (n + n_ghosts)
    internal_ids = "U" + pl.Series(np.arange(n_internal)).cast(pl.String).str.zfill(7)
    module_weights = vocabulary.module_weights
    blanks = pl.Series(["", None], dtype=pl.String)
    never = np.full(n_ghosts, _NEVER)
    return _Population(
        archetype=np.concatenate([traits.archetype, products.archetype, np.full(n_ghosts, _Archetype.WEEKLY)]),
        weight=np.concatenate([traits.weight, products.weight, np.full(n_ghosts, 0.3)]),
        active_from=np.concatenate([traits.active_from, products.active_from, np.full(n_ghosts, _ALWAYS)]),
        last_active=np.concatenate([traits.last_active, products.last_active, np.full(n_ghosts, _NEVER)]),
        # a product declines or dips with its holder
        **{
            name: np.concatenate([getattr(traits.story, name), getattr(traits.story, name)[holder], never])
            for name in ("fade_from", "fade_to", "dip_from", "dip_to")
        },
        user_start=np.concatenate([user_start, user_start[holder], np.zeros(n_ghosts, dtype=np.int64)]),
        user_count=np.concatenate([user_count, user_count[holder], np.zeros(n_ghosts, dtype=np.int64)]),
        internal_user_base=4 * np.concatenate([np.arange(n), holder, n + np.arange(n_ghosts)]),
        preferred_module=np.concatenate(
            [_pick(pop_rng, module_weights, n), products.module, _pick(pop_rng, module_weights, n_ghosts)]
        ),
        account_values=pl.concat([ids, " " + ids + " ", blanks]),
        user_values=pl.concat([emails, emails.str.to_uppercase(), " " + emails + "  ", internal_ids, blanks]),
        n_contacts=len(emails),
        vocabulary=vocabulary,
    )


def _write_crm(crm: _Crm, crm_dir: Path, exports: list[date]) -> None:
    """One date=YYYY-MM-DD/ folder per export, after removing what an earlier run left (other
    dated folders, loose CSV files): a mix would be another history, or an error."""
    crm_dir.mkdir(parents=True, exist_ok=True)
    folders = {f"date={day.isoformat()}" for day in exports}
    for entry in crm_dir.iterdir():
        if entry.is_dir() and entry.name.startswith("date=") and entry.name not in folders:
            shutil.rmtree(entry)
        elif entry.name in ("Account.csv", "Asset.csv", "Contact.csv") and entry.is_file():
            entry.unlink()
    for day in exports:
        folder = crm_dir / f"date={day.isoformat()}"
        folder.mkdir(exist_ok=True)
        for name, frame, columns, changes in (
            (
                "Account",
                crm.accounts,
                ACCOUNT_COLUMNS,
                {"Status__c": "_new_status", "Contract_Value__c": "_new_contract"},
            ),
            ("Asset", crm.assets, ASSET_COLUMNS, {"Status": "_new_status"}),
            ("Contact", crm.contacts, CONTACT_COLUMNS, {}),
        ):
            _export_rows(frame, _epoch_day(day), changes).select(columns).write_csv(folder / f"{name}.csv")


def _export_rows(frame: pl.DataFrame, day: int, changes: dict[str, str]) -> pl.DataFrame:
    """The records of an export taken on epoch day `day`: those created by then, with the
    values their change gave them (`changes`: column -> column of the new value, from
    `_change_day` on), last modified by then (a changed record on its change day at the
    earliest)."""
    end_ms = (day + 1) * _MS_PER_DAY - 1_000
    modstamp = pl.col("_since_ms") + (pl.col("_modstamp_at") * (end_ms + 1_000 - pl.col("_since_ms"))).cast(pl.Int64)
    rows = frame.filter(pl.col("_visible_from") <= day)
    if changes:
        changed = pl.col("_change_day") <= day
        change_ms = pl.min_horizontal("_change_day", pl.lit(day)) * _MS_PER_DAY + 9 * 3_600_000
        modstamp = pl.when(changed).then(pl.max_horizontal(modstamp, change_ms)).otherwise(modstamp)
        rows = rows.with_columns(
            pl.when(changed).then(pl.col(new)).otherwise(pl.col(column)).alias(column)
            for column, new in changes.items()
        )
    modstamp = pl.min_horizontal(modstamp // 1_000 * 1_000, pl.lit(end_ms))
    return rows.with_columns(_datetime_text(modstamp).alias("SystemModstamp"))


# --------------------------------------------------------------------------- events


def _simulate_day(
    pop: _Population, day: date, events_per_day: int, bad_rows: bool, rng: np.random.Generator
) -> pl.DataFrame:
    """The day's new rows in index form (see _ROW_SCHEMA): the normal rows first, in ts
    order, then the late and bad ones."""
    today = _epoch_day(day)
    weekend = day.weekday() >= 5
    target = round(events_per_day * (_WEEKEND_VOLUME if weekend else _WEEKDAY_VOLUME) * rng.uniform(0.95, 1.05))

    p_active = (_P_ACTIVE_WEEKEND if weekend else _P_ACTIVE_WEEKDAY)[pop.archetype]
    p_active = np.where((pop.active_from > today) | (pop.last_active < today), 0.0, p_active)
    # before a churn, activity declines linearly to _FADE_FLOOR; during a dip it is low
    fade = (pop.fade_to - today) / np.maximum(pop.fade_to - pop.fade_from, 1)
    p_active = p_active * np.where(today >= pop.fade_from, np.clip(fade, _FADE_FLOOR, 1.0), 1.0)
    p_active = p_active * np.where((today >= pop.dip_from) & (today < pop.dip_to), _DIP_LEVEL, 1.0)
    active = np.flatnonzero(rng.random(pop.size) < p_active)
    if active.size == 0 or target == 0:
        sender = np.empty(0, dtype=np.int64)
    elif target <= active.size:
        sender = rng.choice(active, size=target, replace=False)
    else:
        # Every active account sends at least one event; the rest follows its volume.
        share = pop.weight[active] / pop.weight[active].sum()
        sender = rng.permutation(np.repeat(active, 1 + rng.multinomial(target - active.size, share)))

    n_main = sender.size
    # Late events (yesterday's, delivered today) come from accounts that existed yesterday.
    veterans = sender[pop.active_from[sender] < today]
    n_late = max(1, round(_LATE_SHARE * n_main)) if veterans.size else 0
    n_bad = max(1, round(_BAD_SHARE * n_main)) if n_main and bad_rows else 0
    if n_main:
        sender = np.concatenate([sender, rng.choice(veterans, size=n_late), rng.choice(sender, size=n_bad)])
    n = sender.size
    kind = np.repeat(
        np.array([_EventKind.NORMAL, _EventKind.LATE, _EventKind.BAD], dtype=np.int8), [n_main, n_late, n_bad]
    )
    bad_reason = np.full(n, -1, dtype=np.int8)
    # 0: blank account_id, 1: blank action, 2: unparseable ts, 3: far-future ts; rotating
    # with the day so that small tenants get every kind too.
    bad_reason[n_main + n_late :] = (today + np.arange(n_bad)) % 4
    blank_flavour = rng.integers(0, 2, size=n)  # "" or null: both mean "missing"

    # Time of day: mostly office hours around 14:00 UTC, some around the clock.
    office = rng.normal(14 * 3_600_000, 3.5 * 3_600_000, size=n)
    anytime = rng.uniform(0, _MS_PER_DAY, size=n)
    ms_of_day = np.mod(np.where(rng.random(n) < 0.75, office, anytime), _MS_PER_DAY).astype(np.int64)
    # Senders come in random order and times are independent of them, so sorting the
    # times alone yields the normal rows in ts order (far cheaper than an argsort).
    ms_of_day[:n_main].sort()
    ts_ms = today * _MS_PER_DAY + ms_of_day
    ts_ms[kind == _EventKind.LATE] -= _MS_PER_DAY
    ts_ms[bad_reason == 3] += 5 * _MS_PER_DAY
    ts_style = _pick(rng, _TS_STYLE_WEIGHTS, n)  # 0: 'Z', 1: no offset, 2: explicit offset
    ts_form = np.where(ts_style == 2, 2 + rng.integers(_TS_OFFSETS_MIN.size, size=n), ts_style)

    # Accounts: now and then padded with spaces; bad rows of reason 0 have none.
    account = sender + np.where(rng.random(n) < 0.003, pop.size, 0)
    account = np.where(bad_reason == 0, pop.blank_account + blank_flavour, account)

    # Users: a contact of the account, sometimes an internal ID, sometimes nobody.
    count = pop.user_count[sender]
    contact = pop.user_start[sender] + (rng.random(n) * count).astype(np.int64)
    user_kind = np.searchsorted(_USER_KIND_CUMULATIVE, rng.random(n), side="right")
    user_kind = np.where((count == 0) & (user_kind != _UserKind.BLANK), _UserKind.INTERNAL, user_kind)
    internal = pop.internal_user_base[sender] + rng.integers(0, 4, size=n)
    c = pop.n_contacts
    kind_offset = np.array([pop.blank_user, 3 * c, c, 2 * c, 0])  # where each _UserKind's values start
    user = kind_offset[user_kind] + np.select(
        [user_kind == _UserKind.BLANK, user_kind == _UserKind.INTERNAL], [blank_flavour, internal], contact
    )

    # Actions: a third from the account's favourite module, the rest from the global mix.
    vocabulary = pop.vocabulary
    favourite = pop.preferred_module[sender]
    action = np.where(
        rng.random(n) < 0.35,
        vocabulary.module_first_action[favourite]
        + (rng.random(n) * vocabulary.module_action_count[favourite]).astype(np.int64),
        _pick(rng, vocabulary.action_weights, n),
    )
    module = np.where(rng.random(n) < 0.01, vocabulary.modules, vocabulary.action_module[action])  # some null
    action = np.where(bad_reason == 1, vocabulary.action_module.size + blank_flavour, action)

    return pl.DataFrame(
        {
            "kind": kind,
            "ts_ms": ts_ms,
            "ts_invalid": bad_reason == 2,
            "ts_form": ts_form.astype(np.int8),
            "account": account,
            "user": user,
            "module": module.astype(np.int16),
            "action": action.astype(np.int16),
            "id_day": np.zeros(n, dtype=np.int32),
            "id_seq": np.zeros(n, dtype=np.int64),
        },
        schema=_ROW_SCHEMA,
    )


def _deliver_day(
    pop: _Population,
    fresh: pl.DataFrame,
    carry: pl.DataFrame,
    day: date,
    formats: Sequence[str],
    landing_dir: Path,
    bad_rows: bool,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Order the day's rows into files and write them; return the rows and tomorrow's
    redeliveries.

    Normal events run in ts order across the files; late, bad and redelivered rows are
    scattered among them. Some files lack the event_id column (IDs get hashed downstream);
    redeliveries only go to files that carry it, as their point is the shared event_id.
    """
    today = _epoch_day(day)
    n_rows = fresh.height + carry.height
    n_files = len(formats) * max(1, math.ceil(n_rows / (len(formats) * _ROWS_PER_FILE)))
    has_event_id = (today + np.arange(n_files)) % 5 != 0
    id_files = np.flatnonzero(has_event_id)
    if id_files.size == 0:
        carry = _empty_rows()
    rows = pl.concat([fresh, carry])
    kind = rows["kind"].to_numpy()

    # Normal rows (already in ts order) cut into equal runs, one per file ...
    main = np.flatnonzero(kind == _EventKind.NORMAL)
    n_main = max(main.size, 1)
    main_file = np.arange(main.size) * n_files // n_main
    # ... and each other row put at a random place within a random file: key k in file f's
    # rank range [f, f + 1) * n_main / n_files goes before main rank ceil(k).
    extra = np.flatnonzero(kind != _EventKind.NORMAL)
    extra_file = rng.integers(n_files, size=extra.size)
    redelivery = kind[extra] == _EventKind.REDELIVERY
    if id_files.size:
        extra_file[redelivery] = id_files[rng.integers(id_files.size, size=int(redelivery.sum()))]
    extra_key = (extra_file + rng.random(extra.size)) * n_main / n_files
    by_key = np.argsort(extra_key, kind="stable")
    position = np.minimum(np.ceil(extra_key[by_key]).astype(np.int64), main.size)
    order = np.insert(main, position, extra[by_key])
    file = np.insert(main_file, position, extra_file[by_key])

    rows = rows[order]
    fresh_row = pl.col("kind") != _EventKind.REDELIVERY
    rows = rows.with_columns(
        id_day=pl.when(fresh_row).then(pl.lit(int(f"{day:%Y%m%d}"), dtype=pl.Int32)).otherwise("id_day"),
        id_seq=pl.when(fresh_row).then(pl.int_range(pl.len(), dtype=pl.Int64)).otherwise("id_seq"),
    )

    day_dir = landing_dir / "usage" / f"date={day.isoformat()}"
    day_dir.mkdir(parents=True, exist_ok=True)
    for stale in day_dir.glob("events-*"):
        stale.unlink()
    bounds = np.searchsorted(file, np.arange(n_files + 1))
    for index in range(n_files):
        fmt = formats[index % len(formats)]
        part = rows.slice(int(bounds[index]), int(bounds[index + 1] - bounds[index]))
        if part.height:  # a tiny day may not fill every file; an empty delivery helps nobody
            _write_events(pop, part, day_dir / f"events-{index:03d}.{fmt}", fmt, bool(has_event_id[index]))

    # Tomorrow redelivers a few of today's valid rows that went out with their event_id.
    candidates = np.flatnonzero(has_event_id[file] & (rows["kind"].to_numpy() <= _EventKind.LATE))
    n_carry = min(candidates.size, max(1, round(_REDELIVERY_SHARE * main.size))) if bad_rows else 0
    picked = np.sort(rng.choice(candidates, size=n_carry, replace=False)) if n_carry else np.empty(0, dtype=np.int64)
    next_carry = rows[picked].with_columns(kind=pl.lit(_EventKind.REDELIVERY, dtype=pl.Int8))
    return rows, next_carry


def _write_events(pop: _Population, part: pl.DataFrame, path: Path, fmt: str, with_event_id: bool) -> None:
    """Turn index rows into the event columns of a delivery (docs/data-model.md#usage-events-landing-zone)
    and write them as `fmt`."""
    columns: dict[str, pl.Series] = {}
    if with_event_id:
        columns["event_id"] = part.select(
            pl.concat_str(
                [pl.lit("evt-"), pl.col("id_day").cast(pl.String), pl.lit("-"), pl.col("id_seq").cast(pl.String)]
            )
        ).to_series()
    forms = part["ts_form"].to_numpy()
    if fmt == "parquet":  # a real timestamp; an unparseable one can only be missing
        columns["ts"] = part.select(
            pl.when(pl.col("ts_invalid")).then(None).otherwise(pl.from_epoch("ts_ms", time_unit="ms"))
        ).to_series()
    else:  # ISO 8601 text, in the local time of its offset
        local_ms = pl.Series(part["ts_ms"].to_numpy() + _TS_FORM_OFFSET_MIN[forms] * 60_000)
        text = pl.select(pl.from_epoch(local_ms, time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3f")).to_series()
        columns["ts"] = pl.select(
            pl.when(pl.lit(part["ts_invalid"])).then(pl.lit("not-a-date")).otherwise(text + _TS_SUFFIXES.gather(forms))
        ).to_series()
    columns["account_id"] = pop.account_values.gather(part["account"])
    columns["user_id"] = pop.user_values.gather(part["user"])
    columns["module"] = pop.vocabulary.module_values.gather(part["module"])
    columns["action"] = pop.vocabulary.action_values.gather(part["action"])
    table = pl.DataFrame(columns)

    if fmt == "parquet":
        table = table.with_columns(pl.col("ts").dt.cast_time_unit("us").dt.replace_time_zone("UTC"))
        table.write_parquet(path, compression="zstd", statistics=False)
    elif fmt == "csv":
        table.write_csv(path)
    elif fmt == "jsonl":
        table.write_ndjson(path)
    else:  # jsonl.gz; mtime=0 keeps the bytes reproducible, level 1 keeps it fast
        path.write_bytes(gzip.compress(table.write_ndjson().encode(), compresslevel=1, mtime=0))


# Event rows in index form: strings are indexes into _Population's values and the tables
# below; id_day (YYYYMMDD) and id_seq make the event_id.
_ROW_SCHEMA = pl.Schema(
    {
        "kind": pl.Int8,
        "ts_ms": pl.Int64,
        "ts_invalid": pl.Boolean,
        "ts_form": pl.Int8,  # index into _TS_SUFFIXES / _TS_FORM_OFFSET_MIN
        "account": pl.Int64,
        "user": pl.Int64,
        "module": pl.Int16,
        "action": pl.Int16,
        "id_day": pl.Int32,
        "id_seq": pl.Int64,
    }
)


def _empty_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=_ROW_SCHEMA)


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Vocabulary:
    """The modules and actions of a tenant's events, as the index tables the rows use."""

    module_weights: list[float]  # per module: the sum of its actions' frequencies
    action_module: np.ndarray  # per action: its module
    action_weights: np.ndarray  # per action: its relative frequency
    module_first_action: np.ndarray  # per module: its first action ...
    module_action_count: np.ndarray  # ... and its number of actions
    module_values: pl.Series  # the module names, then null
    action_values: pl.Series  # the action names, then the blank spellings "" and null

    @property
    def modules(self) -> int:
        return len(self.module_weights)


def _vocabulary(module_actions: Mapping[str, Sequence[tuple[str, float]]]) -> _Vocabulary:
    module_of: list[int] = []
    weights: list[float] = []
    first: list[int] = []
    counts: list[int] = []
    for module_index, actions in enumerate(module_actions.values()):
        first.append(len(module_of))
        counts.append(len(actions))
        module_of.extend([module_index] * len(actions))
        weights.extend(weight for _, weight in actions)
    names = [name for actions in module_actions.values() for name, _ in actions]
    if not module_actions or not all(module_actions.values()) or len(set(names)) != len(names):
        raise ValueError("module_actions needs at least one module, each with actions, action names unique")
    return _Vocabulary(
        module_weights=[sum(w for _, w in actions) for actions in module_actions.values()],
        action_module=np.array(module_of),
        action_weights=np.array(weights, dtype=np.float64),
        module_first_action=np.array(first),
        module_action_count=np.array(counts),
        module_values=pl.Series([*module_actions, None], dtype=pl.String),
        action_values=pl.Series([*names, "", None], dtype=pl.String),
    )


_DEMO_VOCABULARY = _vocabulary(MODULE_ACTIONS)
_TS_SUFFIXES = pl.Series(
    ["Z", "", *(f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in _TS_OFFSETS_MIN)]
)
_TS_FORM_OFFSET_MIN = np.concatenate([[0, 0], _TS_OFFSETS_MIN])


def _pick(rng: np.random.Generator, weights: Sequence[float] | np.ndarray, size: int) -> np.ndarray:
    """Indexes drawn with the given relative weights."""
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(p.size, size=size, p=p / p.sum())


def _last_active_days(rng: np.random.Generator, archetype: np.ndarray, start_day: int, end_day: int) -> np.ndarray:
    """Churned accounts stop at least 20 days before the end (or before the window)."""
    latest = max(end_day - 20, start_day - 1)
    stop = start_day - 1 + rng.integers(0, latest - start_day + 2, size=archetype.size)
    return np.where(archetype == _Archetype.CHURNED, stop, _NEVER)


def _salesforce_ids(key_prefix: str, count: int, rng: np.random.Generator) -> pl.Series:
    """18-character Salesforce-style IDs: a 3-character key prefix, 12 case-sensitive
    characters and the 3-character case checksum Salesforce appends. The 12 characters
    encode a bijective scramble of the row number, so IDs are unique without checking."""
    multiplier = rng.integers(1 << 32, 1 << 62, dtype=np.uint64) | np.uint64(1)  # odd: bijective mod 2^64
    offset = rng.integers(0, 1 << 63, dtype=np.uint64)
    x = np.arange(count, dtype=np.uint64) * multiplier + offset
    x ^= x >> np.uint64(29)  # an xorshift is bijective too and hides the sequence
    chars = np.empty((count, 18), dtype=np.uint8)
    chars[:, :3] = np.frombuffer(key_prefix.encode(), dtype=np.uint8)
    chars[:, 3] = ord("5")
    for position in range(14, 3, -1):  # 11 base-62 digits hold any 64-bit value
        chars[:, position] = _BASE62[(x % np.uint64(62)).astype(np.intp)]
        x //= np.uint64(62)
    bit_values = 1 << np.arange(5)
    for chunk in range(3):
        block = chars[:, 5 * chunk : 5 * chunk + 5]
        upper = (block >= ord("A")) & (block <= ord("Z"))
        chars[:, 15 + chunk] = _SF_CHECKSUM_CHARS[(upper * bit_values).sum(axis=1)]
    return pl.Series(chars.view("S18").ravel().astype("U18"), dtype=pl.String)


def _blank_where(expr: pl.Expr, mask: np.ndarray | pl.Expr) -> pl.Expr:
    """`expr`, or null (an empty CSV cell) where `mask` holds."""
    condition = pl.lit(pl.Series(mask)) if isinstance(mask, np.ndarray) else mask
    return pl.when(condition).then(pl.lit(None, dtype=pl.String)).otherwise(expr)


def _date_text(epoch_days: pl.Expr) -> pl.Expr:
    return epoch_days.cast(pl.Date).dt.strftime("%Y-%m-%d")


def _datetime_text(epoch_ms: pl.Expr) -> pl.Expr:
    """Salesforce's datetime form, e.g. 2025-11-21T08:15:00.000+0000."""
    return pl.from_epoch(epoch_ms, time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000")


def _epoch_day(day: date) -> int:
    return (day - _EPOCH).days
