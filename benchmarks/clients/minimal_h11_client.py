"""The floor: a hand-written trio + h11 client with a pool of keep-alive connections.

It does what any keep-alive HTTP/1.1 client must (h11 framing, one request at a time
per connection, connections handed out from a pool and returned after the body) and
nothing more, so the gap to trio_nodehttp's client is the package's own cost.
"""

from __future__ import annotations

import h11
import trio
from _common import POOL, arguments, report, run_load


class Connection:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def get(self, host: str) -> bytes:
        request = h11.Request(method="GET", target="/", headers=[("Host", host)])
        await self.stream.send_all(self.h11.send(request) + self.h11.send(h11.EndOfMessage()))
        body = bytearray()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.h11.start_next_cycle()
                return bytes(body)


async def main() -> None:
    port, mode, count = arguments()
    host = f"127.0.0.1:{port}"
    sockets = 1 if mode == "sequential" else POOL
    send, receive = trio.open_memory_channel[Connection](sockets)
    for _ in range(sockets):
        send.send_nowait(Connection(await trio.open_tcp_stream("127.0.0.1", port)))

    async def one() -> None:
        connection = await receive.receive()
        try:
            await connection.get(host)
        finally:
            send.send_nowait(connection)

    report(await run_load(mode, count, one), count)


trio.run(main)
