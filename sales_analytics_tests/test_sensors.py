"""Sensors: a landing starts one ingest run; an ingest re-runs exactly the days it touched."""

from typing import Any

import dagster as dg

from sales_analytics.definitions import build_defs
from sales_analytics.ingest.raw import ingest_object, pending_objects
from sales_analytics.partitions import RANGE_END_TAG, RANGE_START_TAG
from sales_analytics.profiles import initialized
from sales_analytics.sensors import landing_sensor, touched_partitions_sensor
from sales_analytics.sources.spec import file_sources

CSV = ("order_id,line_no,order_ts,store_id,channel,product_id,customer_id,quantity,unit_price,discount,currency,status,updated_at\n"
       "A1,1,2026-02-03T10:00:00Z,S001,store,P1,,1,2.50,0,EUR,sold,2026-02-03T10:00:00Z\n")


def tick(resources: dict[str, Any]) -> dg.SensorResult | dg.SkipReason:
    with dg.build_sensor_context(resources={"lake": resources["lake"]}) as context:
        return landing_sensor(context)


def test_landing_sensor_requests_one_run_per_new_set_of_objects(local_env: dict[str, Any]) -> None:
    assert isinstance(tick(local_env), dg.SkipReason)
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes("landing/orders/pos/2026-02-03/a.csv", CSV.encode())
        first, again = tick(local_env).run_requests, tick(local_env).run_requests
        assert len(first) == 1 and first[0].run_key == again[0].run_key  # same objects: same run key, one run
        for source, info in pending_objects(lake, file_sources()):
            ingest_object(lake, source, info)
    assert isinstance(tick(local_env), dg.SkipReason)


def test_ingest_triggers_runs_for_exactly_the_touched_days(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes("landing/orders/pos/2026-02-03/a.csv", CSV.encode())
        lake.put_bytes("landing/orders/web/2026-02-09/b.csv", CSV.replace("2026-02-03", "2026-01-15").encode())
        lake.put_bytes("landing/orders/web/2026-02-09/c.csv", CSV.replace("2026-02-03", "2026-02-04").encode())
    defs = build_defs(local_env)
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("ingest_landing").execute_in_process(instance=instance).success
        context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        requests = touched_partitions_sensor.evaluate_tick(context).run_requests
        ranges = sorted((r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests)
        assert ranges == [("2026-01-15", "2026-01-15"), ("2026-02-03", "2026-02-04")]
        job = defs.resolve_job_def("daily_sales")
        for request in requests:  # what the daemon would launch
            assert job.execute_in_process(instance=instance, tags=request.tags).success
        built = instance.get_materialized_partitions(dg.AssetKey(["reports", "daily_store_sales"]))
        assert built == {"2026-01-15", "2026-02-03", "2026-02-04"}
