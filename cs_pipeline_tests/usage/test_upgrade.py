"""The schema upgrade to bit sets (tables.USAGE_BIT_SETS): the modules and actions a version 7
warehouse stored as lists and maps are numbered by first delivery day, then name, and every
stored row gets its bit sets; the `modules` lists are dropped."""

from __future__ import annotations

from datetime import date

import duckdb

from cs_pipeline import migrations, tables
from cs_pipeline.warehouse import connect
from cs_pipeline_tests.support.warehouse import bit_set_values


def test_a_version_7_warehouse_gets_its_stored_modules_and_actions_as_bit_sets_as_version_8(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:  # what the code of version 7 made, with three account-days
        con.execute(tables.create_statements(version=7))
        con.execute(tables.comment_statements(version=7))
        con.execute("INSERT INTO schema_version VALUES (7, now(), 'new warehouse')")
        con.execute(
            "INSERT INTO usage_account_days VALUES "
            "('2025-11-20', '2025-11-20', 'A', 3, ['Admin', 'Billing'], MAP {'edit': 1, 'view': 2}, 'r'), "
            "('2025-11-21', '2025-11-19', 'A', 1, ['Clients'], MAP {'add': 1}, 'r'), "
            "('2025-11-21', '2025-11-21', 'B', 4, [], MAP {'edit': 3, 'zap': 1}, 'r')"
        )
    with connect(path) as con:
        assert [v for (v,) in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()] == list(
            range(7, migrations.LATEST + 1)
        )
        assert tables.USAGE_BIT_SETS == 8
        # the first delivery day's values first, by name; then the next day's
        assert con.execute("SELECT kind, value, id FROM usage_value_ids ORDER BY kind, id").fetchall() == [
            ("action", "edit", 1), ("action", "view", 2), ("action", "add", 3), ("action", "zap", 4),
            ("module", "Admin", 1), ("module", "Billing", 2), ("module", "Clients", 3),
        ]  # fmt: skip
        # bit n from the right is value n; 4 values of a kind make sets of 512 bits
        assert con.execute(
            "SELECT account_id, event_date, bit_length(module_bits), right(module_bits::VARCHAR, 4), "
            "bit_length(action_bits), right(action_bits::VARCHAR, 4) FROM usage_account_days ORDER BY ALL"
        ).fetchall() == [
            ("A", date(2025, 11, 19), 512, "0100", 512, "0100"),
            ("A", date(2025, 11, 20), 512, "0011", 512, "0011"),
            ("B", date(2025, 11, 21), None, None, 512, "1001"),
        ]
        assert con.execute(f"SELECT * FROM ({bit_set_values('action', 'action_bits')}) ORDER BY ALL").fetchall() == [
            (date(2025, 11, 20), date(2025, 11, 20), "A", 3, ["edit", "view"]),
            (date(2025, 11, 21), date(2025, 11, 19), "A", 1, ["add"]),
            (date(2025, 11, 21), date(2025, 11, 21), "B", 4, ["edit", "zap"]),
        ]
        columns = [c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE usage_account_days)").fetchall()]
        assert "modules" not in columns and columns == tables.TABLES["usage_account_days"].names(run_id=True)
