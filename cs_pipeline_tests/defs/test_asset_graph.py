"""A snapshot of the asset graph the code location builds for the bundled demo config, and for
its Salesforce variant (`crm.source: salesforce`, which adds the extraction assets): asset keys,
groups, partitions, dependencies (with their partition mappings), asset checks (and whether
they block), the steps that materialise them (which assets and checks each step holds, its
backfill policy), jobs (what they select, or, a job of ops, its ops; their executor), schedules and sensors.

A change to the graph fails this test with a diff against the committed snapshot,
`snapshots/asset_graph.json`. When the change is meant, write the new snapshot and commit it
with the change, so the review shows how the graph moved:

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest cs_pipeline_tests/defs/test_asset_graph.py
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from cs_pipeline.config import load_config
from cs_pipeline.definitions import build_definitions
from cs_pipeline_tests.support import DEMO

SNAPSHOT = Path(__file__).with_name("snapshots") / "asset_graph.json"
UPDATE = "UPDATE_SNAPSHOTS"


def describe_partitions(partitions: dg.PartitionsDefinition | None) -> dict[str, Any] | None:
    if partitions is None:
        return None
    if isinstance(partitions, dg.MultiPartitionsDefinition):
        return {
            "kind": "multi",
            "dimensions": {d.name: describe_partitions(d.partitions_def) for d in partitions.partitions_defs},
        }
    if isinstance(partitions, dg.TimeWindowPartitionsDefinition):
        return {
            "kind": "time_window",
            "cron_schedule": partitions.cron_schedule,
            "start": partitions.start.isoformat(),
            "end": partitions.end.isoformat() if partitions.end else None,
            "timezone": partitions.timezone,
            "fmt": partitions.fmt,
            "end_offset": partitions.end_offset,
        }
    if isinstance(partitions, dg.StaticPartitionsDefinition):
        return {"kind": "static", "keys": partitions.get_partition_keys()}  # in their order: it is meaningful
    return {"kind": type(partitions).__name__}


def describe_mapping(mapping: dg.PartitionMapping) -> dict[str, Any]:
    if isinstance(mapping, dg.MultiPartitionMapping):
        return {
            "kind": "multi",
            "by_upstream_dimension": {
                upstream: {"dimension": to.dimension_name, "mapping": describe_mapping(to.partition_mapping)}
                for upstream, to in mapping.downstream_mappings_by_upstream_dimension.items()
            },
        }
    if isinstance(mapping, dg.TimeWindowPartitionMapping):
        return {
            "kind": "time_window",
            "start_offset": mapping.start_offset,
            "end_offset": mapping.end_offset,
            "allow_nonexistent_upstream_partitions": mapping.allow_nonexistent_upstream_partitions,
        }
    if isinstance(mapping, dg.AllPartitionMapping):
        return {"kind": "all"}
    return {"kind": type(mapping).__name__}


def describe_job(job: Any, graph: Any) -> dict[str, Any]:
    """An asset job by the assets and checks it selects; a job of ops (the simulation) by its ops."""
    if isinstance(job, dg.JobDefinition):
        return {"ops": sorted(node.name for node in job.graph.nodes)}
    return {
        "assets": sorted(key.to_user_string() for key in job.selection.resolve(graph)),
        "checks": sorted(key.to_user_string() for key in job.selection.resolve_checks(graph)),
    }


def graph_snapshot(defs: dg.Definitions) -> dict[str, Any]:
    """What the snapshot pins, as plain JSON values: no code versions, no timestamps, no paths."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for node in graph.asset_nodes:
        mappings = node.partition_mappings
        assets[node.key.to_user_string()] = {
            "group": node.group_name,
            "partitions": describe_partitions(node.partitions_def),
            # the upstream assets; an explicit partition mapping where there is one, else null (Dagster's default)
            "deps": {
                parent.to_user_string(): describe_mapping(mappings[parent]) if parent in mappings else None
                for parent in node.parent_keys
            },
            "checks": {key.name: {"blocking": graph.get(key).blocking} for key in node.check_keys},
        }
    steps = {
        definition.node_def.name: {
            "assets": sorted(key.to_user_string() for key in definition.keys),
            "checks": sorted(key.to_user_string() for key in definition.check_keys),
            "backfill_policy": str(definition.backfill_policy.policy_type) if definition.backfill_policy else None,
        }
        for definition in defs.assets
    }
    jobs = {
        job.name: {**describe_job(job, graph), "executor": defs.resolve_job_def(job.name).executor_def.name}
        for job in defs.jobs
    }
    schedules = {
        schedule.name: {
            "cron_schedule": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
            "default_status": schedule.default_status.value,
        }
        for schedule in defs.schedules
    }
    sensors = {
        sensor.name: {
            "type": type(sensor).__name__,
            "jobs": sorted(target.job_name for target in sensor.targets),
            "default_status": sensor.default_status.value,
        }
        for sensor in defs.sensors
    }
    return {"assets": assets, "steps": steps, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def demo_config_with_salesforce(folder: Path) -> Path:
    """The bundled demo config with `crm.source: salesforce`, beside a copy of its sql/."""
    shutil.copytree(DEMO / "sql", folder / "sql")
    config = folder / "cs_pipeline.yaml"
    text = (DEMO / "cs_pipeline.yaml").read_text()
    assert "  source: files" in text
    config.write_text(text.replace("  source: files", "  source: salesforce", 1))
    return config


def differences(expected: Any, found: Any, path: str = "") -> list[str]:
    """One line per value that differs, named by its path: `demo / assets / users / group: 'a' -> 'b'`."""
    if isinstance(expected, dict) and isinstance(found, dict):
        lines = []
        for key in sorted(expected.keys() | found.keys()):
            where = f"{path} / {key}" if path else key
            if key not in found:
                lines.append(f"{where}: gone")
            elif key not in expected:
                lines.append(f"{where}: new")
            else:
                lines.extend(differences(expected[key], found[key], where))
        return lines
    return [] if expected == found else [f"{path}: {json.dumps(expected)} -> {json.dumps(found)}"]


def as_text(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def test_the_asset_graph_matches_the_snapshot(tmp_path):
    found = as_text({
        "demo": graph_snapshot(build_definitions(load_config(DEMO / "cs_pipeline.yaml"))),
        "demo_salesforce": graph_snapshot(build_definitions(load_config(demo_config_with_salesforce(tmp_path)))),
    })  # fmt: skip
    if os.environ.get(UPDATE) == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(found)
        return
    expected = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    if found != expected:
        changed = differences(json.loads(expected or "{}"), json.loads(found))
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), found.splitlines(keepends=True),
                fromfile=f"{SNAPSHOT.name} (committed)", tofile=f"{SNAPSHOT.name} (built now)",
            )
        )  # fmt: skip
        pytest.fail(
            f"The asset graph differs from {SNAPSHOT}:\n" + "\n".join(changed) + f"\n\n{diff}\n"
            f"If the change is meant, write the new snapshot with {UPDATE}=1 "
            f"(`{UPDATE}=1 .venv/bin/python -m pytest {Path(__file__).relative_to(DEMO.parent)}`) "
            "and commit it with the change.",
            pytrace=False,
        )
