"""Nothing read from the lake or an upload is ever unpickled: no code path can (a scan of the
source), and a pickle planted where a model, a lake partition or an uploaded image is read runs
nothing (a payload that would create a file, and the file is never made)."""

import ast
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests

from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.profiles import initialized
from sales_analytics.service.app import API_KEY_HEADER, create_app
from sales_analytics.storage.parquet_io import ParquetLakeIOManager, partition_object_key
from sales_analytics_tests.helpers import serving

pytestmark = pytest.mark.security
PACKAGE = Path(__file__).resolve().parents[1] / "sales_analytics"
PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve", "marshal", "jsonpickle"}
PICKLING_CALLS = {"read_pickle", "load_pickle", "from_pickle"}
KEY = "no-pickle-test-key-0123456789"


def test_no_module_can_unpickle() -> None:
    """No pickle-family import, no ``read_pickle``, no ``allow_pickle=True``, no ``trusted=True``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                found += [f"{where} imports {n}" for n in names if n.split(".")[0] in PICKLING_MODULES]
            elif isinstance(node, ast.Attribute) and node.attr in PICKLING_CALLS:
                found.append(f"{where} calls {node.attr}")
            elif isinstance(node, ast.keyword) and node.arg in ("allow_pickle", "trusted") and \
                    isinstance(node.value, ast.Constant) and node.value.value is True:
                found.append(f"{where} passes {node.arg}=True")
    assert found == []


class _Payload:
    """Unpickling this creates ``marker``: the proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def test_a_pickle_planted_as_a_model_or_a_lake_partition_never_runs(local_env: dict[str, Any], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        # The worst case: the attacker rewrote the manifest too, so the hash check passes.
        manifest = {"name": "demand", "version": "20990101T000000000000Z", "sha256": hashlib.sha256(payload).hexdigest(),
                    "features": [], "trained_until": "2099-01-01", "data_range": [], "metrics": {}}
        lake.put_bytes("models/demand/20990101T000000000000Z/model.skops", payload)
        lake.put_bytes("models/demand/20990101T000000000000Z/manifest.json", json.dumps(manifest).encode())
        with pytest.raises(Exception):  # noqa: B017 — any refusal will do; what matters is that nothing ran
            registry.load("demand", manifest["version"])
        key = dg.AssetKey(["curated", "stores"])
        lake.put_bytes(partition_object_key(key, None, None), payload)
        with pytest.raises(Exception):  # noqa: B017
            ParquetLakeIOManager(lake=lake).load_input(dg.build_input_context(asset_key=key))
    assert not marker.exists()


def test_a_pickle_uploaded_as_a_receipt_image_is_refused_and_never_runs(local_env: dict[str, Any], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with initialized(local_env["lake"]) as lake, serving(create_app(lake, [KEY])) as url:
        answer = requests.post(f"{url}/v1/receipts/extract", headers={API_KEY_HEADER: KEY}, timeout=30,
                               files={"image": ("receipt.jpg", pickle.dumps(_Payload(marker)), "image/jpeg")})
    assert answer.status_code == 415 and not marker.exists()
