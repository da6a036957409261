"""The sample-data generator: deterministic, sized by its parameters, with the planted faults."""

import csv
import io
from typing import Any

from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.profiles import initialized, local_resources


def landed(lake: Any) -> dict[str, bytes]:
    return {o.key: lake.get_bytes(o.key) for o in lake.list("landing/")}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Any) -> None:
    outputs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        with initialized(local_resources(tmp_path / name)["lake"]) as lake:
            generate(lake, GeneratorConfig(days=5, stores=3, products=20, seed=seed), progress=False)
            outputs.append(landed(lake))
    assert outputs[0] == outputs[1]
    assert outputs[0].keys() == outputs[2].keys() and outputs[0] != outputs[2]


def test_size_follows_parameters_and_sources_are_realistic(tmp_path: Any) -> None:
    counts = {}
    for days, stores in ((7, 4), (14, 4), (14, 12)):
        with initialized(local_resources(tmp_path / f"{days}-{stores}")["lake"]) as lake:
            summary = generate(lake, GeneratorConfig(days=days, stores=stores, products=40), progress=False)
            counts[days, stores] = summary.order_rows
            files = landed(lake)
    assert 1.6 < counts[14, 4] / counts[7, 4] < 2.4
    assert counts[14, 12] > 1.3 * counts[14, 4]  # 4 online stores are there whatever the store count
    assert len([k for k in files if k.startswith("landing/orders/")]) == 2 * 14  # a POS and a web file a day
    stores = list(csv.DictReader(io.StringIO(files["landing/reference/stores/2026-01-01/stores.csv"].decode())))
    assert {s["region"] for s in stores} >= {"north", "south", "west", "uk"}
    rows = [r for k, v in files.items() if k.startswith("landing/orders/") for r in csv.DictReader(io.StringIO(v.decode()))]
    assert {r["status"] for r in rows} == {"sold", "returned", "cancelled"}
    late = [r for k, r in ((k, r) for k, v in files.items() if k.startswith("landing/orders/")
                           for r in csv.DictReader(io.StringIO(v.decode()))) if r["order_ts"][:10] not in k]
    assert late, "some lines must arrive in a later day's file"
    assert any(r["quantity"] == "two" or r["order_id"] == "" or r["order_ts"].startswith("2026-13") for r in rows)
