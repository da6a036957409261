"""The graph is the data flow: every stored object an asset reads belongs to a dependency it declares,
in a partition its partition mapping names.

A copy of the shared world (everything built) is opened through a lake that records every object
read. Each step of the graph is then materialized alone, for one partition, and what it read is
checked against its declared parents: a read of another asset's table that the declarations do not
cover fails the test, naming the asset, the object and what was declared.
"""

import datetime as dt
import shutil
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg

from sales_analytics import schema
from sales_analytics.catalog import DEMAND_MODEL_NAME, SENTIMENT_MODEL_NAME, published_key
from sales_analytics.definitions import build_defs
from sales_analytics.jobs import train_demand_model_job, weekly_sales_job
from sales_analytics.ml.assets import DEMAND_MODEL, demand_model
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.nlp.assets import SENTIMENT_MODEL
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.reports.weekly_sales import WEEKLY_SALES_KEY
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import PARTITION_COLUMN, LakeReader, ParquetLakeIOManager
from sales_analytics_tests.world import MODEL_CONFIG

# Not run here: the POS extraction needs its database, the OCR evaluation reads in a Pipes child process.
NOT_RUN = {dg.AssetKey(["landing", "pos_db_files"]), dg.AssetKey(["ml", "receipt_ocr_evaluation"])}
TRAINED = {DEMAND_MODEL, SENTIMENT_MODEL}
TINY_MODEL = {"ops": {demand_model.op.name: {"config": {"history_days": 120, "horizon": 7, "backtest_windows": 1, "max_iter": 10}}}}


class RecordingLake(LakeResource):
    """A lake that remembers the key of every object read."""

    reads: ClassVar[list[str]] = []

    def get_bytes(self, key: str) -> bytes:
        RecordingLake.reads.append(key)
        return super().get_bytes(key)


def test_every_asset_reads_only_what_it_declares(dashboard_world: dict[str, Any], tmp_path: Path) -> None:
    world = Path(dashboard_world["env"]["lake"].root).parent
    shutil.copytree(world, tmp_path / "local")
    env = local_resources(tmp_path / "local")
    lake = RecordingLake(root=env["lake"].root, s3=env["lake"].s3)
    env = {**env, "lake": lake, "io_manager": ParquetLakeIOManager(lake=lake)}
    defs = build_defs(env)
    graph = defs.resolve_asset_graph()
    instance = dg.DagsterInstance.ephemeral()
    _as_if_trained(lake, instance)
    last_day = dashboard_world["last_day"]
    last_week = dashboard_world["mission"].weeks[-1]
    steps = {asset for asset in defs.assets if isinstance(asset, dg.AssetsDefinition)
             and asset.is_executable and not set(asset.keys) & NOT_RUN}
    undeclared = []
    # The trainings last: their new versions (a tiny model may well fail promotable) must not be the
    # ones the champion assets find.
    for asset in sorted(steps, key=lambda a: (bool(set(a.keys) & TRAINED), min(k.to_user_string() for k in a.keys))):
        partition = _partition_for(asset, last_day, last_week)
        RecordingLake.reads.clear()
        result = dg.materialize(defs.assets, selection=list(asset.keys), resources=env, instance=instance,
                                partition_key=partition, run_config=TINY_MODEL if DEMAND_MODEL in asset.keys else None,
                                raise_on_error=False)
        built = {e.asset_key for e in result.get_asset_materialization_events()}
        assert built == set(asset.keys), f"{_names(set(asset.keys) - built)} not built"
        undeclared += _undeclared_reads(graph, asset, partition, list(RecordingLake.reads))
    assert not undeclared, "\n".join(undeclared)


def test_a_read_around_the_graph_is_caught(dashboard_world: dict[str, Any], tmp_path: Path) -> None:
    """The audit itself can fail: an asset that declares nothing and reads a report's partition is named."""
    env = dashboard_world["env"]
    day = dashboard_world["last_day"]

    @dg.asset(key=["test", "sneaky"])
    def sneaky(lake: LakeResource) -> None:
        lake.get_bytes(f"reports/daily_sales/sale_date={day}/data.parquet")

    defs = dg.Definitions(assets=[*build_defs(env).assets, sneaky], resources=env)
    RecordingLake.reads.clear()
    recording = RecordingLake(root=env["lake"].root, s3=env["lake"].s3)
    assert dg.materialize([sneaky], resources={"lake": recording}).success
    (finding,) = _undeclared_reads(defs.resolve_asset_graph(), sneaky, None, list(RecordingLake.reads))
    assert "test/sneaky" in finding and f"reports/daily_sales partition {day}" in finding


