"""Server-sent events: a clock that sends one event a second until its client leaves.

Run it with ``python docs/examples/sse.py`` and watch it with
``curl -N http://127.0.0.1:8000/``; stop curl and the handler ends at once.
"""

from __future__ import annotations

import trio

import trio_nodehttp as http


async def clock(req: http.IncomingMessage, res: http.ServerResponse) -> None:
    res.write_head(200, {"content-type": "text/event-stream", "cache-control": "no-cache"})
    await res.flush_headers()
    # Cancelled as soon as the client goes away: the loop needs no write to fail first.
    with res.cancel_on_close():
        tick = 0
        while True:
            await res.write(f"id: {tick}\ndata: tick {tick}\n\n")
            tick += 1
            await trio.sleep(1)


async def main() -> None:
    server = http.create_server(clock)
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(server.listen, 8000, "127.0.0.1")
        print(f"listening on http://{host}:{port}/")


if __name__ == "__main__":
    trio.run(main)
