"""The metrics domain's contract with the roll-ups: the window-30 users of the day the
connection built them for, and a clear error for any other day or connection."""

from datetime import date

import pytest

from cs_pipeline.metrics.window_users import TABLE, WindowUsersMissing, built, window_users
from cs_pipeline.warehouse import connect

D = date(2025, 11, 20)


def test_the_window_users_are_those_of_the_day_they_were_built_for(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as con:
        built(con, D)
        assert window_users(con, D) == TABLE
        with pytest.raises(WindowUsersMissing, match=r"no window-30 users of 2025-11-21 .*built for 2025-11-20"):
            window_users(con, date(2025, 11, 21))


def test_a_connection_where_the_metrics_were_not_computed_has_no_window_users(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as con:
        with pytest.raises(WindowUsersMissing, match=r"no window-30 users of 2025-11-20 .*built for None"):
            window_users(con, D)