def _as_if_trained(lake: LakeResource, instance: dg.DagsterInstance) -> None:
    """The fresh instance learns which model versions were trained last (the champions read that)."""
    with initialized(lake) as opened:
        registry = ModelRegistry(opened)
        for key, name in ((DEMAND_MODEL, DEMAND_MODEL_NAME), (SENTIMENT_MODEL, SENTIMENT_MODEL_NAME)):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata={"version": registry.versions(name)[-1]}))


def _partition_for(asset: dg.AssetsDefinition, last_day: str, last_week: str) -> str | None:
    partitions = asset.partitions_def
    if partitions is None:
        return None
    return last_week if isinstance(partitions, dg.WeeklyPartitionsDefinition) else last_day


def _undeclared_reads(graph: Any, asset: dg.AssetsDefinition, partition: str | None, reads: list[str]) -> list[str]:
    """Each read of another asset's stored table that no declared dependency of ``asset`` covers."""
    # Tables the graph stores (landing sources are external: their files are not laid out by asset key).
    owners = {"/".join(key.path) + "/": key for key in graph.get_all_asset_keys() if graph.get(key).is_executable}
    own = set(asset.keys)
    declared = {parent for key in own for parent in graph.get(key).parent_keys} - own
    found = []
    for read in sorted(set(reads)):
        prefixes = [p for p in owners if read.startswith(p)]
        if not prefixes:
            continue  # landing files, models, pages: not an asset's table
        owner = owners[max(prefixes, key=len)]
        if owner in own:
            continue
        folder = read[len(max(prefixes, key=len)):].split("/", 1)[0]
        read_partition = folder.split("=", 1)[1] if "=" in folder else None
        if owner not in declared:
            found.append(f"{_names(own)} read {owner.to_user_string()}"
                         f"{f' partition {read_partition}' if read_partition else ''} ({read}) without declaring it")
        elif read_partition and not _mapped(graph, asset, owner, partition, read_partition):
            found.append(f"{_names(own)} read {owner.to_user_string()} partition {read_partition}, outside what its "
                         f"dependency maps {partition} to")
    return found


def _mapped(graph: Any, asset: dg.AssetsDefinition, parent: dg.AssetKey, partition: str | None, read_partition: str) -> bool:
    """Whether the dependency on ``parent`` maps the run's partition (or, unpartitioned, every partition) to it."""
    parent_partitions = graph.get(parent).partitions_def
    if partition is None or parent_partitions is None:
        return True
    for child in (key for key in asset.keys if parent in graph.get(key).parent_keys):
        upstream = graph.get_partition_mapping(child, parent).get_upstream_mapped_partitions_result_for_partitions(
            asset.partitions_def.subset_with_partition_keys([partition]), asset.partitions_def, parent_partitions)
        if read_partition in set(upstream.partitions_subset.get_partition_keys()):
            return True
    return False


def _names(keys: set[dg.AssetKey]) -> str:
    return ", ".join(sorted(k.to_user_string() for k in keys))


