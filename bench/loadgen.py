"""Open-loop HTTP load at a fixed request rate, from its own process; prints latency percentiles.

    .venv/bin/python bench/loadgen.py --base http://127.0.0.1:8000 --paths /healthz /v1/... \
        --rate 100 --seconds 30 [--header 'X-API-Key: k']

Request i is sent at start + i / rate whether or not earlier ones have answered, and its latency is
measured from that scheduled time. A server that falls behind therefore shows as latency, not as a
quietly lower rate (no coordinated omission, unlike a closed-loop tool such as wrk). Paths are
taken in turn. HTTP/1.1 keep-alive connections are pooled, up to ``--connections``.

Prints one JSON object: sent, ok, errors by status or exception, offered and achieved rate, p50/p90/p99/max ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


MAX_IDLE_SECONDS = 2.0  # below uvicorn's 5 s keep-alive: a connection the server may have closed is not reused


class ConnectionPool:
    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(limit)

    async def get(self, path: str, headers: dict[str, str]) -> int:
        """One GET on a pooled connection; its status. A connection that fails is dropped."""
        async with self.slots:
            reader, writer = await self._connection()
            try:
                status = await _exchange(reader, writer, self.host, path, headers)
            except BaseException:
                writer.close()
                raise
            self.idle.append((reader, writer, time.monotonic()))
            return status

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < MAX_IDLE_SECONDS and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str,
                    headers: dict[str, str]) -> int:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    writer.write("\r\n".join(lines).encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        raise ValueError("chunked responses are not supported by this load generator")
    await reader.readexactly(int(fields.get("content-length", "0")))
    return status


async def run(base: str, paths: list[str], rate: float, seconds: float, connections: int,
              headers: dict[str, str]) -> dict:
    url = urlsplit(base)
    pool = ConnectionPool(url.hostname or "127.0.0.1", url.port or 80, connections)
    tally, total = Tally(), int(rate * seconds)

    async def one(path: str, scheduled: float) -> None:
        try:
            status = await pool.get(path, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            tally.errors[type(err).__name__] += 1
            return
        if status >= 400:
            tally.errors[f"HTTP {status}"] += 1
        tally.latencies_ms.append((time.perf_counter() - scheduled) * 1000)

    start = time.perf_counter()
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(one(paths[i % len(paths)], scheduled)))
    sending = time.perf_counter() - start
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return summarise(tally, total, sending, elapsed, rate)


def summarise(tally: Tally, sent: int, sending: float, elapsed: float, rate: float) -> dict:
    """``offered_rate``: the rate the requests left at (the generator's own pace; the last leaves (sent - 1) / rate
    after the first); ``achieved_rate``: answers over the whole run, the tail's lag included."""
    latencies = sorted(tally.latencies_ms)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {"sent": sent, "ok": len(latencies) - sum(v for k, v in tally.errors.items() if k.startswith("HTTP")),
            "errors": dict(tally.errors), "target_rate": rate, "offered_rate": (sent - 1) / sending if sent > 1 else rate,
            "achieved_rate": sent / elapsed,
            "p50_ms": cuts[49], "p90_ms": cuts[89], "p99_ms": cuts[98], "max_ms": latencies[-1] if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="scheme://host:port")
    parser.add_argument("--paths", nargs="+", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    print(json.dumps(asyncio.run(run(args.base, args.paths, args.rate, args.seconds, args.connections, headers))))


if __name__ == "__main__":
    main()
