"""The health lab's asset: the backtest of the warehouse's health (docs/health-lab.md), unpartitioned,
in a job of its own (not the daily chain's: it reads the whole history)."""

from datetime import date

import dagster as dg

from cs_pipeline.assets_common.declare import materialization, warehouse_asset
from cs_pipeline.assets_common.jobs import LAB_JOB
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.settings import PipelineSettings
from cs_pipeline.lab.backtest import ALL_PROFILES, DEFAULT_HORIZON
from cs_pipeline.lab.health_lab import backtest_warehouse, summary_lines, summary_markdown
from cs_pipeline.warehouse import WarehouseResource

JOB = LAB_JOB


class BacktestRange(dg.Config):
    """The backtest's days and horizon; by default every day of account_health, 90 days."""

    start: str | None = None  # YYYY-MM-DD
    end: str | None = None
    horizon: int = DEFAULT_HORIZON


def _day(text: str | None, name: str) -> date | None:
    try:
        return None if text is None else date.fromisoformat(text)
    except ValueError:
        raise dg.Failure(f"health_backtest: run config {name} {text!r} is not a date (YYYY-MM-DD)") from None


def build(context: DomainContext) -> list[dg.AssetsDefinition]:
    """The health_backtest asset."""
    del context  # unpartitioned: it needs nothing of the code location's partitions

    @warehouse_asset(
        group="lab",
        kinds={"sql", "html"},
        deps=[dg.AssetKey(name) for name in ("account_health", "account_metrics", "account_rollups", "status_history")],
        description="The backtest of the health in the warehouse (docs/health-lab.md#backtest): churn rate "
        "and lift per profile and label (health_backtest), per rule (health_backtest_rules), recall and "
        "lead time per churn (health_backtest_churns), and the HTML report beside the published layer.",
    )
    def health_backtest(
        context: dg.AssetExecutionContext,
        config: BacktestRange,
        settings: PipelineSettings,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        with warehouse.connection() as con:
            outcome = backtest_warehouse(
                con,
                settings.config,
                start=_day(config.start, "start"),
                end=_day(config.end, "end"),
                horizon=config.horizon,
                run_id=context.run.run_id,
            )
            result = outcome.result
            everyone = next(p for p in result.profiles if p.profile == ALL_PROFILES)
            figures = {
                "scored_observable_days": everyone.days,
                "positive_days": everyone.positive_days,
                "lift_poor": everyone.lift_poor,
                "lift_good": everyone.lift_good,
                "churns": everyone.churns,
                "recall": everyone.recall,
                "median_lead_days": everyone.lead_days_quartiles[1] if everyone.lead_days_quartiles else None,
            }
            return materialization(
                con,
                "health_backtest",
                result.rows["health_backtest"],
                {
                    "start": result.start.isoformat(),
                    "end": result.end.isoformat(),
                    "horizon": result.horizon,
                    # numbers the UI plots across materialisations; an undefined figure is left out
                    **{key: value for key, value in figures.items() if value is not None},
                    "rules_rows": result.rows["health_backtest_rules"],
                    "churns_rows": result.rows["health_backtest_churns"],
                    "summary": dg.MetadataValue.md(summary_markdown(result)),
                    # what cs-pipeline backtest prints
                    "summary_text": dg.MetadataValue.text("\n".join(summary_lines(outcome))),
                    "report": dg.MetadataValue.path(str(outcome.report)),
                },
                where='"start" = ? AND "end" = ? AND horizon = ?',
                params=[result.start, result.end, result.horizon],
            )

    return [health_backtest]
