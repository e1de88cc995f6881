"""The backtest of the warehouse's own health (docs/health-lab.md), as the lab asset and the CLI
run it: the three tables, the report beside the published layer, and the key figures as text
(terminal) and as a markdown table (the asset's metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from cs_pipeline.config import PipelineConfig
from cs_pipeline.lab.backtest import BacktestResult, ProfileSummary, run_backtest
from cs_pipeline.lab.report import read_side, render_report, write_report

REPORTS_FOLDER = "reports"  # beside the published layer's folder


@dataclass(frozen=True)
class LabOutcome:
    """A backtest of the warehouse and where its report went."""

    result: BacktestResult
    report: Path


def reports_folder(config: PipelineConfig) -> Path:
    """Where the health lab writes its reports: `reports/` beside the published layer's folder."""
    assert config.published is not None  # the config always sets it (default: published/ beside the warehouse)
    return config.published.parent / REPORTS_FOLDER


def backtest_warehouse(
    con: duckdb.DuckDBPyConnection,
    config: PipelineConfig,
    *,
    start: date | None,
    end: date | None,
    horizon: int,
    run_id: str,
) -> LabOutcome:
    """Backtest the warehouse's account_health with `config`'s profiles (tables queued for the
    published layer) and write its report, reports/backtest_<start>_<end>_h<horizon>.html."""
    result = run_backtest(
        con,
        config,
        start=start,
        end=end,
        horizon=horizon,
        config_sha256=config.config_hash(),
        run_id=run_id,
        queue_publishing=True,
    )
    side = read_side(con, "production", start=result.start, end=result.end, horizon=result.horizon)
    page = render_report(
        [side],
        title=f"Health backtest {result.start} to {result.end}, horizon {result.horizon} days",
        notes=[
            f"Config {config.source_path} (sha256 {config.config_hash()[:12]}), run {run_id}. Status history "
            f"until {result.status_until}: a day is observable when the {result.horizon} days after it are in it.",
            "Lift = the churn rate of the days with a label (or against which a rule went) divided by the "
            "profile's churn rate over all its days: a score that predicts churn has lift(Poor) > 1 > lift(Good).",
        ],
    )
    name = f"backtest_{result.start}_{result.end}_h{result.horizon}.html"
    return LabOutcome(result, write_report(reports_folder(config) / name, page))


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _lead(summary: ProfileSummary) -> str:
    if summary.lead_days_quartiles is None:
        return "–"
    q1, median, q3 = summary.lead_days_quartiles
    return f"{median:g} d ({q1:g}–{q3:g})"


def _recall(summary: ProfileSummary) -> str:
    return f"{_number(summary.recall)} ({summary.flagged}/{summary.churns})" if summary.churns else "–"


def _rules(rules: tuple[tuple[str, float], ...]) -> str:
    return "; ".join(f"{rule} ({lift:.2f})" for rule, lift in rules) or "–"


def summary_lines(outcome: LabOutcome) -> list[str]:
    """The terminal's summary: per profile, lifts, recall, lead time, the extreme rules; the report."""
    result = outcome.result
    lines = [
        f"Backtest {result.start} to {result.end}, horizon {result.horizon} days "
        f"(status history until {result.status_until}; profile * is all profiles):"
    ]
    for p in result.profiles:
        lines.append(
            f"  {p.profile}: {p.days} scored observable days, {p.positive_days} positive; lift Poor "
            f"{_number(p.lift_poor)}, Good {_number(p.lift_good)}; recall {_recall(p)}; median lead time {_lead(p)}"
        )
        if p.top_rules:
            lines.append(f"      highest lift: {_rules(p.top_rules)}")
            lines.append(f"      lowest lift:  {_rules(p.bottom_rules)}")
    lines.append(f"Report: {outcome.report}")
    return lines


def summary_markdown(result: BacktestResult) -> str:
    """The key figures per profile as a markdown table (the lab asset's metadata)."""
    rows = [
        "| profile | scored observable days | positive | lift Poor | lift Good | recall | median lead time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {p.profile} | {p.days} | {p.positive_days} | {_number(p.lift_poor)} | {_number(p.lift_good)} | "
        f"{_recall(p)} | {_lead(p)} |"
        for p in result.profiles
    ]
    return "\n".join(rows)