def test_every_job_schedule_and_automation_keeps_the_lake_sql_and_serving_copies_in_step(
        dashboard_world: dict[str, Any], tmp_path: Path) -> None:
    """On a copy of the world: every schedule's tick runs what it requests, every other job runs once,
    the automation sensors evaluate once. Then, for every report with SQL and serving copies, each
    partition in the lake holds the same rows (by key) in PostgreSQL's role and DynamoDB's."""
    shutil.copytree(Path(dashboard_world["env"]["lake"].root).parent, tmp_path / "local")
    env = local_resources(tmp_path / "local")
    defs = build_defs(env)
    instance = dg.DagsterInstance.ephemeral()
    _as_if_trained(env["lake"], instance)
    last_day = dashboard_world["last_day"]
    tick = dt.datetime.fromisoformat(last_day).replace(tzinfo=dt.UTC) + dt.timedelta(days=1, hours=12)
    ran = set()
    for schedule in (defs.resolve_schedule_def(s.name) for s in defs.schedules):
        context = dg.build_schedule_context(scheduled_execution_time=tick, instance=instance,
                                            repository_def=defs.get_repository_def())
        for request in schedule.evaluate_tick(context).run_requests:
            _run(defs, instance, schedule.job_name, request.partition_key, request.tags)
        ran.add(schedule.job_name)
    jobs = {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    for name in sorted(jobs - ran - {"extract_pos_db"}):  # the POS extraction needs its database
        job = defs.resolve_job_def(name)
        partition = None if job.partitions_def is None else (
            dashboard_world["mission"].weeks[-1] if isinstance(job.partitions_def, dg.WeeklyPartitionsDefinition) else last_day)
        _run(defs, instance, name, partition, {})
    automation = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    for week in automation.get_requested_partitions(WEEKLY_SALES_KEY):
        _run(defs, instance, weekly_sales_job.name, week, {})
    compared, out_of_step = _compare_copies(defs, env)
    assert not out_of_step, "\n".join(out_of_step)
    assert {"reports/daily_sales", "reports/daily_store_sales", "reports/weekly_sales", "ml/demand_forecast",
            "ml/forecast_accuracy", "reports/review_sentiment"} <= set(compared)
    assert len(compared["reports/daily_sales"]) == len(dashboard_world["mission"].build.touched_days)


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, job: str, partition: str | None, tags: dict[str, str]) -> None:
    model = {"ops": {demand_model.op.name: {"config": MODEL_CONFIG}}} if job == train_demand_model_job.name else None
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=partition, tags=tags, run_config=model,
                                                          raise_on_error=False)
    assert result.success, f"{job} {partition or ''} failed"


def _compare_copies(defs: dg.Definitions, env: dict[str, Any]) -> tuple[dict[str, list[str]], list[str]]:
    """The partitions compared per published report, and each partition whose rows (by key) in a store
    differ from the lake's."""
    graph = defs.resolve_asset_graph()
    specs = {spec.name: spec for spec in vars(schema).values() if isinstance(spec, schema.TableSpec)}
    compared: dict[str, list[str]] = {}
    found = []
    with (initialized(env["lake"]) as lake, initialized(env["report_db"]) as report_db,
          initialized(env["serving_store"]) as serving):
        for key in graph.get_all_asset_keys():
            if not key.path[-1].startswith("rds_") or published_key("dynamodb", key.path[-1].removeprefix("rds_")) not in graph.get_all_asset_keys():
                continue
            spec = specs[key.path[-1].removeprefix("rds_")]
            (report,) = graph.get(key).parent_keys
            lake_column = graph.get(report).metadata.get(PARTITION_COLUMN)
            reader = LakeReader(lake)
            if lake_column is None:
                lake_rows = {"whole": _keys(reader.read_whole(report).to_pylist(), spec)}
            else:
                lake_rows = {day: _keys(reader.read_object(obj).to_pylist(), spec)
                             for day, obj in reader.stored_partitions(report, str(lake_column)).items()}
            sql_rows = report_db.read(spec)
            items = [item for pk in sorted({k for k, _ in serving.all_keys(spec)}) for item in serving.query(spec, pk)]
            compared[report.to_user_string()] = sorted(lake_rows)
            for partition, expected in lake_rows.items():
                for store, rows in (("sql", sql_rows), ("dynamodb", items)):
                    held = _keys([r for r in rows if partition == "whole" or str(r[spec.partition_column]) == partition], spec)
                    if held != expected:
                        found.append(f"{report.to_user_string()} {partition}: {store} holds {len(held)} rows, the lake {len(expected)}")
    return compared, found


def _keys(rows: list[dict[str, Any]], spec: Any) -> list[tuple[str, ...]]:
    return sorted(tuple(str(row[column]) for column in spec.key) for row in rows)
