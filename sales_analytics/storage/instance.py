"""The embedded profile's Dagster instance: Dagster's SQLite storage, with the event log kept connected.

Dagster's ``SqliteEventLogStorage`` builds a new engine and connection for every event it stores. A
backfill stores one materialization (and one planned event) per partition and asset, so on a persistent
instance those connections cost more than the work: a 60-day backfill took 21.6 s against 15.5 s with
``PooledSqliteEventLogStorage``, which keeps an engine per database file (the index and the most recent
runs'). Same files and journal (WAL); a run's write is checkpointed into its file as Dagster's closing
connection did, so the UI's file watcher still sees each one (``test_instance``).

A run over a range of partitions emits its planned events and its partitions' materializations as batches.
Dagster hands a batch to the store whole only when ``DAGSTER_EVENT_BATCH_SIZE`` is set, and SQLite's store
then writes it event by event, a statement per table each: this one writes a batch in one transaction per
database file and one statement per table (storing events took 7% of a 10.95M-line backfill's samples, now 3%),
and sets the variable (``event_batch_size``) in every process that opens the instance — webserver, daemon, run workers.
Each run's file starts as a copy of an initialised empty one (Dagster creates its tables and stamps its
migration on every new run file: 5% of a backfill of short runs), and the store's commits are synced at
checkpoints rather than each one (SQLite's ``synchronous=NORMAL`` in WAL mode: an application crash loses
nothing; a power cut may lose the last events, never the file's consistency; the lake's own writes stay
synced). ``deploy/dagster.yaml`` (PostgreSQL) is untouched; ``sales-analytics demo`` and ``make ui`` write this
one.
Dagster has no public base class for instance storage: like its own storage libraries (dagster-postgres,
dagster-mysql) this subclasses the one in ``dagster._core``, held to the version setup.py pins.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, BATCH_WRITABLE_EVENTS
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine
from sqlalchemy import event as engine_events
from sqlalchemy.engine import Connection, Engine

OPEN_RUN_DATABASES = 8  # engines kept for recent runs' files: a run writes to its own and to the index
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 100  # a month's partitions of one asset in one write
# Hidden (Dagster lists a folder's ``*.db`` as its runs) and named by version: a new Dagster's migrations make a new one.
RUN_FILE_TEMPLATE = f".run-template-{dg.__version__}.db"
INDEXED_EVENTS = ASSET_EVENTS | ASSET_CHECK_EVENTS  # copied into the index, for queries across runs


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data: Any = None, event_batch_size: int = EVENT_BATCH_SIZE) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._batch = threading.local()  # the open transactions of the batch this thread is writing, if any
        self._tables_seen: set[str] = set()
        self._asset_key_columns: set[str] = set()
        os.environ.setdefault(EVENT_BATCH_SIZE_ENV, str(event_batch_size))
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        if getattr(self._batch, "stack", None) is not None:
            yield self._batch_connection(shard)
            return
        with self._db_lock, self._engine(shard).connect() as conn:
            with conn.begin():
                yield conn
            if shard != INDEX_SHARD_NAME:
                self._checkpoint(conn)

    @staticmethod
    def _checkpoint(conn: Connection) -> None:
        # A run's events go to its file's write-ahead log; Dagster's closing connection moved them into the file,
        # which the UI's watcher follows. A kept connection must do that itself.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def store_event_batch(self, events: Sequence[dg.EventLogEntry]) -> None:
        """What ``store_event`` stores of each event, in one transaction per database file (committed together or
        not at all) and one statement per table, not per event; a batch Dagster does not batch-write, event by
        event."""
        with self._db_lock, ExitStack() as stack:
            self._batch.stack, self._batch.connections = stack, {}
            try:
                if all(event.dagster_event_type in BATCH_WRITABLE_EVENTS for event in events):
                    self._store_batch(events)
                else:
                    for event in events:
                        self.store_event(event)
            finally:
                self._batch.stack = None

    def _store_batch(self, events: Sequence[dg.EventLogEntry]) -> None:
        rows = [self._event_to_row(event) for event in events]  # each event serialised once
        for run_id in dict.fromkeys(event.run_id for event in events):
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), [row for row in rows if row["run_id"] == run_id])
        indexed = [(event, row) for event, row in zip(events, rows, strict=True)
                   if event.dagster_event_type in INDEXED_EVENTS]
        if not indexed:
            return
        with self.index_connection() as conn:  # the index's copies, numbered as the cross-run queries see them
            insert = SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True)
            event_ids = conn.execute(insert, [row for _, row in indexed]).scalars().all()
            numbered = [(event, event_id) for (event, _), event_id in zip(indexed, event_ids, strict=True)]
            assets = [(event, event_id) for event, event_id in numbered if event.dagster_event_type in ASSET_EVENTS]
            self._store_asset_event_tags(conn, [event for event, _ in assets], [event_id for _, event_id in assets])
            for event, event_id in _last_of_consecutive(assets):
                self._store_asset_event(conn, event, event_id)
        for event, event_id in numbered:
            if event.dagster_event_type in ASSET_CHECK_EVENTS:
                self.store_asset_check_event(event, event_id)

    def _batch_connection(self, shard: str) -> Connection:
        """The batch's connection to ``shard``, its transaction begun on first use and ended with the batch."""
        if shard not in self._batch.connections:
            stack: ExitStack = self._batch.stack
            conn = stack.enter_context(self._engine(shard).connect())
            if shard != INDEX_SHARD_NAME:
                stack.callback(self._checkpoint, conn)  # after the commit below: exits run last in, first out
            stack.enter_context(conn.begin())
            self._batch.connections[shard] = conn
        return self._batch.connections[shard]

    def has_table(self, table_name: str) -> bool:
        # Dagster asks before storing each asset event's tags, with a new engine each time; a table, once made, stays.
        if table_name not in self._tables_seen and super().has_table(table_name):
            self._tables_seen.add(table_name)
        return table_name in self._tables_seen

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        # Dagster inspects the table's columns before storing each asset event; a column, once migrated in, stays.
        if column_name not in self._asset_key_columns and super()._has_asset_key_col_on_connection(conn, column_name):
            self._asset_key_columns.add(column_name)
        return column_name in self._asset_key_columns

    def _engine(self, shard: str) -> Engine:
        if shard in self._engines:
            self._engines.move_to_end(shard)
            return self._engines[shard]
        engine = create_engine(self.conn_string_for_shard(shard), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        engine_events.listen(engine, "connect", _sync_at_checkpoints)
        if shard not in self._initialized_dbs:
            if shard == INDEX_SHARD_NAME or not self._copy_run_template(shard):
                self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        if len(self._engines) > OPEN_RUN_DATABASES + 1:  # the index stays busiest, so it is rarely the oldest
            self._engines.popitem(last=False)[1].dispose()
        return engine

    def _copy_run_template(self, shard: str) -> bool:
        """Whether ``shard``'s file was created here, as a copy of the initialised template; never over a file
        another process has begun (a hard link fails if the name exists)."""
        path = Path(self._base_dir) / f"{shard}.db"
        if path.exists():
            return False
        staged = path.with_name(f".{shard}.{os.getpid()}.{threading.get_ident()}")
        shutil.copyfile(self._run_template(), staged)
        try:
            os.link(staged, path)
        except FileExistsError:
            return False
        finally:
            staged.unlink()
        return True

    def _run_template(self) -> Path:
        template = Path(self._base_dir) / RUN_FILE_TEMPLATE
        if not template.exists():
            staged = template.with_name(f".{os.getpid()}.{threading.get_ident()}{RUN_FILE_TEMPLATE}")
            engine = create_engine(f"sqlite:///{staged}")
            try:
                self._initdb(engine)
            finally:
                engine.dispose()  # the last connection's close checkpoints the log into the file
            os.replace(staged, template)
        return template

    def _dispose_engines(self) -> None:
        while self._engines:
            self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # no connection may outlive the files wipe deletes
        self._tables_seen.clear()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


def _last_of_consecutive(numbered: list[tuple[dg.EventLogEntry, int]]) -> list[tuple[dg.EventLogEntry, int]]:
    """An asset's row holds what its latest event of a kind set (an event sets the same columns as the one of its
    kind before it), so of consecutive events of one asset and kind only the last need update it."""
    def kind(event: dg.EventLogEntry) -> tuple[Any, Any]:
        return event.dagster_event.asset_key, event.dagster_event_type

    return [pair for pair, following in zip(numbered, [*numbered[1:], None], strict=True)
            if following is None or kind(following[0]) != kind(pair[0])]


def _sync_at_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def ensure_instance(dagster_home: Path, max_concurrent_runs: int | None = None) -> Path:
    """A local instance's folder with its dagster.yaml: the pooled event log where Dagster keeps it, the run queue
    looked at every second (Dagster's default, 5 s, is paid twice on a new file's way to the reports: its ingest run
    and its daily run), at most ``max_concurrent_runs`` runs at once if given, telemetry off. Written once; a
    dagster.yaml already there (the user's own) is kept."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(f"event_log_storage:\n  module: {__name__}\n  class: {PooledSqliteEventLogStorage.__name__}\n"
                          f"  config:\n    base_dir: {dagster_home.resolve() / 'history' / 'runs'}\n"
                          "run_queue:\n  dequeue_interval_seconds: 1\n"
                          "telemetry:\n  enabled: false\n"
                          + (f"concurrency:\n  runs:\n    max_concurrent_runs: {max_concurrent_runs}\n"
                             if max_concurrent_runs else ""))
    return dagster_home
