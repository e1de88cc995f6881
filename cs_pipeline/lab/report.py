"""The health lab's report (docs/health-lab.md#report): one self-contained HTML page of charts,
made to be looked at. Plotly draws them; its JavaScript is inlined once in the page, so the
page works offline (no script, style or font is fetched).

A report shows one or more *sides*, each a backtest of some health relation: a backtest has
one (production); a simulation passes two (production and its draft) and gets each chart with
both, side by side:

    side = read_side(con, "production", start=..., end=..., horizon=...)   # from the tables
    html = render_report([side], title=..., notes=[...])
    path = write_report(folder / "backtest-....html", html)

The charts, in order (REPORT_CHARTS of them; the e2e test counts them in Chromium):
the health mix over time; the lift per label; the lift per rule; the distribution of lead
times; the health of the churned accounts over the horizon before they churned.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from cs_pipeline.lab.backtest import BacktestInputs
from cs_pipeline.warehouse import read_sql, set_variables

REPORT_CHARTS = 5
LABEL_COLOURS = {"Good": "#2e7d32", "Average": "#f9a825", "Poor": "#c62828", "No value": "#9e9e9e"}
SIDE_COLOURS = ("#1f4e79", "#e07b00")  # production, draft


@dataclass(frozen=True)
class ReportSide:
    """One backtest as the report draws it (frames as read_side returns them)."""

    name: str  # "production", "draft"
    health_mix: pl.DataFrame  # date, health, accounts: every label, No value included
    labels: pl.DataFrame  # health_backtest: profile, health, days, positive_days, churn_rate, lift
    rules: pl.DataFrame  # health_backtest_rules: profile, rule, against_days, positive_days, churn_rate, lift
    churns: pl.DataFrame  # health_backtest_churns: account_id, churn_date, flagged, lead_days
    before_churn: pl.DataFrame  # days_to_churn (-1: the day before), health, accounts: the churned accounts


def read_side(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    start: date,
    end: date,
    horizon: int,
    inputs: BacktestInputs = BacktestInputs(),  # noqa: B008 - frozen, so one shared default is safe
    output: str = "main",
) -> ReportSide:
    """The side `name` of a report: the backtest of (start, end, horizon) in `output`, and the
    health of `inputs.health` it was made from."""
    set_variables(con, backtest_start=start, backtest_end=end, backtest_horizon=horizon)
    queries = read_sql("lab/report.sql").format(health=inputs.health, output=output).split(";\n")
    frames = [con.sql(query).pl() for query in queries if query.strip()]
    health_mix, labels, rules, churns, before_churn = frames
    return ReportSide(name, health_mix, labels, rules, churns, before_churn)


def _labels_stacked(sides: Sequence[ReportSide], frame_of: str, x: str, title: str) -> go.Figure:
    """Accounts per label stacked over `x`, one panel per side, one shared legend."""
    figure = make_subplots(rows=len(sides), cols=1, shared_xaxes=True, subplot_titles=[s.name for s in sides])
    for row, side in enumerate(sides, start=1):
        for label, colour in LABEL_COLOURS.items():
            frame = getattr(side, frame_of).filter(pl.col("health") == label)
            figure.add_trace(
                go.Bar(
                    x=frame[x].to_list(),
                    y=frame["accounts"].to_list(),
                    name=label,
                    marker_color=colour,
                    legendgroup=label,
                    showlegend=row == 1,
                ),
                row=row,
                col=1,
            )
    figure.update_layout(barmode="stack", title=title)
    return figure


def _lift_bars(sides: Sequence[ReportSide], frame_of: str, category: Sequence[str], title: str) -> go.Figure:
    """Lift per category (one bar per side), horizontal, with the line lift = 1."""
    figure = go.Figure()
    for side, colour in zip(sides, SIDE_COLOURS, strict=False):
        frame = getattr(side, frame_of).filter(pl.col("lift").is_not_null())
        names = [" · ".join(str(v) for v in values) for values in frame.select(category).iter_rows()]
        figure.add_trace(
            go.Bar(y=names, x=frame["lift"].to_list(), orientation="h", name=side.name, marker_color=colour)
        )
    figure.add_vline(x=1, line_dash="dash", line_color="#555")
    figure.update_layout(title=title, barmode="group", yaxis={"autorange": "reversed"})
    return figure


def _lead_times(sides: Sequence[ReportSide]) -> go.Figure:
    """Flagged churns per lead time in days, from 0: one bar per day (a histogram's automatic bins
    would stretch one lead time over the whole axis)."""
    figure = go.Figure()
    longest = 0
    for side, colour in zip(sides, SIDE_COLOURS, strict=False):
        counts = side.churns.filter(pl.col("flagged")).group_by("lead_days").len().sort("lead_days")
        longest = max([longest, *counts["lead_days"].to_list()])
        figure.add_trace(
            go.Bar(x=counts["lead_days"].to_list(), y=counts["len"].to_list(), name=side.name, marker_color=colour)
        )
    figure.update_layout(
        title="Lead time of the flagged churns (days from the first Poor day to the churn)",
        barmode="group",
        xaxis={"title": "lead time (days)", "range": [0, longest + 1]},
        yaxis_title="churns",
    )
    return figure


def charts(sides: Sequence[ReportSide]) -> list[go.Figure]:
    """The report's figures, in page order (REPORT_CHARTS of them)."""
    return [
        _labels_stacked(sides, "health_mix", "date", "Health mix over time (accounts per label and day)"),
        _lift_bars(sides, "labels", ["profile", "health"], "Lift per label (churn rate / the profile's; > 1: riskier)"),
        _lift_bars(sides, "rules", ["profile", "rule"], "Lift per rule (the days a rule is against the account)"),
        _lead_times(sides),
        _labels_stacked(
            sides,
            "before_churn",
            "days_to_churn",
            "Health of the churned accounts on each day before they churned (days before the churn)",
        ),
    ]


