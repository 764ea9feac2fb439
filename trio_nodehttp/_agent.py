"""Agent: per-origin pools of keep-alive connections, supervised by a nursery.

Books
-----
For each origin name (``get_name()``) a :class:`_Pool` holds the connections in use
(``active``), the idle ones (``free``), the requests waiting for a connection
(``waiters``, oldest first), the connections being opened (``connecting``) and the
requests inside :meth:`Agent._acquire` (``acquiring``). ``Agent._total`` counts every
connection of every pool, opening ones included.

A pool is forgotten (its name deleted, as Node deletes empty keys) when it holds
nothing: no connection, no waiter and no request in the middle of acquiring. A request
inside ``_acquire`` keeps its pool object across its awaits, and the pool can empty
meanwhile (the watcher of the free connection it is taking sees the connection close
and drops it; a connection handed to it is closed before it runs). Counting it in
``acquiring`` keeps that pool the one the agent holds under its name, so whatever the
request does next (connect, queue, take another connection) is counted where
``_release`` and ``_drop`` will find it. Without it, the request would count a new
connection in a forgotten pool and in ``_total``, for good. Such a pool, held but
empty, shows in :meth:`Agent.statistics` with all four counts 0 until the request
goes on (in its next step); Node's views (``sockets``, ``free_sockets``,
``requests``) leave it out.

The books change only in synchronous code. Each await that can be cancelled (opening a
connection, waiting in the queue, taking a free connection from its watcher) is
bracketed so that a cancel leaves the books as if the request had never come: an opening
slot is given back, a queued waiter leaves the queue, a connection handed to a waiter
that was cancelled meanwhile is handed on. A waiter whose connection was closed before
it ran goes on as if it had stayed queued (it takes a free connection, connects, or
queues again, at the back).

Tasks
-----
The agent owns one nursery (``async with Agent() as agent``; the global agent and any
agent used without ``async with`` get one from a system task of the current run). In it
lives one watcher task per free connection: it waits for the connection to become
readable, with the idle timeout as deadline. Bytes, EOF, an error or the deadline all
mean the connection is dead: the watcher takes it out of ``free`` and closes it. Taking a
free connection cancels its watcher and waits for the watcher to finish, so no request
is ever handed a connection its watcher has seen die.
"""

from __future__ import annotations

import contextlib
import math
import re
import socket as stdlib_socket
from collections import deque
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from ._connection import HTTPConnection, close_stream_now
from ._errors import InvalidArgValueError, check_number
from ._events import EventEmitter
from ._headers import max_header_size as default_max_header_size

if TYPE_CHECKING:
    from ._incoming import IncomingMessage

_KEEP_ALIVE_HINT = re.compile(r"^timeout=(\d+)")
_AgentT = TypeVar("_AgentT", bound="Agent")  # typing.Self is Python 3.11+


@attrs.define
class ConnectOptions:
    """Where and how a connection is opened: what :meth:`Agent.create_connection`
    receives. Node: the options passed to ``agent.createConnection(options)``."""

    #: Host name or address to connect to.
    host: str = "localhost"
    #: TCP port.
    port: int = 80
    #: Local address to bind before connecting. Node: ``localAddress``.
    local_address: str | None = None
    #: 4 or 6 to connect over that IP version only. Node: ``family``.
    family: int | None = None
    #: Connect to this Unix socket instead. Node: ``socketPath``.
    socket_path: str | None = None


@attrs.define(eq=False)
class PooledConnection:
    """A connection and its place in an agent's books."""

    connection: HTTPConnection
    name: str
    watcher: trio.CancelScope | None = None
    watcher_done: trio.Event | None = None
    #: The watcher task is inside ``receive_some`` (so taking it back must wait).
    watching: bool = False
    dead: bool = False
    #: The idle timeout it was released with (kept if it goes back after a cancel);
    #: ``None``: not to be kept.
    idle_timeout: float | None = math.inf

    @property
    def stream(self) -> trio.abc.Stream:
        return self.connection.stream


