"""The simulation as a Dagster job (`simulate_draft`), so that it can be launched from the UI: one
op, no asset, so that no production asset's history changes. Its run config names the draft
file; the CLI's `cs-pipeline simulate` runs this job too."""

from datetime import date

import dagster as dg
from pydantic import Field

from cs_pipeline.assets_common.settings import PipelineSettings, audit_tags
from cs_pipeline.config import ConfigError, PipelineConfig, load_config
from cs_pipeline.lab.backtest import DEFAULT_HORIZON
from cs_pipeline.lab.simulate import SimulationError, simulate, summary_lines

SIMULATE_JOB = "simulate_draft"
SIMULATE_OP = "simulate"
SUMMARY_KEY = "summary"


class SimulateConfig(dg.Config):
    """The run config of a simulation: which draft, which days, which horizon."""

    draft: str = Field(description="the draft config file (YAML, a whole config, validated as the pipeline's)")
    start: str | None = Field(default=None, description="the first day (YYYY-MM-DD); default: production's first")
    end: str | None = Field(default=None, description="the last day (YYYY-MM-DD); default: production's last")
    horizon: int = Field(default=DEFAULT_HORIZON, description="the backtest's horizon, in days")


def _day(config: SimulateConfig, key: str) -> date | None:
    text = getattr(config, key)
    try:
        return None if text is None else date.fromisoformat(text)
    except ValueError:
        raise dg.Failure(f"run config ops.{SIMULATE_OP}.config.{key}: {text!r} is not a date (YYYY-MM-DD)") from None


@dg.op(
    name=SIMULATE_OP,
    out=dg.Out(dg.Nothing),
    description="Rescore production's history with a draft config and compare (docs/health-lab.md#simulation); "
    "writes only the simulation database beside the published layer.",
)
def simulate_draft(context: dg.OpExecutionContext, config: SimulateConfig, settings: PipelineSettings):
    """Run the simulation of the draft the run config names; its figures as the output's metadata."""
    start, end = _day(config, "start"), _day(config, "end")
    try:
        draft = load_config(config.draft)
        result = simulate(
            settings.config,
            draft,
            start=start,
            end=end,
            horizon=config.horizon,
            run_id=context.run_id,
            say=context.log.warning,
        )
    except (ConfigError, SimulationError, ValueError) as exc:
        raise dg.Failure(str(exc)) from None
    table = "| label | production | draft |\n|---|---:|---:|\n" + "\n".join(
        f"| {label} | {production} | {draft} |" for label, (production, draft) in result.label_totals.items()
    )
    yield dg.Output(
        None,
        metadata={
            "days": (result.end - result.start).days + 1,
            "changed_labels": result.changed_labels,
            "changed_accounts": result.changed_accounts,
            "recomputed_metrics": len(result.plan.recomputed),
            "ignored_settings": len(result.plan.ignored),
            "seconds": result.seconds,
            "label_totals": dg.MetadataValue.md(table),
            "database": dg.MetadataValue.path(str(result.database)),
            "report": dg.MetadataValue.path(str(result.report)),
            SUMMARY_KEY: dg.MetadataValue.text("\n".join(summary_lines(result))),
        },
    )


def build_simulate_job(config: PipelineConfig) -> dg.JobDefinition:
    """The simulation job of the code location of `config` (production), tagged for audit as
    the pipeline's jobs are."""

    @dg.job(
        name=SIMULATE_JOB,
        tags=audit_tags(config),
        description="Simulate a draft config on history (docs/health-lab.md#simulation): run config "
        f"ops.{SIMULATE_OP}.config.draft names the draft file",
    )
    def simulate_job() -> None:
        simulate_draft()

    return simulate_job
