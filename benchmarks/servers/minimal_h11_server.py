"""The yardstick: the smallest honest trio + h11 server, one task per connection.

It does what any HTTP/1.1 server has to (parse with h11, read and drop request bodies,
keep-alive with an idle timeout, ``Date`` and ``Content-Length``, close when h11 says
so) and nothing more: what the obvious trio + h11 server costs.

Usage: ``python minimal_h11_server.py [PORT [KEEP_ALIVE_SECONDS]]``. Listens on
127.0.0.1 (port 0 picks a free one) and prints ``LISTENING <port>``.
"""

from __future__ import annotations

import math
import sys
import time
from email.utils import formatdate
from functools import partial

import h11
import trio

HELLO = b"hello world"
BIG = b"x" * (1024 * 1024)
RECEIVE_SIZE = 65536

_date_second = -1
_date = b""


def http_date() -> bytes:
    """The current IMF-fixdate, formatted at most once a second (as every server does)."""
    global _date_second, _date
    now = int(time.time())
    if now != _date_second:
        _date_second, _date = now, formatdate(now, usegmt=True).encode("ascii")
    return _date


async def next_event(conn: h11.Connection, stream: trio.SocketStream, idle: float) -> object:
    """h11's next event, reading as needed; ``None`` if the peer stays silent too long."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        with trio.move_on_after(idle):
            conn.receive_data(await stream.receive_some(RECEIVE_SIZE))
            continue
        return None


async def serve(stream: trio.SocketStream, idle: float) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            request = await next_event(conn, stream, idle)
            if not isinstance(request, h11.Request):
                return  # idle timeout or ConnectionClosed
            event: object = request
            while not isinstance(event, h11.EndOfMessage):  # read and drop any body
                event = await next_event(conn, stream, idle)
                if event is None or isinstance(event, h11.ConnectionClosed):
                    return
            body = BIG if request.target == b"/big" else HELLO
            headers = [
                (b"Content-Type", b"text/plain"),
                (b"Content-Length", b"%d" % len(body)),
                (b"Date", http_date()),
            ]
            head = conn.send(h11.Response(status_code=200, headers=headers, reason=b"OK"))
            data = conn.send(h11.Data(data=body))  # the body itself, not a copy
            end = conn.send(h11.EndOfMessage())
            if len(body) <= RECEIVE_SIZE:
                await stream.send_all(head + data + end)
            else:
                for part in (head, data, end):
                    if part:
                        await stream.send_all(part)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # MUST_CLOSE: "Connection: close", HTTP/1.0 ...
            conn.start_next_cycle()
    except (h11.RemoteProtocolError, trio.BrokenResourceError):
        pass
    finally:
        await stream.aclose()


async def main(port: int, keep_alive: float) -> None:
    idle = keep_alive or math.inf
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, partial(serve, idle=idle), port, host="127.0.0.1")
        )
        print(f"LISTENING {listeners[0].socket.getsockname()[1]}", flush=True)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    keep_alive = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    trio.run(main, port, keep_alive)
