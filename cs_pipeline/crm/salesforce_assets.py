"""Salesforce extraction assets (crm.source: salesforce): one mirror table per mapped object,
kept incrementally; crm_snapshot reads them."""

import dagster as dg

from cs_pipeline.assets_common.declare import TRANSIENT_RETRIES, materialization, warehouse_asset
from cs_pipeline.assets_common.settings import PipelineSettings
from cs_pipeline.crm.mapping import mapped_fields
from cs_pipeline.crm.salesforce_extraction import (
    RequestLimitExceeded,
    SalesforceResource,
    SalesforceSourceError,
    mirror_table,
    sync_object,
)
from cs_pipeline.warehouse import WarehouseResource


class SalesforceSyncConfig(dg.Config):
    """Run config of a Salesforce sync asset."""
    full_refresh: bool = False  # fetch every record again instead of those changed since the bookmark


def _build_sync_asset(object_name: str) -> dg.AssetsDefinition:
    table = mirror_table(object_name)

    @warehouse_asset(
        name=table,
        group="salesforce",
        kinds={"salesforce"},
        retry_policy=TRANSIENT_RETRIES,
        description=f"Salesforce {object_name} records (the mapped fields), mirrored in {table}: records "
        "modified since the bookmark minus the overlap are upserted, deleted ones removed.",
    )
    def sync(
        context: dg.AssetExecutionContext,
        config: SalesforceSyncConfig,
        settings: PipelineSettings,
        salesforce: SalesforceResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        fields, optional_fields = mapped_fields(settings.config)[object_name]
        try:
            connection = salesforce.open()
            with warehouse.connection() as con:
                result = sync_object(
                    connection,
                    con,
                    object_name=object_name,
                    fields=fields,
                    optional_fields=optional_fields,
                    overlap_minutes=salesforce.overlap_minutes,
                    full_refresh=config.full_refresh,
                    run_id=context.run.run_id,
                )
                materialized = materialization(
                    con,
                    table,
                    result.rows,
                    {
                        "records_fetched": result.fetched,
                        "rows_upserted": result.upserted,
                        "rows_deleted": result.deleted,
                        "pages": result.pages,
                        "full_refresh": result.mode == "full",
                        "bulk_api": result.api == "bulk",
                        "bookmark": str(result.bookmark),
                    },
                )
        except RequestLimitExceeded as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None  # retrying now fails the same way
        except SalesforceSourceError as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info(
            f"{object_name}: {result.mode} sync through {result.api} ({result.pages} page(s)): "
            f"{result.upserted} upserted, {result.deleted} deleted, {result.rows} mirrored"
        )
        return materialized

    return sync


def build_salesforce_assets() -> list[dg.AssetsDefinition]:
    """One mirror asset per Salesforce object the CRM mapping reads (Account, Asset, Contact)."""
    return [_build_sync_asset(object_name) for object_name in ("Account", "Asset", "Contact")]
