"""Fixtures of the usage tests: a landing zone and a warehouse in the test's tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from cs_pipeline.warehouse import connect


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def con(tmp_path: Path):
    connection = connect(tmp_path / "w.duckdb")
    yield connection
    connection.close()
