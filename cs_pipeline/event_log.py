"""The event log storage of the CLI's embedded Dagster instance: Dagster's consolidated SQLite
event log, its connections kept open and its commits not synced to disk one by one.

Why: a range run stores a few events per partition (its materialisation, the planned one, its
check evaluations), each in transactions of its own. Dagster's ConsolidatedSqliteEventLogStorage
opens a new SQLite connection for each; closing it, the last connection to a database in WAL
mode, checkpoints the log into the database file and syncs it, and each commit syncs the log
first (SQLite's default `synchronous = FULL`): about 8 of the 10 ms of storing an event, a
third of a demo backfill's time (README, Performance). Here the connections stay open in a
pool for the life of the process, so closing one does not checkpoint (SQLite checkpoints when
the log reaches 1,000 pages), and commits run with `synchronous = NORMAL`, which in WAL mode
syncs at checkpoints only.

What it costs: nothing when a process is killed (SIGKILL, the OOM killer): a commit is in the
log file at once, and the next connection replays it. A power cut or a kernel crash may lose the
events committed since the last checkpoint (SQLite keeps the database consistent: it loses
transactions, never half of one); the warehouse holds the rows of those partitions, the UI no
longer shows their materialisations, and running their days again records them (README, Crash
safety and waits).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as db
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS

# what a commit waits for (https://www.sqlite.org/pragma.html#pragma_synchronous): in WAL mode,
# NORMAL syncs the log before each checkpoint and the database after it, FULL at every commit too
SYNCHRONOUS = "NORMAL"


class PooledSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """ConsolidatedSqliteEventLogStorage (same file, tables and config: `base_dir`) whose
    connections come from a pool of this process, each set to `synchronous = NORMAL`, instead of
    a new connection per transaction. A process forked from this one opens its own (a SQLite
    connection must not cross a fork)."""

    def __init__(self, base_dir: str, inst_data: object | None = None):
        self._engine: db.Engine | None = None
        self._engine_pid: int | None = None
        super().__init__(base_dir, inst_data)

    def _pooled_engine(self) -> db.Engine:
        if self._engine is None or self._engine_pid != os.getpid():
            # no limit on connections open at once (the UI's threads): none waits for another's
            engine = db.create_engine(
                self._conn_string, max_overflow=-1, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
            )
            db.event.listen(engine, "connect", _set_synchronous)
            self._engine, self._engine_pid = engine, os.getpid()
        return self._engine

    @contextmanager
    def _pooled_transaction(self) -> Iterator[db.Connection]:
        with self._pooled_engine().connect() as conn, conn.begin():
            yield conn

    def run_connection(self, run_id: str | None) -> AbstractContextManager[db.Connection]:  # noqa: ARG002 (one database for all runs)
        """A pooled connection in a transaction (the events of every run are in one database)."""
        return self._pooled_transaction()

    def index_connection(self) -> AbstractContextManager[db.Connection]:
        """A pooled connection in a transaction."""
        return self._pooled_transaction()

    def has_table(self, table_name: str) -> bool:
        """Whether the database has the table, asked on a pooled connection (Dagster asks before
        storing each asset event and check evaluation; its own opens an engine and a connection)."""
        engine = self._pooled_engine()
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def dispose(self) -> None:
        """Stop watching the file (Dagster's own) and close the pooled connections."""
        super().dispose()
        if self._engine is not None and self._engine_pid == os.getpid():
            self._engine.dispose()


def _set_synchronous(connection: sqlite3.Connection, _record: object) -> None:
    connection.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
