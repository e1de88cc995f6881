"""How an asset of its own step is declared (`warehouse_asset`: the Salesforce mirrors) and what a
warehouse asset returns (`materialization`): the pool, kinds, code version and standard metadata every
asset writing the DuckDB warehouse shares. The daily assets are declared in range_step.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import dagster as dg
import duckdb

from cs_pipeline.assets_common.code_versions import code_version
from cs_pipeline.warehouse import DUCKDB_POOL, slice_version, table_metadata

# for errors that can pass (a warehouse held by another process, a busy API); never for a bad input
TRANSIENT_RETRIES = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)


def warehouse_asset(
    *,
    group: str,
    description: str,
    kinds: Iterable[str] = (),
    name: str | None = None,
    partitions: dg.PartitionsDefinition | None = None,
    deps: Sequence[object] | None = None,
    retry_policy: dg.RetryPolicy | None = None,
) -> Callable[[Callable[..., dg.MaterializeResult]], dg.AssetsDefinition]:
    """Declare an asset that writes the warehouse: in the duckdb pool, of kind duckdb (and `kinds`),
    its code version that of the module defining it (assets_common/code_versions.py)."""

    def declare(compute: Callable[..., dg.MaterializeResult]) -> dg.AssetsDefinition:
        return dg.asset(
            name=name,
            partitions_def=partitions,
            deps=deps,
            pool=DUCKDB_POOL,
            code_version=code_version(compute.__module__),
            group_name=group,
            kinds={"duckdb", *kinds},
            retry_policy=retry_policy,
            description=description,
        )(compute)

    return declare


def materialization(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: int,
    metadata: dict[str, object],
    *,
    version_table: str | None = None,
    where: str = "TRUE",
    params: list | None = None,
    asset_key: str | None = None,
) -> dg.MaterializeResult:
    """The result of an asset that wrote `table` (`rows` rows in it): the standard table metadata,
    then the asset's own `metadata`; its data version, the digest of the rows of `version_table`
    (default `table`) matching `where`."""
    return dg.MaterializeResult(
        asset_key=asset_key,
        data_version=slice_version(con, version_table or table, where, params),
        metadata={**table_metadata(con, table, rows), **metadata},
    )