def _key_figures(side: ReportSide) -> str:
    """An HTML table: per profile, the lift of Poor and Good and the scored observable days."""
    rows = []
    for (profile,) in side.labels.select("profile").unique(maintain_order=True).iter_rows():
        of = side.labels.filter(pl.col("profile") == profile)
        lift = dict(of.select("health", "lift").iter_rows())
        shown = {h: "–" if lift.get(h) is None else f"{lift[h]:.2f}" for h in ("Poor", "Good")}
        rows.append(
            f"<tr><td>{html.escape(profile)}</td><td>{of['days'].sum()}</td><td>{of['positive_days'].sum()}</td>"
            f"<td>{shown['Poor']}</td><td>{shown['Good']}</td></tr>"
        )
    flagged = side.churns.filter(pl.col("flagged")).height
    recall = f"{flagged}/{side.churns.height}" if side.churns.height else "no churn"
    return (
        f"<h3>{html.escape(side.name)}: recall {recall}</h3><table><tr><th>profile</th><th>scored observable days"
        "</th><th>positive</th><th>lift Poor</th><th>lift Good</th></tr>" + "".join(rows) + "</table>"
    )


def render_report(sides: Sequence[ReportSide], *, title: str, notes: Sequence[str] = ()) -> str:
    """The page: `title`, `notes` (one paragraph each), the key figures of each side, the charts."""
    if not sides:
        raise ValueError("a report needs at least one side")
    parts = [
        figure.to_html(full_html=False, include_plotlyjs=index == 0, config={"displaylogo": False})
        for index, figure in enumerate(charts(sides))
    ]
    paragraphs = "".join(f"<p>{html.escape(note)}</p>" for note in notes)
    tables = "".join(_key_figures(side) for side in sides)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.chart {{ margin: 1.5em 0; }}
</style></head>
<body><h1>{html.escape(title)}</h1>{paragraphs}{tables}
{"".join(f'<div class="chart">{part}</div>' for part in parts)}
</body></html>
"""


def write_report(path: Path, page: str) -> Path:
    """Write `page` to `path` (folders made), under a temporary name renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, path)
    return path
