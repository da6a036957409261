"""The local Dagster instance (``storage.instance``): its event log keeps its connections, holds few files
open however many runs it has written, and the UI's file watcher still sees every write."""

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from sales_analytics.partitions import range_tags
from sales_analytics.storage.instance import (
    EVENT_BATCH_SIZE_ENV,
    OPEN_RUN_DATABASES,
    RUN_FILE_TEMPLATE,
    PooledSqliteEventLogStorage,
    ensure_instance,
)


@dg.asset
def tally() -> int:
    return 1


def open_databases(folder: Path) -> int:
    """SQLite databases under ``folder`` this process holds open."""
    paths = {fd.resolve(strict=False) for fd in Path("/proc/self/fd").iterdir()}
    return sum(1 for path in paths if path.parent == folder and path.suffix == ".db")


def test_the_event_log_holds_few_files_open_and_the_ui_sees_each_write(tmp_path: Path) -> None:
    home = ensure_instance(tmp_path / "dagster")
    runs_folder = home / "history" / "runs"
    with dg.DagsterInstance.from_config(str(home)) as writer, dg.DagsterInstance.from_config(str(home)) as ui:
        assert isinstance(writer.event_log_storage, PooledSqliteEventLogStorage)
        results = [dg.materialize([tally], instance=writer) for _ in range(OPEN_RUN_DATABASES + 4)]
        assert all(r.success for r in results)
        # One file per run, each begun as a copy of the one initialised template, which Dagster does not take for a run.
        assert sorted(writer.event_log_storage.get_all_run_ids()) == sorted(r.run_id for r in results)
        assert [p.name for p in runs_folder.glob(".*.db")] == [RUN_FILE_TEMPLATE]
        assert open_databases(runs_folder) <= OPEN_RUN_DATABASES + 1
        assert len(ui.fetch_materializations(tally.key, limit=100).records) == len(results)  # all written

        writer.report_engine_event("run started", job_name="tally_job", run_id="watched-run")  # its file exists
        seen: list[str] = []
        ui.event_log_storage.watch("watched-run", None, lambda entry, cursor: seen.append(entry.dagster_event.message))
        writer.report_engine_event("step started", job_name="tally_job", run_id="watched-run")
        deadline = time.monotonic() + 30
        while "step started" not in seen and time.monotonic() < deadline:  # the watcher reads the file as it changes
            time.sleep(0.05)
        assert seen == ["run started", "step started"]


def test_a_run_file_another_process_began_is_written_to_not_replaced(tmp_path: Path) -> None:
    home = ensure_instance(tmp_path / "dagster")
    with dg.DagsterInstance.from_config(str(home)) as first, dg.DagsterInstance.from_config(str(home)) as second:
        first.report_engine_event("from the first", job_name="tally_job", run_id="shared-run")
        second.report_engine_event("from the second", job_name="tally_job", run_id="shared-run")
        records = first.get_records_for_run("shared-run").records
        assert [r.event_log_entry.dagster_event.message for r in records] == ["from the first", "from the second"]


def test_a_users_own_instance_config_is_kept(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    ensure_instance(tmp_path)
    assert (tmp_path / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


days = dg.DailyPartitionsDefinition(start_date="2026-01-01")
TEN_DAYS = {f"2026-01-{d:02}" for d in range(1, 11)}


@dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run(),
          check_specs=[dg.AssetCheckSpec("positive", asset="daily_tally")])
def daily_tally(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    yield dg.MaterializeResult(metadata={"days": len(context.partition_keys)})
    yield dg.AssetCheckResult(check_name="positive", passed=True)


def ranged_run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize([daily_tally], instance=instance, tags=range_tags("2026-01-01", "2026-01-10"))


def test_a_ranged_runs_events_are_written_as_batches_and_each_batch_whole_or_not_at_all(tmp_path: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    home = ensure_instance(tmp_path / "dagster")
    with dg.DagsterInstance.from_config(str(home)) as writer, dg.DagsterInstance.from_config(str(home)) as ui:
        store = writer.event_log_storage
        batches: list[int] = []
        monkeypatch.setattr(store, "store_event_batch", lambda events: (batches.append(len(events)),
                                                                        type(store).store_event_batch(store, events)))
        assert ranged_run(writer).success
        assert sorted(batches) == [10, 11]  # planned: a materialization per day and the check's days; then the days
        assert writer.get_materialized_partitions(daily_tally.key) == TEN_DAYS
        assert len(ui.fetch_materializations(daily_tally.key, limit=100).records) == 10

        # A batch that fails after its run file's rows and its index rows are in leaves nothing behind:
        # Dagster then stores its events one by one, once each.
        tag_writes = type(store)._store_asset_event_tags

        def fails_once(*args: object) -> None:
            if store._batch.stack is not None and not failed:
                failed.append(True)
                raise OSError("disk full")
            tag_writes(store, *args)

        failed: list[bool] = []
        monkeypatch.setattr(store, "_store_asset_event_tags", fails_once)
        second = ranged_run(writer)
        assert second.success and failed
        planned = ui.get_records_for_run(second.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        assert len(planned.records) == 10  # none of the failed batch's kept beside the fallback's ten
        per_day = Counter(r.partition_key for r in ui.fetch_materializations(daily_tally.key, limit=100).records)
        assert per_day == dict.fromkeys(TEN_DAYS, 2)  # both runs, each partition once per run


def stored_state(instance: dg.DagsterInstance, run_id: str) -> dict[str, object]:
    """What the UI and the automation read back of a run: the asset's row, its partitions, the index's planned
    events and the check's executions, with their ids (which number the index in write order)."""
    entry = instance.get_asset_records([daily_tally.key])[0].asset_entry
    last = entry.last_materialization_record
    index = instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=daily_tally.key),
        limit=100)
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(daily_tally.key, "positive"), limit=100)
    return {"last_materialization": (last.storage_id, last.partition_key, last.run_id == run_id),
            "last_run_is_this": entry.last_run_id == run_id,
            "materialized": instance.get_materialized_partitions(daily_tally.key),
            "planned": sorted((r.storage_id, r.partition_key) for r in index),
            "checks": sorted((c.id, c.partition, c.status.value, c.run_id == run_id) for c in checks)}


def test_a_batch_leaves_what_the_same_events_stored_one_by_one_leave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    states = []
    for batch_size in ("100", "0"):  # 0: Dagster stores every event by itself
        monkeypatch.setenv(EVENT_BATCH_SIZE_ENV, batch_size)
        with dg.DagsterInstance.from_config(str(ensure_instance(tmp_path / batch_size))) as instance:
            run = ranged_run(instance)
            assert run.success
            states.append(stored_state(instance, run.run_id))
    assert states[0] == states[1]
    # planned: a materialization and a check per day; the check's one evaluation is a row of its own
    assert states[0]["materialized"] == TEN_DAYS and len(states[0]["planned"]) == 10 and len(states[0]["checks"]) == 11