@attrs.define(eq=False)
class _Waiter:
    event: trio.Event = attrs.field(factory=trio.Event)
    connection: PooledConnection | None = None
    may_connect: bool = False


@attrs.define(eq=False)
class _Pool:
    name: str
    active: list[PooledConnection] = attrs.field(factory=list)
    free: list[PooledConnection] = attrs.field(factory=list)
    waiters: deque[_Waiter] = attrs.field(factory=deque)
    connecting: int = 0
    #: Requests inside ``Agent._acquire`` with this pool.
    acquiring: int = 0

    @property
    def size(self) -> int:
        return len(self.active) + len(self.free) + self.connecting

    @property
    def empty(self) -> bool:
        return not (self.size or self.waiters or self.acquiring)


@attrs.frozen
class PoolStatistics:
    """One origin's pool: connections in use, idle and being opened; queued requests.

    Node: the lengths of ``agent.sockets[name]``, ``freeSockets[name]`` and
    ``requests[name]``.
    """

    #: Connections in use by a request.
    active: int
    #: Idle connections, kept for reuse.
    free: int
    #: Connections being opened.
    connecting: int
    #: Requests waiting for a connection.
    queued: int


@attrs.frozen
class AgentStatistics:
    """A snapshot of an agent's pools, returned by :meth:`Agent.statistics`.

    Node has no equivalent; Node's ``agent.sockets``, ``freeSockets`` and ``requests``
    hold the same counts.
    """

    #: Every connection of every pool, opening ones included.
    total_connections: int
    #: Per origin name.
    pools: Mapping[str, PoolStatistics]

    def __str__(self) -> str:
        parts = [
            f"{name}: {p.active} active, {p.free} free, {p.connecting} connecting, "
            f"{p.queued} queued"
            for name, p in self.pools.items()
        ]
        return " | ".join([f"{self.total_connections} connections", *parts])


