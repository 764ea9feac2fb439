"""httpx's AsyncClient on trio (through anyio), with a pool of the same size."""

from __future__ import annotations

import httpx
import trio
from _common import POOL, arguments, report, run_load


async def main() -> None:
    port, mode, count = arguments()
    url = f"http://127.0.0.1:{port}/"
    sockets = 1 if mode == "sequential" else POOL
    limits = httpx.Limits(max_connections=sockets, max_keepalive_connections=sockets)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one() -> None:
            response = await client.get(url)
            response.read()

        report(await run_load(mode, count, one), count)


trio.run(main)
