"""The benchmark's trio_nodehttp server: ``GET /`` says hello, ``GET /big`` sends 1 MiB.

Usage: ``python nodehttp_server.py [PORT [KEEP_ALIVE_SECONDS]]``. Listens on 127.0.0.1
(port 0 picks a free one) and prints ``LISTENING <port>`` once it accepts connections.
"""

from __future__ import annotations

import sys

import trio

import trio_nodehttp as http

HELLO = b"hello world"
BIG = b"x" * (1024 * 1024)


async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
    res.set_header("Content-Type", "text/plain")
    await res.end(BIG if req.url == "/big" else HELLO)


async def main(port: int, keep_alive: float) -> None:
    server = http.create_server(handler, keep_alive_timeout=keep_alive)
    async with trio.open_nursery() as nursery:
        _, bound = await nursery.start(server.listen, port, "127.0.0.1")
        print(f"LISTENING {bound}", flush=True)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    keep_alive = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    trio.run(main, port, keep_alive)
