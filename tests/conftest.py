"""Shared test helpers: a raw HTTP client over any trio stream, servers on memory streams
and on real sockets."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import h11
import pytest
import trio
import trio.testing

import trio_nodehttp as http


@attrs.define
class RawResponse:
    """A response as a raw client saw it."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]] = attrs.field(factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def names(self) -> list[str]:
        return [key for key, _ in self.headers]


class RawClient:
    """Writes raw bytes to a server and reads responses with an h11 client parser."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.closed = False

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(65536)
        if not data:
            self.closed = True
            return False
        self.buffer += data
        return True

    async def read_until_closed(self) -> bytes:
        """Everything the server sends until it closes (bounded by the caller's scope)."""
        while await self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def read_head_bytes(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            if not await self._fill():
                raise EOFError(bytes(self.buffer))
        end = self.buffer.index(b"\r\n\r\n") + 4
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        return head

    async def read_response(self, method: str = "GET") -> RawResponse:
        """Parse one response (1xx responses are returned as they come)."""
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
        parser.send(h11.EndOfMessage())
        if self.buffer:
            parser.receive_data(bytes(self.buffer))
            self.buffer.clear()
        response: RawResponse | None = None
        body = bytearray()
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                data = await self.stream.receive_some(65536)
                if not data:
                    self.closed = True
                parser.receive_data(bytes(data))
                continue
            if isinstance(event, (h11.Response, h11.InformationalResponse)):
                response = RawResponse(
                    event.status_code,
                    event.reason.decode("latin-1"),
                    [
                        (k.decode("latin-1"), v.decode("latin-1"))
                        for k, v in event.headers.raw_items()
                    ],
                    b"",
                )
                if isinstance(event, h11.InformationalResponse):
                    self.buffer[:0] = parser.trailing_data[0]
                    return response
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                response.body = bytes(body)
                response.trailers = [
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()
                ]
                leftover, _ = parser.trailing_data
                self.buffer[:0] = leftover
                return response
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("closed before a response")


@asynccontextmanager
async def memory_server(
    handler: Callable[..., Any] | None = None, **options: Any
) -> AsyncIterator[tuple[http.Server, Callable[[], RawClient]]]:
    """A server and a factory of raw clients, each on its own memory stream pair."""
    server = options.pop("server", None) or http.create_server(handler, **options)
    async with trio.open_nursery() as nursery:

        def connect() -> RawClient:
            client_side, server_side = trio.testing.memory_stream_pair()
            nursery.start_soon(server.serve_stream, server_side)
            return RawClient(client_side)

        yield server, connect
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def socket_server(
    handler: Callable[..., Any] | None = None, **options: Any
) -> AsyncIterator[tuple[http.Server, int]]:
    """A server listening on 127.0.0.1 (port 0); closed when the block ends."""
    server = options.pop("server", None) or http.create_server(handler, **options)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(server.listen, 0, "127.0.0.1")
        yield server, port
        server.close_all_connections()
        await server.close()


@asynccontextmanager
async def raw_client(port: int) -> AsyncIterator[RawClient]:
    """A raw client on a fresh TCP connection, closed when the block ends."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        yield RawClient(stream)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def get(path: str = "/", *headers: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: t", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def hello(req: http.IncomingMessage, res: http.ServerResponse) -> None:
    await req.read()
    await res.end(b"hello")


@pytest.fixture
def node_bin() -> str:
    import shutil

    path = shutil.which("node")
    assert path, "node must be installed for the peer tests"
    return path
