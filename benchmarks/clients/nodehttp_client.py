"""This package's client: ``http.get`` through a keep-alive Agent."""

from __future__ import annotations

import trio
from _common import POOL, arguments, report, run_load

import trio_nodehttp as http


async def main() -> None:
    port, mode, count = arguments()
    url = f"http://127.0.0.1:{port}/"
    sockets = 1 if mode == "sequential" else POOL
    async with http.Agent(keep_alive=True, max_sockets=sockets) as agent:

        async def one() -> None:
            res = await http.get(url, agent=agent)
            await res.read()

        report(await run_load(mode, count, one), count)


trio.run(main)
