"""A stoppable step (cs_pipeline/stopping.py) signalled in the middle of a long DuckDB statement:
the statement is cancelled at once, its transaction rolled back, what was committed before kept,
and the step fails naming the signal and where it was. In a process of its own (a real signal;
the stop request lasts as long as the process). The whole command, the run and the UI's Terminate
are in pipeline/test_crash_safety.py and pipeline/test_webserver.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from cs_pipeline_tests.support import processes
from cs_pipeline_tests.support.warehouse import rows

STEP = """
import json, sys, time
import dagster as dg
from cs_pipeline import stopping
from cs_pipeline.transactions import transaction
from cs_pipeline.warehouse import connect

con = connect(sys.argv[1])
con.execute("CREATE TABLE days (day DATE)")
con.execute("INSERT INTO days VALUES ('2025-11-01')")
try:
    with stopping.stoppable_step() as progress:
        progress.reached("2025-11-02 (days)")
        with transaction(con):
            con.execute("INSERT INTO days VALUES ('2025-11-02')")
            print("running", flush=True)
            started = time.monotonic()
            # minutes of work: the signal comes long before its end
            con.execute("SELECT count(*) FROM range(100000000000) t(n) WHERE hash(n) % 7 = 3").fetchall()
except dg.Failure as failure:
    print(json.dumps({"failure": failure.description, "after": time.monotonic() - started}), flush=True)
"""


def test_a_signal_cancels_the_running_statement_rolls_its_transaction_back_and_fails_the_step(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with processes.started(
        [sys.executable, "-c", STEP, str(warehouse)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout.readline().strip() == "running", process.stderr.read()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        outcome = json.loads(process.stdout.readline())
        process.wait(timeout=30)

    assert outcome["failure"].startswith(
        "stopped by SIGTERM at 2025-11-02 (days): its work was cancelled and its transaction rolled back"
    )
    assert outcome["after"] < 3  # 0.5 s of work before the signal
    print(f"the statement ended {outcome['after'] - 0.5:.3f} s after the signal")
    assert rows(warehouse, "SELECT day::VARCHAR FROM days") == [("2025-11-01",)]
