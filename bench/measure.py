"""Running one benchmark stage in a fresh process: its time and its own peak RSS."""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measurement:
    result: Any
    seconds: float
    peak_rss_mb: float


def measure(fn: Callable[..., Any], *args: object) -> Measurement:
    """fn(*args) in a freshly spawned process, so earlier stages do not inflate its peak RSS."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_timed, fn, *args).result()


def _timed(fn: Callable[..., Any], *args: object) -> Measurement:
    start = time.perf_counter()
    result = fn(*args)
    return Measurement(result, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
