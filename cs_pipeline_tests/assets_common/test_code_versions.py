"""Each asset's code version digests the sources it runs, not the whole package."""

from __future__ import annotations

import shutil

from cs_pipeline.assets_common.code_versions import code_version, digest, source_files
from cs_pipeline.config import load_config
from cs_pipeline.definitions import build_definitions
from cs_pipeline.warehouse import PACKAGE_DIR, sql_file
from cs_pipeline_tests.support import DEMO

USAGE = "cs_pipeline.usage.assets"
HEALTH = "cs_pipeline.health.assets"
REPOSITORY = PACKAGE_DIR.parent


def test_assets_of_different_domains_get_different_code_versions():
    nodes = build_definitions(load_config(DEMO / "cs_pipeline.yaml")).resolve_asset_graph().asset_nodes
    versions = {node.key.path[0]: node.code_version for node in nodes}
    assert versions["usage_events"] == code_version(USAGE)
    assert versions["account_health"] == code_version(HEALTH)
    assert versions["usage_events"] != versions["account_health"]


def test_an_asset_runs_its_own_sql_and_modules_not_the_demo_generator():
    usage, health = source_files([USAGE]), source_files([HEALTH])
    assert sql_file("usage/store_delivery.sql") in usage
    assert sql_file("usage/store_delivery.sql") not in health
    generator = REPOSITORY / "cs_pipeline/demo/generator.py"
    assert generator not in usage and generator not in health


def test_editing_one_assets_sql_changes_only_its_version(tmp_path):
    # the sources of both assets, copied with the repository's layout
    copies = {}
    for name in (USAGE, HEALTH):
        copies[name] = set()
        for path in source_files([name]):
            copy = tmp_path / path.relative_to(REPOSITORY)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
            copies[name].add(copy)
    before = {name: digest(files, tmp_path) for name, files in copies.items()}
    with (tmp_path / "cs_pipeline/usage/sql/store_delivery.sql").open("a") as sql:
        sql.write("\n-- edited\n")
    after = {name: digest(files, tmp_path) for name, files in copies.items()}
    assert after[USAGE] != before[USAGE]
    assert after[HEALTH] == before[HEALTH]


def test_an_assets_sources_follow_imports_through_modules_that_other_assets_share():
    # usage.assets -> usage.ingest -> `from cs_pipeline import publish` -> cs_pipeline.tables: each
    # module is parsed once per process, and its references hold for every asset that reaches it
    usage, health = source_files([USAGE]), source_files([HEALTH])
    for shared in ("cs_pipeline/publish.py", "cs_pipeline/tables.py", "cs_pipeline/warehouse.py"):
        assert REPOSITORY / shared in usage and REPOSITORY / shared in health
    assert REPOSITORY / "cs_pipeline/usage/ingest.py" in usage
    assert REPOSITORY / "cs_pipeline/usage/ingest.py" not in health
