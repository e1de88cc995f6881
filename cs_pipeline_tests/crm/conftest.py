"""Fixtures of the crm domain's tests."""

import pytest

from cs_pipeline.config import load_config
from cs_pipeline.warehouse import connect
from cs_pipeline_tests.support.tenant import write_tenant


@pytest.fixture
def appendix_tenant(tmp_path):
    """The appendix tenant's folder, its config and a connection to its (empty) warehouse."""
    config = load_config(write_tenant(tmp_path))
    with connect(config.warehouse) as con:
        yield tmp_path, config, con
