"""The local Dagster instance (``storage.instance``): its event log keeps its connections, holds few files
open however many runs it has written, and the UI's file watcher still sees every write."""

import time
from pathlib import Path

import dagster as dg

from sales_analytics.storage.instance import OPEN_RUN_DATABASES, PooledSqliteEventLogStorage, ensure_instance


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
        assert len(list(runs_folder.glob("*.db"))) == len(results) + 1  # one file per run, and the index
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


def test_a_users_own_instance_config_is_kept(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    ensure_instance(tmp_path)
    assert (tmp_path / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
