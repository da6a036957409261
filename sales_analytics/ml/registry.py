"""Model registry in the lake: ``models/<name>/<version>/`` with the model, its schema and metrics.

Models are stored with skops (no pickle) and loaded only after two checks: the bytes hash to the
sha256 the manifest recorded when we wrote them, and every type inside is from scikit-learn or
NumPy. ``models/<name>/champion.json`` names the promoted version the service serves; a version
is promoted only when its stored verdict (``verdict.json``, written by the promotion check) passed,
whichever run, job or person asks for the promotion.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sales_analytics.storage.lake import LakeResource

MODELS_PREFIX = "models"
TRUSTED_MODULES = ("sklearn.", "numpy.")  # what a model of ours is made of; anything else is refused


class ModelIntegrityError(RuntimeError):
    """A stored model does not match its manifest, or holds types we did not put there."""


class NotPromotable(RuntimeError):
    """A version without a passing promotion verdict was asked to become champion."""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    judged_at: str = ""


@dataclass(frozen=True)
class ModelManifest:
    name: str
    version: str
    sha256: str
    features: list[str]
    trained_until: str
    data_range: list[str]  # first and last day of the training data
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""


class ModelRegistry:
    def __init__(self, lake: LakeResource) -> None:
        self.lake = lake

    def save(self, name: str, model: Any, features: list[str], trained_until: str, data_range: list[str],
             metrics: dict[str, Any]) -> ModelManifest:
        """Store a new version (timestamped, so versions sort by age); the manifest is written last."""
        # Loaded on use: every run's process imports the code location, few runs need it.
        import skops.io as sio

        data = sio.dumps(model)
        now = dt.datetime.now(dt.UTC)
        manifest = ModelManifest(name, now.strftime("%Y%m%dT%H%M%S%fZ"), hashlib.sha256(data).hexdigest(), features,
                                 trained_until, data_range, metrics, now.isoformat())
        self.lake.put_bytes(self._key(name, manifest.version, "model.skops"), data)
        self.lake.put_bytes(self._key(name, manifest.version, "manifest.json"), json.dumps(asdict(manifest), indent=2).encode())
        return manifest

    def manifest(self, name: str, version: str) -> ModelManifest:
        key = self._key(name, version, "manifest.json")
        if not self.lake.exists(key):
            raise LookupError(f"model {name} has no complete version {version!r}")
        return ModelManifest(**json.loads(self.lake.get_bytes(key)))

    def versions(self, name: str) -> list[str]:
        """Versions with a manifest (a version whose manifest is missing was never completed), oldest first."""
        prefix = f"{MODELS_PREFIX}/{name}/"
        return sorted(o.key.removeprefix(prefix).split("/")[0] for o in self.lake.list(prefix) if o.key.endswith("/manifest.json"))

    def load(self, name: str, version: str) -> tuple[Any, ModelManifest]:
        # Loaded on use: every run's process imports the code location, few runs need it.
        import skops.io as sio

        manifest = self.manifest(name, version)
        data = self.lake.get_bytes(self._key(name, version, "model.skops"))
        if hashlib.sha256(data).hexdigest() != manifest.sha256:
            raise ModelIntegrityError(f"{name} {version}: model bytes do not match the sha256 in its manifest; refusing to load")
        foreign = [t for t in sio.get_untrusted_types(data=data) if not t.startswith(TRUSTED_MODULES)]
        if foreign:
            raise ModelIntegrityError(f"{name} {version}: the stored model holds types we never store: {foreign[:5]}")
        return sio.loads(data, trusted=sio.get_untrusted_types(data=data)), manifest

    def champion(self, name: str) -> str | None:
        key = f"{MODELS_PREFIX}/{name}/champion.json"
        return json.loads(self.lake.get_bytes(key))["version"] if self.lake.exists(key) else None

    def record_verdict(self, name: str, version: str, passed: bool, reason: str) -> None:
        self.manifest(name, version)
        verdict = Verdict(passed, reason, dt.datetime.now(dt.UTC).isoformat())
        self.lake.put_bytes(self._key(name, version, "verdict.json"), json.dumps(asdict(verdict)).encode())

    def verdict(self, name: str, version: str) -> Verdict | None:
        key = self._key(name, version, "verdict.json")
        return Verdict(**json.loads(self.lake.get_bytes(key))) if self.lake.exists(key) else None

    def promote(self, name: str, version: str) -> None:
        """Make a complete version with a passing verdict the champion; anything else is refused."""
        self.manifest(name, version)
        verdict = self.verdict(name, version)
        if verdict is None or not verdict.passed:
            why = verdict.reason if verdict else "it was never judged"
            raise NotPromotable(f"model {name} version {version} did not pass its promotion check: {why}")
        self.lake.put_bytes(f"{MODELS_PREFIX}/{name}/champion.json",
                            json.dumps({"version": version, "promoted_at": dt.datetime.now(dt.UTC).isoformat()}).encode())

    @staticmethod
    def _key(name: str, version: str, file: str) -> str:
        return f"{MODELS_PREFIX}/{name}/{version}/{file}"
