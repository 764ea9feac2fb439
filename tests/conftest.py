"""Shared test helpers: a raw HTTP client over any trio stream, servers on memory streams
and on real sockets, agents on memory streams, and :func:`check_books`, which compares an
agent's books with the connections that really are open."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import h11
import pytest
import trio
import trio.testing

import trio_nodehttp as http
from trio_nodehttp._agent import PooledConnection, _Pool


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
    path = shutil.which("node")
    assert path, "node must be installed for the peer tests"
    return path


@pytest.fixture
def nginx_bin() -> str:
    """nginx, for the tests with nginx as the origin: on PATH, or where Debian puts it
    (/usr/sbin, not always on a user's PATH)."""
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert path, "nginx must be installed (Debian: apt-get install nginx-light)"
    return path


# --- agents whose books can be checked ---------------------------------------------------

Serve = Callable[[trio.abc.Stream], Awaitable[None]]


class RecordingAgent(http.Agent):
    """An agent that remembers what :func:`check_books` compares its books with: every
    stream it opened, and the pool object each request inside ``_acquire`` holds."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.streams: list[trio.abc.Stream] = []
        self.acquiring: dict[trio.lowlevel.Task, _Pool] = {}

    @property
    def opened(self) -> int:
        """Connections opened so far."""
        return len(self.streams)

    def open_streams(self) -> list[trio.abc.Stream]:
        return [stream for stream in self.streams if stream_is_open(stream)]

    async def create_connection(self, options: http.ConnectOptions) -> trio.abc.Stream:
        stream = await super().create_connection(options)
        self.streams.append(stream)
        return stream

    def _pool(self, name: str) -> _Pool:
        pool = super()._pool(name)  # called by _acquire only
        self.acquiring[trio.lowlevel.current_task()] = pool
        return pool

    async def _acquire(
        self, name: str, options: http.ConnectOptions, *, fresh: bool = False
    ) -> tuple[PooledConnection, bool]:
        try:
            return await super()._acquire(name, options, fresh=fresh)
        finally:
            self.acquiring.pop(trio.lowlevel.current_task(), None)


class TrackedStream(trio.abc.HalfCloseableStream):
    """The client's end of a memory connection; knows whether it was closed, and can be
    closed without an await (as the agent closes sockets)."""

    def __init__(
        self,
        inner: trio.StapledStream[trio.testing.MemorySendStream, trio.testing.MemoryReceiveStream],
        open_streams: set[TrackedStream],
    ) -> None:
        self.inner = inner
        self.closed = False
        self._open_streams = open_streams
        open_streams.add(self)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    def close(self) -> None:
        self.closed = True
        self._open_streams.discard(self)
        self.inner.send_stream.close()
        self.inner.receive_stream.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


class MemoryAgent(RecordingAgent):
    """An agent whose connections are memory stream pairs: the far end of each is given
    to ``serve`` (a server's ``serve_stream`` or a raw peer) in ``nursery``. Opening one
    takes ``connect_delay`` seconds, so a request can be cancelled while connecting."""

    def __init__(
        self, nursery: trio.Nursery, serve: Serve, *, connect_delay: float = 0.0, **options: Any
    ) -> None:
        super().__init__(**options)
        self._serve_nursery = nursery
        self._serve = serve
        self.connect_delay = connect_delay
        self._open_streams: set[TrackedStream] = set()

    def open_streams(self) -> list[trio.abc.Stream]:
        return list(self._open_streams)  # not a walk over every stream: the storm's steps

    async def create_connection(self, options: http.ConnectOptions) -> trio.abc.Stream:
        await trio.sleep(self.connect_delay)
        client_side, server_side = trio.testing.memory_stream_pair()
        self._serve_nursery.start_soon(self._serve, server_side)
        stream = TrackedStream(client_side, self._open_streams)
        self.streams.append(stream)
        return stream


@asynccontextmanager
async def memory_agent(
    serve: Serve, *, connect_delay: float = 0.0, **options: Any
) -> AsyncIterator[MemoryAgent]:
    """A :class:`MemoryAgent`, open for the block; its far ends are cancelled after."""
    async with trio.open_nursery() as nursery:
        async with MemoryAgent(nursery, serve, connect_delay=connect_delay, **options) as agent:
            yield agent
        nursery.cancel_scope.cancel()


def stream_is_open(stream: trio.abc.Stream) -> bool:
    if isinstance(stream, trio.SocketStream):
        return stream.socket.fileno() != -1
    if isinstance(stream, TrackedStream):
        return not stream.closed
    raise TypeError(f"unexpected stream {stream!r}")


def check_books(agent: http.Agent, *, settled: bool = False) -> None:
    """The agent's books equal reality; ``settled``: and nothing is in flight.

    Per pool: no negative count, no pool kept that holds nothing (Node deletes empty
    keys), every listed connection filed once under its own name, alive and with its
    stream open, every free one watched, within ``max_sockets`` and
    ``max_free_sockets``. In all: ``total_connections`` is the sum of the pools' sizes
    and within ``max_total_sockets``. For a :class:`RecordingAgent`, also: the open
    streams it opened are exactly the listed ones (none leaked, none counted twice),
    and every pool a request is acquiring from is the one the agent holds under that
    name, counting it. (Not for upgrades or CONNECT: a detached stream stays open.)
    """
    stats = agent.statistics()
    pools = agent._pools
    assert set(stats.pools) == set(pools)
    held_by: dict[int, int] = {}
    if isinstance(agent, RecordingAgent):
        for pool in agent.acquiring.values():
            assert pools.get(pool.name) is pool, (
                f"a request is acquiring from a pool of {pool.name!r} the agent forgot ({stats})"
            )
            held_by[id(pool)] = held_by.get(id(pool), 0) + 1
    counted = 0
    listed: set[int] = set()
    for name, pool in pools.items():
        p = stats.pools[name]
        where = f"pool {name!r} ({stats})"
        # getattr: the helper also reads an agent from before pools counted their
        # acquirers (to show that the regression tests fail there for the right reason).
        counter: int | None = getattr(pool, "acquiring", None)
        if counter is not None and isinstance(agent, RecordingAgent):
            assert counter == held_by.get(id(pool), 0), f"{where}: acquirers miscounted"
        acquiring = held_by.get(id(pool), 0) if counter is None else counter
        assert pool.name == name, where
        assert min(p.active, p.free, p.connecting, p.queued, acquiring) >= 0, (
            f"{where}: negative count"
        )
        assert p.active or p.free or p.connecting or p.queued or acquiring, (
            f"{where}: empty pool kept"
        )
        for pooled in [*pool.active, *pool.free]:
            assert id(pooled.stream) not in listed, f"{where}: a connection listed twice"
            listed.add(id(pooled.stream))
            assert pooled.name == name, f"{where}: {pooled.name!r} filed here"
            assert not pooled.dead, f"{where}: a dead connection is still listed"
            assert stream_is_open(pooled.stream), f"{where}: a listed connection is closed"
        for pooled in pool.free:
            assert not pooled.connection.broken, f"{where}: a free connection is broken"
            assert pooled.watcher is not None, f"{where}: a free connection is not watched"
        for waiter in pool.waiters:
            assert not waiter.event.is_set(), f"{where}: a woken waiter is still queued"
        assert pool.size <= agent.max_sockets, f"{where}: over max_sockets"
        assert p.free <= agent.max_free_sockets, f"{where}: over max_free_sockets"
        if settled:
            assert (p.active, p.connecting, p.queued, acquiring) == (0, 0, 0, 0), (
                f"{where}: not at rest"
            )
        counted += pool.size
    assert stats.total_connections == counted, (
        f"total_connections is {stats.total_connections}, the pools hold {counted} ({stats})"
    )
    assert agent.total_socket_count == stats.total_connections
    assert counted <= agent.max_total_sockets, f"over max_total_sockets ({stats})"
    if isinstance(agent, RecordingAgent):
        opened = {id(stream) for stream in agent.open_streams()}
        assert opened == listed, (
            f"{len(opened - listed)} open connection(s) not in the books, "
            f"{len(listed - opened)} listed but not opened here ({stats})"
        )


class BooksMonitor(trio.abc.Instrument):
    """Checks the books after every task step (they change only in synchronous code, so
    they must be right whenever a task yields); keeps the first failure, and the peaks:
    the most connections and queued requests any pool, and each agent in all, had."""

    def __init__(self, *agents: http.Agent) -> None:
        self.agents = agents
        self.failure: str | None = None
        self.steps = 0
        #: Per agent (in the order given): the most connections in all, at any step.
        self.peak_total = [0 for _ in agents]
        #: Per origin name: the most connections (``active + free + connecting``).
        self.peak_size: dict[str, int] = {}
        #: Per origin name: the most queued requests.
        self.peak_queued: dict[str, int] = {}

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.failure is not None:
            return
        self.steps += 1
        try:
            for index, agent in enumerate(self.agents):
                check_books(agent)
                stats = agent.statistics()
                self.peak_total[index] = max(self.peak_total[index], stats.total_connections)
                for name, p in stats.pools.items():
                    size = p.active + p.free + p.connecting
                    self.peak_size[name] = max(self.peak_size.get(name, 0), size)
                    self.peak_queued[name] = max(self.peak_queued.get(name, 0), p.queued)
        except Exception as exc:  # an instrument that raises is removed by trio
            self.failure = f"after a step of {task.name}: {exc!r}"


@asynccontextmanager
async def monitored(*agents: http.Agent) -> AsyncIterator[BooksMonitor]:
    """:class:`BooksMonitor` for the block; its first failure is raised at the end."""
    monitor = BooksMonitor(*agents)
    trio.lowlevel.add_instrument(monitor)
    try:
        yield monitor
    finally:
        trio.lowlevel.remove_instrument(monitor)
    assert monitor.failure is None, monitor.failure
