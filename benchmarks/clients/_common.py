"""What every Python benchmark client shares: arguments, the two loads, the report."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable

import trio

CONCURRENCY = 200  # requests in flight in the concurrent load
POOL = 10  # connections in the concurrent load


def arguments() -> tuple[int, str, int]:
    """``PORT MODE COUNT`` from the command line; MODE is sequential or concurrent."""
    port, mode, count = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode not in ("sequential", "concurrent"):
        raise SystemExit(f"unknown mode {mode!r}")
    return int(port), mode, int(count)


async def run_load(mode: str, count: int, one: Callable[[], Awaitable[None]]) -> float:
    """Make ``count`` requests with ``one`` (after a short warm-up); return the seconds."""
    for _ in range(100):
        await one()
    start = time.perf_counter()
    if mode == "sequential":
        for _ in range(count):
            await one()
    else:

        async def worker(share: int) -> None:
            for _ in range(share):
                await one()

        async with trio.open_nursery() as nursery:
            for index in range(CONCURRENCY):
                nursery.start_soon(worker, count // CONCURRENCY + (index < count % CONCURRENCY))
    return time.perf_counter() - start


def report(seconds: float, count: int) -> None:
    print(json.dumps({"seconds": seconds, "requests": count}))