class Agent(EventEmitter):
    """Pools of connections per origin, reused for keep-alive. Node: ``http.Agent``.

    Times are in seconds. ``max_sockets`` caps the connections of one origin,
    ``max_total_sockets`` those of all origins, ``max_free_sockets`` the idle ones kept
    per origin; ``scheduling`` picks which idle connection is reused (``"lifo"``: the
    most recently used, ``"fifo"``: the least). ``timeout`` is the idle time after
    which a free connection is closed (unlike Node, it does not become the requests'
    inactivity timeout: use ``req.set_timeout()`` for that). A server's
    ``Keep-Alive: timeout=N`` hint, less ``agent_keep_alive_timeout_buffer``, shortens
    the idle life of a free connection. ``retry_stale`` (not in Node) retries once, on a
    new connection, an idempotent request whose reused connection turned out closed
    before any response byte arrived.

    Use it as ``async with Agent(...) as agent:``; leaving the block is
    :meth:`destroy` and ends its watcher tasks. An agent used without ``async with``
    is supervised by a system task of the current trio run instead.
    """

    def __init__(
        self,
        *,
        keep_alive: bool = False,
        keep_alive_msecs: float = 1.0,
        max_sockets: float = math.inf,
        max_total_sockets: float = math.inf,
        max_free_sockets: int = 256,
        scheduling: str = "lifo",
        timeout: float | None = None,
        agent_keep_alive_timeout_buffer: float = 1.0,
        retry_stale: bool = True,
        default_port: int = 80,
        protocol: str = "http:",
        max_header_size: int = default_max_header_size,
    ) -> None:
        super().__init__()
        if scheduling not in ("fifo", "lifo"):
            raise InvalidArgValueError(
                f"The argument 'scheduling' must be one of: 'fifo', 'lifo'. Received {scheduling!r}"
            )
        #: Keep connections for reuse. Node: ``agent.keepAlive``.
        self.keep_alive = bool(keep_alive)
        #: TCP keep-alive initial delay, seconds (0 means 1). Node: ``keepAliveMsecs``.
        self.keep_alive_msecs = check_number("keep_alive_msecs", keep_alive_msecs, 0) or 1.0
        #: Connections per origin (0 means no limit). Node: ``agent.maxSockets``.
        self.max_sockets = check_number("max_sockets", max_sockets, 0) or math.inf
        #: Connections across origins. Node: ``agent.maxTotalSockets``.
        self.max_total_sockets = check_number("max_total_sockets", max_total_sockets, 1)
        #: Idle connections kept per origin (0 means 256). Node: ``agent.maxFreeSockets``.
        self.max_free_sockets = int(check_number("max_free_sockets", max_free_sockets, 0) or 256)
        #: ``"lifo"`` or ``"fifo"``. Node: ``scheduling``.
        self.scheduling = scheduling
        #: Idle timeout of connections, seconds (``None``: none). Node: ``timeout``.
        self.timeout = None if timeout is None else check_number("timeout", timeout, 0) or None
        buffer = agent_keep_alive_timeout_buffer
        if (
            isinstance(buffer, bool)
            or not isinstance(buffer, (int, float))
            or not (0 <= buffer < math.inf)
        ):
            buffer = 1.0  # Node: anything else silently becomes the default
        #: Subtracted from a server's keep-alive hint. Node: ``agentKeepAliveTimeoutBuffer``.
        self.agent_keep_alive_timeout_buffer = float(buffer)
        #: Retry an idempotent request once when its reused connection was stale.
        self.retry_stale = bool(retry_stale)
        #: Node: ``agent.defaultPort``.
        self.default_port = default_port
        #: Node: ``agent.protocol``.
        self.protocol = protocol
        #: Budget for response heads. Node: ``maxHeaderSize``.
        self.max_header_size = max_header_size
        self._pools: dict[str, _Pool] = {}
        self._total = 0
        self._nursery: trio.Nursery | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._run_token: object = None
        self._opening: trio.Event | None = None

    # --- life cycle ---------------------------------------------------------------------

    async def __aenter__(self: _AgentT) -> _AgentT:
        if self._nursery is not None:
            raise RuntimeError("this Agent is already open")
        stack = contextlib.AsyncExitStack()
        self._nursery = await stack.enter_async_context(trio.open_nursery())
        self._exit_stack = stack
        self._run_token = trio.lowlevel.current_trio_token()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._exit_stack = self._exit_stack, None
        self.destroy()
        if stack is not None:
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()
            try:
                await stack.aclose()
            finally:
                self._nursery = None

    async def _ensure_open(self) -> trio.Nursery:
        """The nursery for watchers; opened by a system task if not ``async with``."""
        token = trio.lowlevel.current_trio_token()
        if self._nursery is not None and self._run_token is token:
            return self._nursery
        if self._run_token is not token:
            # A previous trio run (now over) used this agent: its books are void.
            self._pools.clear()
            self._total = 0
            self._nursery = None
            self._opening = None
            self._run_token = token
        if self._opening is None:
            self._opening = trio.Event()
            trio.lowlevel.spawn_system_task(self._supervise, self._opening)
        await self._opening.wait()
        assert self._nursery is not None
        return self._nursery

    async def _supervise(self, ready: trio.Event) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                ready.set()
                try:
                    await trio.sleep_forever()
                finally:
                    self.destroy()  # while the nursery can still take closing tasks
        finally:
            self._nursery = None

    def destroy(self) -> None:
        """Close every connection, free and in use; queued requests stay queued (one
        handed a connection it has not used yet too) and the agent stays usable.
        Node: ``agent.destroy()``."""
        for pool in list(self._pools.values()):
            for pooled in [*pool.free, *pool.active]:
                self._drop(pooled)

    # --- naming and views ------------------------------------------------------------

    def get_name(
        self,
        host: str | None = None,
        port: int | None = None,
        local_address: str | None = None,
        family: int | None = None,
        socket_path: str | None = None,
    ) -> str:
        """The pool key of an origin, exactly as Node builds it.

        Node: ``agent.getName(options)``.
        """
        name = f"{host or 'localhost'}:{port or ''}:{local_address or ''}"
        if family in (4, 6):
            name += f":{family}"
        if socket_path:
            name += f":{socket_path}"
        return name

    @property
    def sockets(self) -> Mapping[str, tuple[trio.abc.Stream, ...]]:
        """Streams in use, by name. Node: ``agent.sockets``."""
        return MappingProxyType(
            {
                n: tuple(p.stream for p in pool.active)
                for n, pool in self._pools.items()
                if pool.active
            }
        )

    @property
    def free_sockets(self) -> Mapping[str, tuple[trio.abc.Stream, ...]]:
        """Idle streams, by name. Node: ``agent.freeSockets``."""
        return MappingProxyType(
            {n: tuple(p.stream for p in pool.free) for n, pool in self._pools.items() if pool.free}
        )

    @property
    def requests(self) -> Mapping[str, int]:
        """How many requests wait for a connection, by name. Node: ``agent.requests``."""
        return MappingProxyType(
            {n: len(pool.waiters) for n, pool in self._pools.items() if pool.waiters}
        )

    @property
    def total_socket_count(self) -> int:
        """Connections of all origins. Node: ``agent.totalSocketCount``."""
        return self._total

    def statistics(self) -> AgentStatistics:
        """A frozen snapshot of every pool."""
        return AgentStatistics(
            total_connections=self._total,
            pools=MappingProxyType(
                {
                    name: PoolStatistics(
                        len(pool.active), len(pool.free), pool.connecting, len(pool.waiters)
                    )
                    for name, pool in self._pools.items()
                }
            ),
        )

    # --- hooks (override in a subclass) --------------------------------------------

    async def create_connection(self, options: ConnectOptions) -> trio.abc.Stream:
        """Open a stream to the origin. Override to connect differently.

        Node: ``agent.createConnection(options)``.
        """
        stream = await open_stream(options)
        if self.keep_alive and isinstance(stream, trio.SocketStream):
            _set_tcp_keep_alive(stream, self.keep_alive_msecs)
        return stream

    def keep_socket_alive(self, stream: trio.abc.Stream, response: IncomingMessage) -> float | None:
        """Whether a connection may go to the free pool, and for how long.

        Returns the idle timeout in seconds (``math.inf`` for none), or ``None`` to
        close the connection instead. Node: ``agent.keepSocketAlive(socket)`` (which
        returns a boolean and sets the socket's timeout).
        """
        idle = self.timeout or 0.0
        hint = response._header_value(b"keep-alive")
        if hint is not None:
            match = _KEEP_ALIVE_HINT.match(hint.decode("latin-1"))
            if match:
                hinted = int(match.group(1)) - self.agent_keep_alive_timeout_buffer
                if hinted <= 0:
                    return None
                if idle and hinted < idle:
                    idle = hinted
        return idle or math.inf

    def reuse_socket(self, stream: trio.abc.Stream, request: Any) -> None:
        """Called when a free connection is given to ``request``.

        Node: ``agent.reuseSocket(socket, request)``.
        """
        request.reused_socket = True

    # --- acquiring and releasing -------------------------------------------------------

    def _pool(self, name: str) -> _Pool:
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = _Pool(name)
        return pool

    def _forget_if_empty(self, pool: _Pool) -> None:
        if pool.empty and self._pools.get(pool.name) is pool:
            del self._pools[pool.name]

    def _can_connect(self, pool: _Pool) -> bool:
        return pool.size < self.max_sockets and self._total < self.max_total_sockets

    async def _acquire(
        self, name: str, options: ConnectOptions, *, fresh: bool = False
    ) -> tuple[PooledConnection, bool]:
        """A connection for one request, and whether it was reused.

        ``fresh`` skips the free pool (for a retry after a stale connection).
        """
        await self._ensure_open()
        pool = self._pool(name)
        pool.acquiring += 1  # held: not forgotten while we await (see the module's doc)
        reserved = False  # a slot reserved for us by _on_slot_freed
        try:
            while True:
                while pool.free and not fresh and not reserved:
                    pooled = pool.free.pop() if self.scheduling == "lifo" else pool.free.pop(0)
                    pool.active.append(pooled)
                    if await self._take_from_watcher(pooled):
                        return pooled, True
                if not reserved and not self._can_connect(pool):
                    self._make_room(pool)
                if reserved or self._can_connect(pool):
                    return await self._connect(pool, options, reserved=reserved), False
                waiter = _Waiter()
                pool.waiters.append(waiter)
                try:
                    await waiter.event.wait()
                except BaseException:
                    self._abandon(pool, waiter)
                    raise
                if waiter.connection is not None:
                    if not waiter.connection.dead:
                        return waiter.connection, False
                    continue  # destroyed before we ran: as if we had stayed queued
                reserved = waiter.may_connect
        finally:
            pool.acquiring -= 1
            self._forget_if_empty(pool)

    def _make_room(self, pool: _Pool) -> None:
        """Only the total cap stands in the way: close the longest-idle free connection
        of another origin to make room (Node would wait for it to time out)."""
        if pool.size >= self.max_sockets or self._total < self.max_total_sockets:
            return
        for other in self._pools.values():
            if other is not pool and other.free:
                self._drop(other.free[0])
                return

    async def _take_from_watcher(self, pooled: PooledConnection) -> bool:
        """Stop the watcher of a connection just moved from free to active; ``False``
        (and the connection discarded) if the watcher saw it die first."""
        if pooled.watcher is not None and pooled.watcher_done is not None:
            pooled.watcher.cancel()
        if pooled.watching and pooled.watcher_done is not None:
            # The watcher is inside receive_some: wait until it is out.
            try:
                await pooled.watcher_done.wait()
            except BaseException:
                # Cancelled while the watcher winds down: let it finish (it is already
                # cancelled, so this is short) so that no two watchers read the stream,
                # then the connection goes back.
                with trio.CancelScope(shield=True):
                    await pooled.watcher_done.wait()
                self._release(pooled, reusable=not pooled.dead, idle_timeout=pooled.idle_timeout)
                raise
        # A watcher that never ran finds its scope cancelled and leaves the stream alone.
        pooled.watcher = pooled.watcher_done = None
        pooled.watching = False
        if pooled.dead or pooled.connection.broken:
            self._drop(pooled)
            return False
        return True

    async def _connect(
        self, pool: _Pool, options: ConnectOptions, *, reserved: bool = False
    ) -> PooledConnection:
        if not reserved:
            pool.connecting += 1
            self._total += 1
        try:
            stream = await self.create_connection(options)
        except BaseException:
            pool.connecting -= 1
            self._total -= 1
            self._on_slot_freed(pool)
            raise
        pool.connecting -= 1
        pooled = PooledConnection(
            HTTPConnection(stream, max_header_size=self.max_header_size), pool.name
        )
        pool.active.append(pooled)
        return pooled

    def _abandon(self, pool: _Pool, waiter: _Waiter) -> None:
        """A queued request was cancelled: leave the queue, pass on what it was given."""
        if waiter in pool.waiters:
            pool.waiters.remove(waiter)
        elif waiter.connection is not None:
            connection = waiter.connection
            self._release(connection, reusable=True, idle_timeout=connection.idle_timeout)
        elif waiter.may_connect:
            pool.connecting -= 1  # give back the slot reserved for it
            self._total -= 1
            self._on_slot_freed(pool)

    def _release(
        self, pooled: PooledConnection, *, reusable: bool, idle_timeout: float | None
    ) -> None:
        """A request is done with ``pooled``: hand it to the oldest waiter of its
        origin, keep it free (``idle_timeout`` seconds; ``None``: don't keep), or close
        it. Synchronous, so the books never wait half-changed."""
        pool = self._pools.get(pooled.name)
        if pool is None or pooled not in pool.active:
            return
        if not reusable or pooled.dead or pooled.connection.broken:
            self._drop(pooled)
            return
        pooled.idle_timeout = idle_timeout
        if pool.waiters:
            waiter = pool.waiters.popleft()
            waiter.connection = pooled
            waiter.event.set()
            return
        if (
            not self.keep_alive
            or idle_timeout is None
            or len(pool.free) >= self.max_free_sockets
            or self._total > self.max_total_sockets
            or self._nursery is None
            or (self._total >= self.max_total_sockets and self._others_waiting(pool))
        ):
            self._drop(pooled)
            return
        pool.active.remove(pooled)
        pool.free.append(pooled)
        pooled.watcher = trio.CancelScope()
        pooled.watcher_done = trio.Event()
        self._nursery.start_soon(
            self._watch, pooled, pooled.watcher, pooled.watcher_done, idle_timeout
        )

    def _detach(self, pooled: PooledConnection) -> None:
        """Take a connection out of the books without closing it (upgrades, CONNECT)."""
        pool = self._pools.get(pooled.name)
        if pool is not None and pooled in pool.active:
            pool.active.remove(pooled)
            self._total -= 1
            self._on_slot_freed(pool)
            self._forget_if_empty(pool)

    def _others_waiting(self, pool: _Pool) -> bool:
        return any(other.waiters for other in self._pools.values() if other is not pool)

    def _drop(self, pooled: PooledConnection) -> None:
        pool = self._pools.get(pooled.name)
        if pool is None:
            return
        if pooled in pool.active:
            pool.active.remove(pooled)
        elif pooled in pool.free:
            pool.free.remove(pooled)
            if pooled.watcher is not None:
                pooled.watcher.cancel()
        else:
            return
        self._total -= 1
        pooled.dead = True
        pooled.connection.mark_broken()
        _close_now(pooled.stream, self._nursery)
        self._on_slot_freed(pool)
        self._forget_if_empty(pool)

    def _on_slot_freed(self, pool: _Pool) -> None:
        """A connection slot opened: the oldest waiter of that origin may connect, or,
        failing that, the first origin whose queue is held back by the total cap."""
        candidates = [pool, *(p for p in self._pools.values() if p is not pool)]
        for candidate in candidates:
            for waiter in candidate.waiters:  # the oldest only: a woken one left the queue
                if self._can_connect(candidate):
                    # The slot is reserved in the books now, so that nobody else takes
                    # it and the pool is not forgotten before the waiter runs.
                    candidate.waiters.remove(waiter)
                    candidate.connecting += 1
                    self._total += 1
                    waiter.may_connect = True
                    waiter.event.set()
                    return
                break

    async def _watch(
        self,
        pooled: PooledConnection,
        scope: trio.CancelScope,
        done: trio.Event,
        idle_timeout: float,
    ) -> None:
        died = False
        try:
            with scope:
                if scope.cancel_called:
                    return  # taken back before this task first ran
                pooled.watching = True
                with trio.move_on_after(idle_timeout):
                    await pooled.stream.receive_some(1)
                died = True  # bytes, EOF, or the idle deadline: all end the connection
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            died = True
        finally:
            if died:
                pooled.dead = True
            done.set()
        if died:
            self._drop(pooled)


async def open_stream(options: ConnectOptions) -> trio.abc.Stream:
    """Connect as ``options`` say: a Unix socket, or TCP (over IPv4 or IPv6 only when
    ``family`` is 4 or 6)."""
    if options.socket_path is not None:
        return await trio.open_unix_socket(options.socket_path)
    host = options.host
    if options.family in (4, 6):
        family = stdlib_socket.AF_INET if options.family == 4 else stdlib_socket.AF_INET6
        infos = await trio.socket.getaddrinfo(
            host, options.port, family=family, type=stdlib_socket.SOCK_STREAM
        )
        host = str(infos[0][4][0])
    return await trio.open_tcp_stream(host, options.port, local_address=options.local_address)


def _close_now(stream: trio.abc.Stream, nursery: trio.Nursery | None) -> None:
    """Close a stream without awaiting: at once when it can be, else in the nursery."""
    if not close_stream_now(stream) and nursery is not None:
        nursery.start_soon(trio.aclose_forcefully, stream)


def _set_tcp_keep_alive(stream: trio.SocketStream, delay: float) -> None:
    with contextlib.suppress(OSError, AttributeError):
        stream.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_KEEPALIVE, 1)
        stream.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_KEEPIDLE, max(1, int(delay)))
