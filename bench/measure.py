"""Running one benchmark stage in a fresh process: its time and its own peak RSS."""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
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


def measured(fn: Callable[..., dict], *args: object) -> dict:
    """``measure`` as a record: seconds and peak RSS, overridden by what the stage reports of its own
    (a stage may time just its work, or sum the peaks of processes it started)."""
    stage = measure(fn, *args)
    return {"seconds": stage.seconds, "peak_rss_mb": stage.peak_rss_mb, **stage.result}


def _timed(fn: Callable[..., Any], *args: object) -> Measurement:
    start = time.perf_counter()
    result = fn(*args)
    return Measurement(result, time.perf_counter() - start, own_peak_rss_mb())


def own_peak_rss_mb() -> float:
    """This process's own peak RSS. Linux keeps ``ru_maxrss`` across the fork + exec that spawns a
    worker, so it would report the parent's peak when that was higher; ``VmHWM`` starts afresh."""
    try:
        return peak_rss_mb_of("self")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb_of(pid: int | str) -> float:
    """A running process's peak RSS so far (Linux ``VmHWM``)."""
    status = Path(f"/proc/{pid}/status").read_text()
    kilobytes = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kilobytes / 1024
