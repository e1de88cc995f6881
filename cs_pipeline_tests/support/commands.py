"""`cs-pipeline` commands a test runs in a session of their own, their output read line by
line as it comes (to kill them at a chosen moment), and the public tables they leave."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from cs_pipeline.publish import PUBLISHED
from cs_pipeline_tests.support.processes import STARTED_SESSIONS
from cs_pipeline_tests.support.warehouse import read_only

# no command may take longer: a hang fails the test instead of stalling the suite
COMMAND_TIMEOUT = 240


class Command:
    """`cs-pipeline` in a process group of its own, its output read line by line as it comes."""

    def __init__(self, root: Path, *arguments: str, extra_env: dict[str, str] | None = None):
        env = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home"), **(extra_env or {})}
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cs_pipeline.cli", "--config", str(root / "cs_pipeline.yaml"), *arguments],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        STARTED_SESSIONS.add(self.process.pid)  # conftest checks that none is left behind
        self.lines: list[tuple[float, str]] = []  # (seconds since start, line) of stdout and stderr
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))

    def wait_for_line(self, starting: str, timeout: float = COMMAND_TIMEOUT) -> None:
        """Return once the command printed a line starting so; fail when it ended without or
        the time is up."""
        deadline = time.monotonic() + timeout
        while not any(line.startswith(starting) for _, line in self.lines):
            ended = self.process.poll() is not None and not any(reader.is_alive() for reader in self._readers)
            assert not ended, f"the command ended (exit {self.process.returncode}) without {starting!r}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no line {starting!r} in {timeout} s:\n{self.text()}"
            time.sleep(0.01)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def wait(self) -> subprocess.CompletedProcess:
        try:
            self.process.wait(timeout=COMMAND_TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.kill()
            for reader in self._readers:
                reader.join(timeout=10)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, self.text(), self.text())

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def public_tables(root: Path) -> dict[str, list[tuple]]:
    """Every public table's rows (run_id aside), sorted, from the warehouse and the published layer."""
    tables = {}
    with read_only(root) as con:
        for table in PUBLISHED:
            tables[table] = con.execute(f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY ALL").fetchall()
    with read_only(root / "published" / "analytics.duckdb") as con:
        for table in PUBLISHED:
            tables[f"published {table}"] = con.execute(
                f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY ALL"
            ).fetchall()
    return tables
