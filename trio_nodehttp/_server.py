"""Server, ServerResponse and the per-connection loop.

Structure
---------
``Server.listen`` (started with ``nursery.start``) opens the listeners and one nursery
that holds an accept loop per listener and one task per connection. Each connection task
runs :meth:`Server._serve_connection` inside its own cancel scope (``close_*`` cancel it)
and serves requests one after another: pipelined requests wait in the read buffer, so
responses go out in order and a client that sends without reading is held back by TCP
(Node's parser pause, S41, for free).

Timeouts follow the connection's state, each a deadline on the scope around the await
that it bounds::

    state          deadline                                   on expiry
    idle (first)   connection start + headers_timeout         408, close
    idle (later)   end of last response + keep-alive + buffer close quietly
    reading head   message start + headers_timeout            408, close
    request open   message start + request_timeout            408 (if nothing sent), close
    (handler runs; the deadline is lifted once the request body is complete)

``timeout`` (socket inactivity) is a separate watcher task per connection, started only
when some inactivity timeout is set, because it must fire while the handler works and
must not cancel anything when somebody listens for ``"timeout"``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import re
import socket as stdlib_socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import trio

from ._connection import HTTPConnection, watch_inactivity
from ._errors import (
    ConnectionResetError,
    HeadersSentError,
    HTTPError,
    InvalidArgTypeError,
    InvalidArgValueError,
    InvalidCharError,
    InvalidStatusCodeError,
    OutOfRangeError,
    ParseError,
    RequestTimeoutError,
    StreamDestroyedError,
    check_number,
)
from ._events import EventEmitter, Listener, emit_in_background
from ._headers import (
    HeaderValue,
    check_header_pairs,
    has_token,
    keeps_alive,
    max_header_size,
)
from ._incoming import IncomingMessage
from ._outgoing import _CHUNKED_TOKEN, OutgoingMessage, header_lines
from ._parse import END_OF_BODY, EndOfBody, RequestHead
from ._status import STATUS_CODES

logger = logging.getLogger("trio_nodehttp")

_EXPECT_CONTINUE = re.compile(rb"(?:^|\W)100-continue(?:$|\W)", re.IGNORECASE)
_LINK = re.compile(r'^<[^>]*>(?:\s*;\s*[^;"\s]+(?:=(")?[^;"\s]*\1)?)*$')
_INVALID_STATUS_CHAR = re.compile(r"[^\t\x20-\x7e\x80-\xff]")

# How long, at most, a closing connection waits for its peer's FIN after our own, so
# that unread request bytes do not turn the close into a reset that eats the response.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 256 * 1024

# The body of an upgrade request is read before the listener runs and kept for it; past
# this size the request is refused with 413 (Node streams it; see the docs' differences).
_UPGRADE_BODY_LIMIT = 1024 * 1024

# accept() errors that mean "out of resources": back off instead of crashing (as trio's
# serve_listeners does).
_ACCEPT_BACKOFF_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}

_CANNED_STATUS = {
    "ERR_UPGRADE_BODY_TOO_LARGE": 413,
    "HPE_HEADER_OVERFLOW": 431,
    "HPE_CHUNK_EXTENSIONS_OVERFLOW": 413,
    "ERR_HTTP_REQUEST_TIMEOUT": 408,
}

RequestHandler = Callable[["IncomingMessage", "ServerResponse"], Any]


def _status_message_for(code: int) -> str:
    return STATUS_CODES.get(code, "unknown")


class ServerResponse(OutgoingMessage):
    """The response to one request. Node: ``http.ServerResponse``."""

    #: Status sent by the implicit head. Node: ``res.statusCode``.
    status_code: int = 200
    #: Reason phrase; ``None`` means Node's phrase for the code.
    #: Node: ``res.statusMessage``.
    status_message: str | None = None
    send_date = True
    _expect_continue = False
    _sent_100 = False
    _timeout_hook: Callable[[float], None] | None = None
    _server: Server | None = None
    # Closing: "close" is emitted once, when the response is finished or its connection
    # closes first. Watching for the second costs a task, so it runs only while someone
    # wants it (a "close" listener, wait_closed()) and the handler runs with the whole
    # request read: _watch_hook starts it (set by the server while the handler runs).
    _is_closed = False
    _closed: trio.Event | None = None
    _want_watch = False
    _watch_hook: Callable[[], None] | None = None
    _watch_scope: trio.CancelScope | None = None
    _watch_done: trio.Event | None = None
    _closing_scopes: list[trio.CancelScope] | None = None  # from cancel_on_close()

    def __init__(self, req: IncomingMessage, connection: HTTPConnection) -> None:
        super().__init__()
        self._connection = connection
        #: The request this responds to. Node: ``res.req``.
        self.req = req
        if req.method == "HEAD":
            self._has_body = False
        if req.http_version_major < 1 or req.http_version_minor < 1:  # Node's test
            te = req._header_value(b"te")
            self.use_chunked_encoding_by_default = te is not None and bool(
                _CHUNKED_TOKEN.search(te.decode("latin-1"))
            )

    @property
    def socket(self) -> trio.abc.Stream | None:
        """The connection's stream. Node: ``res.socket``."""
        return None if self._connection is None else self._connection.stream

    def _first_line(self) -> str:
        return f"HTTP/1.1 {self.status_code} {self.status_message}"

    def write_head(
        self,
        status_code: int | str,
        status_message: str | Mapping[str, HeaderValue] | Sequence[Any] | None = None,
        headers: Mapping[str, HeaderValue] | Sequence[Any] | None = None,
    ) -> ServerResponse:
        """Render the status line and headers (sent with the next write); returns ``self``.

        ``headers`` as a mapping overrides same-name headers already set; as a list of
        pairs (or a flat ``[name, value, ...]`` list) it replaces them and keeps
        duplicates. A second call raises :class:`HeadersSentError`.
        Node: ``res.writeHead(statusCode[, statusMessage][, headers])``.
        """
        if self._head_rendered:
            raise HeadersSentError("Cannot write headers after they are sent to the client")
        if status_message is not None and not isinstance(status_message, str):
            headers, status_message = status_message, None
        code = _check_status(status_code)
        if status_message is None:
            status_message = self.status_message
        if status_message is None:
            status_message = _status_message_for(code)  # Node's own phrase: known good
        elif _INVALID_STATUS_CHAR.search(status_message):
            raise InvalidCharError("Invalid character in statusMessage")
        self.status_code = code
        self.status_message = status_message
        if headers is not None:
            self._merge_head_headers(headers)
        if code in (204, 304) or 100 <= code <= 199:
            self._has_body = False
        if self._expect_continue and not self._sent_100:
            # The client may still send the body it was holding back: don't reuse.
            self.should_keep_alive = False
        if self._server is not None and self._server._closing:
            self.should_keep_alive = False
        self._render_head()
        return self

    def _merge_head_headers(self, headers: Mapping[str, HeaderValue] | Sequence[Any]) -> None:
        if isinstance(headers, Mapping):
            for name, value in headers.items():
                self._store.set(name, value)
            return
        pairs = check_header_pairs(headers)
        for name in {name.lower() for name, _ in pairs}:
            self._store.remove(name)
        for name, value in pairs:
            self._store.append(name, value)

    def _render_implicit_head(self) -> None:
        self.write_head(self.status_code)

    async def _send_informational(
        self, code: int, headers: Iterable[tuple[str, HeaderValue]] = ()
    ) -> None:
        if self._head_rendered:
            raise HeadersSentError("Cannot write informational responses after the headers")
        text = "".join(header_lines(name, value) for name, value in headers)
        data = f"HTTP/1.1 {code} {_status_message_for(code)}\r\n{text}\r\n"
        await self._send([data.encode("latin-1")])

    async def write_continue(self) -> None:
        """Send ``100 Continue``. Node: ``res.writeContinue()``."""
        await self._send_informational(100)
        self._sent_100 = True

    async def write_processing(self) -> None:
        """Send ``102 Processing``. Node: ``res.writeProcessing()``."""
        await self._send_informational(102)

    async def write_early_hints(self, hints: Mapping[str, HeaderValue]) -> None:
        """Send ``103 Early Hints`` with the ``link`` value(s) and any other headers.

        Does nothing without a ``link``. Node: ``res.writeEarlyHints(hints)``.
        """
        if not isinstance(hints, Mapping):
            raise InvalidArgTypeError('The "hints" argument must be a mapping')
        link = next((value for name, value in hints.items() if name.lower() == "link"), None)
        if link is None:
            return
        links = [link] if isinstance(link, str) else [str(item) for item in link]  # type: ignore[union-attr]
        for item in links:
            if not _LINK.match(item):
                raise InvalidArgValueError(f"The argument 'hints' is invalid. Received {link!r}")
        others = [(name, value) for name, value in hints.items() if name.lower() != "link"]
        await self._send_informational(
            103, [("Link", ", ".join(links)), *check_header_pairs(others)]
        )

    async def write_information(
        self, status_code: int, headers: Mapping[str, HeaderValue] | None = None
    ) -> None:
        """Send any 1xx response but 101. Node: ``res.writeInformation()`` (v26.2)."""
        if status_code == 101:
            raise InvalidStatusCodeError(f"Invalid status code: {status_code}")
        if not isinstance(status_code, int) or not 100 <= status_code <= 199:
            raise OutOfRangeError(
                f'The value of "statusCode" is out of range. It must be >= 100 and <= 199. '
                f"Received {status_code!r}"
            )
        pairs = list(headers.items()) if headers else []
        await self._send_informational(status_code, check_header_pairs(pairs))

    # --- closing ----------------------------------------------------------------------

    async def wait_closed(self) -> None:
        """Return once the response is finished or its client has gone, whichever comes
        first (:attr:`writable_finished` tells which). A handler that waits on its own
        events (a long poll, server-sent events) runs this beside its work and cancels
        the work when it returns; see the server guide.

        Node: the ``'close'`` event of ``http.ServerResponse``.
        """
        if self._is_closed:
            await trio.lowlevel.checkpoint()
            return
        if self._closed is None:
            self._closed = trio.Event()
        self._want_close_watch()
        await self._closed.wait()

    @contextlib.contextmanager
    def cancel_on_close(self) -> Iterator[trio.CancelScope]:
        """A cancel scope that is cancelled if the client goes away before the response
        is finished: ``with res.cancel_on_close(): ...`` ends the work inside (a long
        poll, an event stream) as soon as nobody is left to read it.

        Node has no equivalent; it is the trio form of listening for ``'close'`` with
        ``!res.writableFinished``.
        """
        scope = trio.CancelScope()
        if self._is_closed and self.destroyed:
            scope.cancel()
        elif not self._is_closed:
            if self._closing_scopes is None:
                self._closing_scopes = []
            self._closing_scopes.append(scope)
            self._want_close_watch()
        try:
            with scope:
                yield scope
        finally:
            if self._closing_scopes is not None and scope in self._closing_scopes:
                self._closing_scopes.remove(scope)

    def _listener_added(self, event: str) -> None:
        if event == "close":
            self._want_close_watch()

    def _want_close_watch(self) -> None:
        if not self._want_watch:
            self._want_watch = True
            if self._watch_hook is not None:
                self._watch_hook()

    async def _finished(self) -> None:
        req = self.req
        if req.complete and not req._ended:
            await req._end()  # Node dumps an unread request: its "end" and "close" come now
        await self._close(background=False)

    async def _close(self, *, background: bool) -> None:
        """Closed (finished, or the connection is gone): ``"close"`` on the request (if
        it is still open) and on the response, once. From a background task the
        listeners' exceptions are logged (emit_in_background)."""
        if self._is_closed:
            return
        self._is_closed = True
        if self._watch_scope is not None:
            self._watch_scope.cancel()
        if self._closed is not None:
            self._closed.set()
        if not self.writable_finished:
            self.destroyed = True
            for scope in self._closing_scopes or ():
                scope.cancel()
        if not (self._listeners or self.req._listeners):
            return
        if background:
            await emit_in_background(self._emit_close, lambda exc: False, '"close"')
        else:
            await self._emit_close()

    async def _emit_close(self) -> bool:
        req = self.req
        if self.destroyed:
            await req._abort()
            await req._close()
        elif req.complete:
            await req._close()
        # else: finished with the body unread; it is drained next, then "end", "close".
        return await self.emit("close")

    def _send_failed(self, exc: Exception) -> None:
        self.destroyed = True
        raise StreamDestroyedError("Cannot call write after a stream was destroyed") from exc

    def set_timeout(self, seconds: float, callback: Listener | None = None) -> ServerResponse:
        """Set the connection's inactivity timeout; ``callback`` runs on ``"timeout"``.

        Node: ``res.setTimeout(msecs[, callback])``.
        """
        if callback is not None:
            self.once("timeout", callback)
        if self._timeout_hook is not None:
            self._timeout_hook(seconds)
        return self


def _check_status(status_code: object) -> int:
    code: int | None = None
    if isinstance(status_code, int) and not isinstance(status_code, bool):
        code = status_code
    elif isinstance(status_code, str) and status_code.isdigit():
        code = int(status_code)
    if code is None or not 100 <= code <= 999:
        raise InvalidStatusCodeError(f"Invalid status code: {status_code}")
    return code


@attrs.frozen
class ServerStatistics:
    """A snapshot of a server's connections, returned by :meth:`Server.statistics`.

    Node has no equivalent; the closest is ``server.getConnections()``.
    """

    #: Connections open now (idle, active and upgraded).
    connections_open: int
    #: Open connections waiting for a next request.
    connections_idle: int
    #: Open connections receiving a request or sending a response.
    connections_active: int
    #: Connections handed to an ``upgrade`` or ``connect`` listener.
    connections_upgraded: int
    #: Requests received since the server was created.
    requests_served: int


@attrs.define(eq=False)
class _Connection:
    """The server's books on one connection."""

    connection: HTTPConnection
    nursery: trio.Nursery
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    idle: bool = True
    upgraded: bool = False
    requests: int = 0
    request: IncomingMessage | None = None
    response: ServerResponse | None = None
    inactivity_timeout: float = 0.0
    watcher: trio.CancelScope | None = None


class _Exchange:
    """One request/response pair on a connection: reads the body for the handler."""

    __slots__ = ("body_done", "body_error", "connection", "req", "request_scope", "res")

    def __init__(self, connection: HTTPConnection, request_scope: trio.CancelScope) -> None:
        self.connection = connection
        self.request_scope = request_scope
        self.body_error: HTTPError | None = None
        self.body_done = False  # the whole request has been read
        self.req: IncomingMessage
        self.res: ServerResponse

    async def receive(self) -> bytes | EndOfBody:
        try:
            item = await self.connection.receive_body()
        except ParseError as exc:
            self.body_error = exc
            raise
        if not isinstance(item, bytes):
            # The request is complete: request_timeout no longer applies.
            self.request_scope.deadline = math.inf
            self.body_done = True
            if self.res._want_watch and self.res._watch_hook is not None:
                self.res._watch_hook()
        return item


def _check_timeout(name: str, value: object) -> float:
    return float(check_number(name, value))


def _check_count(name: str, value: object) -> int:
    return int(check_number(name, value, integer=True))


class Server(EventEmitter):
    """An HTTP/1.1 server. Node: ``http.Server``.

    Create it with :func:`create_server`, then start it in a nursery::

        address = await nursery.start(server.listen, 8000, "127.0.0.1")

    Times are in seconds (Node's milliseconds / 1000); ``0`` turns a timeout off.
    Events: ``"request"`` (req, res), ``"connection"`` (stream), ``"close"``,
    ``"clientError"`` (error, stream), ``"checkContinue"`` and ``"checkExpectation"``
    (req, res), ``"upgrade"`` and ``"connect"`` (req, stream, head), ``"dropRequest"``
    (req, stream), ``"timeout"`` (stream).
    """

    def __init__(
        self,
        handler: RequestHandler | None = None,
        *,
        keep_alive_timeout: float = 5.0,
        keep_alive_timeout_buffer: float = 1.0,
        headers_timeout: float | None = None,
        request_timeout: float = 300.0,
        timeout: float = 0.0,
        max_requests_per_socket: int = 0,
        max_headers_count: int | None = 2000,
        max_header_size: int = max_header_size,
        require_host_header: bool = True,
        join_duplicate_headers: bool = False,
        reject_non_standard_body_writes: bool = False,
        unique_headers: Iterable[str] = (),
        should_upgrade_callback: Callable[[IncomingMessage], bool] | None = None,
    ) -> None:
        super().__init__()
        #: Time allowed to receive a whole request. Node: ``server.requestTimeout``.
        self.request_timeout = _check_timeout("request_timeout", request_timeout)
        if headers_timeout is None:
            headers_timeout = min(60.0, self.request_timeout) if self.request_timeout else 60.0
        #: Time allowed to receive a request's head. Node: ``server.headersTimeout``.
        self.headers_timeout = _check_timeout("headers_timeout", headers_timeout)
        if self.request_timeout and self.headers_timeout > self.request_timeout:
            raise OutOfRangeError(
                'The value of "headers_timeout" is out of range. It must be <= request_timeout '
                f"({self.request_timeout}). Received {self.headers_timeout}"
            )
        #: Idle time allowed between requests. Node: ``server.keepAliveTimeout``.
        self.keep_alive_timeout = _check_timeout("keep_alive_timeout", keep_alive_timeout)
        #: Extra idle time granted past the advertised keep-alive timeout.
        #: Node: ``server.keepAliveTimeoutBuffer``.
        self.keep_alive_timeout_buffer = _check_timeout(
            "keep_alive_timeout_buffer", keep_alive_timeout_buffer
        )
        #: Socket inactivity timeout for new connections. Node: ``server.timeout``.
        self.timeout = _check_timeout("timeout", timeout)
        #: Requests served per connection (0: no limit). Node: ``maxRequestsPerSocket``.
        self.max_requests_per_socket = _check_count(
            "max_requests_per_socket", max_requests_per_socket
        )
        #: Header lines kept per request (0: all). Node: ``server.maxHeadersCount``.
        self.max_headers_count = (
            2000
            if max_headers_count is None
            else _check_count("max_headers_count", max_headers_count)
        )
        #: Budget of a request head (0 means the default 16384). Node: ``maxHeaderSize``.
        self.max_header_size = _check_count("max_header_size", max_header_size) or max_header_size
        #: Refuse HTTP/1.1 requests without Host (400). Node: ``requireHostHeader``.
        self.require_host_header = bool(require_host_header)
        #: Join duplicates of first-wins headers. Node: ``joinDuplicateHeaders``.
        self.join_duplicate_headers = bool(join_duplicate_headers)
        #: Raise on body writes to HEAD/204/304 responses.
        #: Node: ``rejectNonStandardBodyWrites``.
        self.reject_non_standard_body_writes = bool(reject_non_standard_body_writes)
        if isinstance(unique_headers, str):
            raise InvalidArgTypeError('The "unique_headers" argument must be a list of names')
        #: Lowercase names whose list values go out as one line joined with ``"; "``.
        #: Node: ``uniqueHeaders``.
        self.unique_headers = frozenset(name.lower() for name in unique_headers)
        if should_upgrade_callback is not None and not callable(should_upgrade_callback):
            raise InvalidArgTypeError('The "should_upgrade_callback" argument must be callable')
        #: Decides whether a request with ``Upgrade`` is upgraded (default: whether
        #: there is an ``"upgrade"`` listener). Node: ``shouldUpgradeCallback``.
        self.should_upgrade_callback = should_upgrade_callback
        if handler is not None:
            if not callable(handler):
                raise InvalidArgTypeError('The "handler" argument must be callable')
            self.on("request", handler)

        self._connections: set[_Connection] = set()
        self._accept_scopes: list[trio.CancelScope] = []
        self._closing = False
        self._close_emitted = False
        self._all_closed = trio.Event()
        self._requests_served = 0
        self._addresses: list[Any] = []
        self._hint_key: tuple[float, int] | None = None
        self._hint: str | None = None

    # --- starting ---------------------------------------------------------------------

    async def listen(
        self,
        port: int = 0,
        host: str | None = None,
        *,
        backlog: int | None = None,
        path: str | None = None,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on TCP ``host:port`` (or the Unix socket ``path``) and serve until
        :meth:`close` has finished. Without ``host``, as in Node, one dual-stack socket
        on ``::`` serves IPv4 and IPv6 on the same port (``0.0.0.0`` where the machine
        has no IPv6).

        Start it with ``await nursery.start(server.listen, port, host)``, which returns
        the bound ``(host, port)`` (or ``path``). Node: ``server.listen()``.
        """
        if path is not None:
            listeners: list[trio.SocketListener] = [await _open_unix_listener(path, backlog)]
        else:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise OutOfRangeError(f"Port should be >= 0 and < 65536. Received {port!r}.")
            if host is None:
                listeners = [await _open_any_address_listener(port, backlog)]
            else:
                listeners = await trio.open_tcp_listeners(port, host=host, backlog=backlog)
        try:
            await self.serve_listeners(listeners, task_status=task_status)
        finally:
            if path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    async def serve_listeners(
        self,
        listeners: Sequence[trio.abc.Listener[Any]],
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept on every listener and serve each connection, until :meth:`close` is
        done. Sends the first listener's address to ``task_status``."""
        try:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    scope = trio.CancelScope()
                    self._accept_scopes.append(scope)
                    nursery.start_soon(self._accept_loop, listener, scope, nursery)
                self._addresses = [_address_of(listener) for listener in listeners]
                task_status.started(self._addresses[0] if self._addresses else None)
        finally:
            self._addresses = []
            self._check_all_closed()

    async def _accept_loop(
        self, listener: trio.abc.Listener[Any], scope: trio.CancelScope, nursery: trio.Nursery
    ) -> None:
        with scope:
            try:
                while not self._closing:
                    try:
                        stream = await listener.accept()
                    except OSError as exc:
                        if exc.errno not in _ACCEPT_BACKOFF_ERRNOS:
                            raise
                        logger.error("accept() failed, backing off: %s", exc)
                        await trio.sleep(0.1)
                        continue
                    nursery.start_soon(self._run_connection, stream, nursery)
            finally:
                await trio.aclose_forcefully(listener)
        self._accept_scopes.remove(scope)

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve HTTP on one already-open stream (a memory stream, a TLS stream …)
        until the connection ends. The stream is closed afterwards."""
        async with trio.open_nursery() as nursery:
            await self._run_connection(stream, nursery)

    def address(self) -> Any:
        """The first bound address, or ``None`` when not listening.

        Node: ``server.address()``.
        """
        return self._addresses[0] if self._addresses else None

    @property
    def listening(self) -> bool:
        """Whether the server accepts connections. Node: ``server.listening``."""
        return bool(self._accept_scopes)

    # --- stopping ---------------------------------------------------------------------

    async def close(self) -> None:
        """Stop accepting, close idle connections, let active requests finish (their
        responses say ``Connection: close``), wait until every connection is gone, then
        emit ``"close"``. Node: ``server.close()``.
        """
        self._closing = True
        for scope in list(self._accept_scopes):
            scope.cancel()
        self.close_idle_connections()
        self._check_all_closed()
        await self._all_closed.wait()
        if not self._close_emitted:
            self._close_emitted = True
            await self.emit("close")

    def _keep_alive_hint(self) -> str | None:
        """The ``Keep-Alive`` value responses advertise (cached: it is per request)."""
        key = (self.keep_alive_timeout, self.max_requests_per_socket)
        if key != self._hint_key:
            timeout, limit = key
            self._hint_key = key
            self._hint = (
                f"timeout={int(timeout)}" + (f", max={limit}" if limit else "") if timeout else None
            )
        return self._hint

    def close_idle_connections(self) -> None:
        """Close connections that are between requests. Node: ``closeIdleConnections()``."""
        for record in list(self._connections):
            if record.idle and not record.upgraded:
                record.cancel_scope.cancel()

    def close_all_connections(self) -> None:
        """Close every HTTP connection, active or idle; upgraded ones are left alone.

        Node: ``closeAllConnections()``.
        """
        for record in list(self._connections):
            if not record.upgraded:
                record.cancel_scope.cancel()

    def _check_all_closed(self) -> None:
        if self._closing and not self._connections and not self._accept_scopes:
            self._all_closed.set()

    def set_timeout(self, seconds: float, callback: Listener | None = None) -> Server:
        """Set :attr:`timeout` for new connections; ``callback`` listens for ``"timeout"``.

        Node: ``server.setTimeout([msecs][, callback])``.
        """
        self.timeout = _check_timeout("timeout", seconds)
        if callback is not None:
            self.on("timeout", callback)
        return self

    def statistics(self) -> ServerStatistics:
        """A frozen snapshot of the connections and requests served."""
        idle = sum(1 for r in self._connections if r.idle and not r.upgraded)
        upgraded = sum(1 for r in self._connections if r.upgraded)
        return ServerStatistics(
            connections_open=len(self._connections),
            connections_idle=idle,
            connections_active=len(self._connections) - idle - upgraded,
            connections_upgraded=upgraded,
            requests_served=self._requests_served,
        )

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- one connection ---------------------------------------------------------------

    async def _run_connection(self, stream: trio.abc.Stream, nursery: trio.Nursery) -> None:
        connection = HTTPConnection(
            stream,
            max_header_size=self.max_header_size,
        )
        record = _Connection(connection, nursery)
        self._connections.add(record)
        try:
            with record.cancel_scope:
                await self.emit("connection", stream)
                if self.timeout:
                    self._set_inactivity_timeout(record, self.timeout)
                await self._serve_connection(record)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionResetError):
            pass  # the peer went away; nothing to answer
        except Exception:
            # A listener ("connection", "upgrade", "clientError" …) failed: this
            # connection ends, the server goes on.
            logger.exception("Error in a listener; closing the connection")
        finally:
            if record.watcher is not None:
                record.watcher.cancel()
            self._connections.discard(record)
            if not record.upgraded:
                await trio.aclose_forcefully(stream)
            self._check_all_closed()

    async def _serve_connection(self, record: _Connection) -> None:
        connection = record.connection
        started = trio.current_time()
        first = True
        headers_timeout = self.headers_timeout or math.inf
        while True:
            # One cancel scope covers waiting for the next request and reading its head:
            # its deadline is the idle one until a first byte arrives, then the
            # headers timeout counted from that byte (from the connection's start for
            # the first request).
            idle = not connection.has_buffered_data
            if idle:
                record.idle = True
                if self._closing:
                    return
                if first:
                    deadline = started + headers_timeout
                elif self.keep_alive_timeout:
                    deadline = (
                        trio.current_time()
                        + self.keep_alive_timeout
                        + self.keep_alive_timeout_buffer
                    )
                else:
                    deadline = math.inf
            else:
                message_start = started if first else trio.current_time()
                deadline = message_start + headers_timeout
            head: RequestHead | None = None
            error: HTTPError | None = None
            with trio.CancelScope(deadline=deadline) as scope:
                if idle:
                    if not await connection.wait_for_data():
                        return
                    record.idle = False
                    message_start = started if first else trio.current_time()
                    scope.deadline = message_start + headers_timeout
                    idle = False
                try:
                    head = await connection.receive_request_head()
                except EOFError:
                    return
                except ParseError as exc:
                    error = exc
            if head is None:
                if idle and not first:
                    return  # keep-alive expiry: close quietly
                await self._client_error(record, error or RequestTimeoutError("Request timeout"))
                return
            first = False
            if not await self._handle_request(record, head, message_start):
                return

    async def _handle_request(
        self, record: _Connection, head: RequestHead, message_start: float
    ) -> bool:
        """Serve one request; return whether the connection may carry another."""
        connection = record.connection
        method = head.method
        version = head.http_version
        self._requests_served += 1
        record.requests += 1
        request_scope = trio.CancelScope(
            deadline=message_start + self.request_timeout if self.request_timeout else math.inf
        )
        exchange = _Exchange(connection, request_scope)
        req = IncomingMessage(
            connection.stream,
            head.raw_headers,
            version,
            method=method.decode("ascii"),
            url=head.target.decode("latin-1"),
            join_duplicate_headers=self.join_duplicate_headers,
            max_headers_count=self.max_headers_count,
            receive=exchange.receive,
        )
        exchange.req = req
        if not head.chunked and not head.content_length:
            item = connection.receive_body_nowait()
            if isinstance(item, EndOfBody):
                req.complete = True
                request_scope.deadline = math.inf
        res = ServerResponse(req, connection)
        exchange.res = res
        if self._closing or not keeps_alive(head.connection, version):
            res.should_keep_alive = False
        if self.reject_non_standard_body_writes:
            res._reject_body_writes = True
        res._server = self
        if self.unique_headers:
            res._unique_headers = self.unique_headers
        res._keep_alive_header = self._keep_alive_hint()
        req._destroy_hook = res._destroy_hook = lambda: self._destroy(record)
        req._timeout_hook = res._timeout_hook = lambda s: self._set_inactivity_timeout(record, s)
        record.request = req
        record.response = res

        if head.missing_host and self.require_host_header:
            # Node answers through a normal response, so it has a Date and, the head
            # being written before end(), chunked framing; no "request" event.
            res.write_head(400, ["Connection", "close"])
            await res.end()
            return False

        is_connect = method == b"CONNECT"
        # llhttp: an Upgrade header is an upgrade only with "upgrade" in Connection.
        wants_upgrade = head.upgrade is not None and has_token(head.connection, b"upgrade")
        if is_connect or (wants_upgrade and self._should_upgrade(req)):
            return await self._upgrade(record, exchange, "connect" if is_connect else "upgrade")

        req._close_watch_hook = res._want_close_watch
        res._watch_hook = lambda: self._watch_for_close(record, exchange)
        limit = self.max_requests_per_socket
        if limit and record.requests > limit:
            await self.emit("dropRequest", req, connection.stream)
            res.should_keep_alive = False
            res.write_head(503)
            await res.end()
            return False
        if limit and record.requests == limit:
            res._max_requests_reached = True

        event = "request"
        expect = head.expect
        if expect is not None and version == b"1.1":
            if _EXPECT_CONTINUE.search(expect):
                res._expect_continue = True
                if self.listener_count("checkContinue"):
                    event = "checkContinue"  # the listener decides: write_continue()
                else:
                    await res.write_continue()  # Node: at once, then "request"
            elif self.listener_count("checkExpectation"):
                event = "checkExpectation"
            else:
                event = ""
                res.write_head(417)
        try:
            await self._run_handler(record, exchange, event)
            res._watch_hook = None
            if res._watch_done is not None:
                assert res._watch_scope is not None
                res._watch_scope.cancel()
                await res._watch_done.wait()  # it reads the stream: let it finish first
            if not res._is_closed:  # unfinished (or replaced by a 500)
                await res._close(background=True)
            return self._after_response(record, exchange) and await self._drain(record, exchange)
        finally:
            if res._watch_scope is not None:
                res._watch_scope.cancel()
            # Break the request ↔ exchange ↔ record links, so these objects are freed by
            # reference counting (a cycle per request would leave them to the collector).
            req._receive = None
            req._destroy_hook = res._destroy_hook = None
            req._timeout_hook = res._timeout_hook = None
            req._close_watch_hook = res._watch_hook = None

    def _watch_for_close(self, record: _Connection, exchange: _Exchange) -> None:
        """Someone wants the response's ``"close"``: watch the connection for the peer
        leaving, while the handler runs with the whole request read."""
        res = exchange.res
        if (
            res._watch_scope is not None
            or res._is_closed
            or not (exchange.req.complete or exchange.body_done)
        ):
            return
        res._watch_scope = trio.CancelScope()
        res._watch_done = trio.Event()
        record.nursery.start_soon(self._watch_connection, record, res)

    async def _watch_connection(self, record: _Connection, res: ServerResponse) -> None:
        assert res._watch_scope is not None and res._watch_done is not None
        closed = False
        try:
            with res._watch_scope:
                closed = await record.connection.wait_for_peer_close()
        finally:
            res._watch_done.set()
        if closed and not res._is_closed:
            record.connection.mark_broken()
            await res._close(background=True)

    async def _run_handler(self, record: _Connection, exchange: _Exchange, event: str) -> None:
        req, res = exchange.req, exchange.res
        failure: Exception | None = None
        # A complete request has no request_timeout left: skip the scope (hot path).
        with exchange.request_scope if not req.complete else contextlib.nullcontext():
            try:
                if event:
                    await self.emit(event, req, res)
                if not res.writable_ended and not record.connection.broken:
                    await res.end()
            except Exception as exc:
                failure = exc
        if exchange.request_scope.cancelled_caught and not req.complete:
            await self._client_error(record, RequestTimeoutError("Request timeout"))
            record.connection.mark_broken()
            return
        if failure is None:
            return
        if exchange.body_error is not None:
            await self._client_error(record, exchange.body_error)
            record.connection.mark_broken()
            return
        if isinstance(failure, (ConnectionResetError, trio.BrokenResourceError)) or (
            isinstance(failure, StreamDestroyedError) and res.destroyed
        ):
            record.connection.mark_broken()  # the client went away
            return
        logger.error(
            "Error in %s handler for %s %s",
            event or "request",
            req.method,
            req.url,
            exc_info=failure,
        )
        if res.headers_sent or record.connection.broken:
            record.connection.mark_broken()
            return
        # A fresh response: nothing the handler set (headers removed, date off,
        # trailers …) carries over into the 500.
        fresh = ServerResponse(req, record.connection)
        fresh.should_keep_alive = res.should_keep_alive
        fresh._server = self
        fresh._keep_alive_header = res._keep_alive_header
        fresh._max_requests_reached = res._max_requests_reached
        exchange.res = record.response = fresh
        fresh.status_code = 500
        await fresh.end(STATUS_CODES[500])

    def _after_response(self, record: _Connection, exchange: _Exchange) -> bool:
        res = exchange.res
        record.response = None
        record.request = None
        return not (record.connection.broken or res._last or not res.writable_finished)

    async def _drain(self, record: _Connection, exchange: _Exchange) -> bool:
        """Read and drop what the handler left of the request body (Node dumps it)."""
        req = exchange.req
        if req.complete:
            return True
        with trio.CancelScope(deadline=exchange.request_scope.deadline):
            try:
                while await req._next_chunk() is not None:
                    pass
            except HTTPError:
                return False
        return req.complete

    def _should_upgrade(self, req: IncomingMessage) -> bool:
        if self.should_upgrade_callback is not None:
            return bool(self.should_upgrade_callback(req))
        return self.listener_count("upgrade") > 0

    async def _upgrade(self, record: _Connection, exchange: _Exchange, event: str) -> bool:
        req = exchange.req
        req.upgrade = True
        body: list[bytes] = []
        if not req.complete:
            # The post-body bytes belong to the new protocol, so the body is read first;
            # it is kept for the listener, up to _UPGRADE_BODY_LIMIT bytes.
            size = 0
            error: HTTPError | None = None
            with exchange.request_scope:
                try:
                    async for chunk in req:
                        size += len(chunk)
                        if size > _UPGRADE_BODY_LIMIT:
                            error = ParseError(
                                "Upgrade request body too large", code="ERR_UPGRADE_BODY_TOO_LARGE"
                            )
                            break
                        body.append(chunk)
                except ParseError as exc:
                    error = exc
            if error is None and not req.complete:
                error = RequestTimeoutError("Request timeout")
            if error is not None:
                await self._client_error(record, error)
                return False
        if body:
            req._raw_trailer_pairs = []
            buffered = iter(body)
            req.complete = False

            async def replay() -> bytes | EndOfBody:
                return next(buffered, None) or END_OF_BODY

            req._receive = replay
        stream, head = record.connection.detach()
        record.upgraded = True
        record.idle = False
        if record.watcher is not None:
            record.watcher.cancel()
        try:
            if self.listener_count(event):
                await self.emit(event, req, stream, head)
        finally:
            await trio.aclose_forcefully(stream)
        return False

    async def _client_error(self, record: _Connection, error: HTTPError) -> None:
        """Node's ``clientError``: a listener decides; otherwise a canned reply."""
        connection = record.connection
        logger.debug("client error on a connection: %s", error)
        if self.listener_count("clientError"):
            await self.emit("clientError", error, connection.stream)
            return
        response = record.response
        if connection.broken or (response is not None and response.headers_sent):
            return
        status = _CANNED_STATUS.get(error.code, 400)
        data = f"HTTP/1.1 {status} {STATUS_CODES[status]}\r\nConnection: close\r\n\r\n"
        try:
            await connection.send_all(data.encode("latin-1"))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        await _linger(connection)

    def _destroy(self, record: _Connection) -> None:
        record.connection.mark_broken()
        record.cancel_scope.cancel()

    # --- inactivity ("timeout") -------------------------------------------------------

    def _set_inactivity_timeout(self, record: _Connection, seconds: float) -> None:
        record.inactivity_timeout = _check_timeout("timeout", seconds)
        if record.inactivity_timeout and record.watcher is None and not record.upgraded:
            record.watcher = trio.CancelScope()
            record.nursery.start_soon(self._watch_inactivity, record, record.watcher)

    async def _watch_inactivity(self, record: _Connection, scope: trio.CancelScope) -> None:
        def end_connection(exc: Exception) -> bool:
            record.cancel_scope.cancel()
            return False  # no await of the client's belongs to it: logged

        async def fire() -> bool:
            handled = await emit_in_background(
                lambda: self._emit_timeout(record), end_connection, '"timeout"'
            )
            if handled is False:
                record.cancel_scope.cancel()  # Node: no listener, the socket is destroyed
            return bool(handled)

        with scope:
            await watch_inactivity(record.connection, lambda: record.inactivity_timeout, fire)
        if record.watcher is scope:
            record.watcher = None

    async def _emit_timeout(self, record: _Connection) -> bool:
        handled = False
        req, res = record.request, record.response
        if req is not None and not req.complete:
            handled = await req.emit("timeout") or handled
        if res is not None:
            handled = await res.emit("timeout") or handled
        return await self.emit("timeout", record.connection.stream) or handled


async def _linger(connection: HTTPConnection) -> None:
    """Half-close, then wait (briefly, boundedly) for the peer to finish sending, so the
    final close does not reset the connection before the peer has read our answer."""
    stream = connection.stream
    if not isinstance(stream, trio.abc.HalfCloseableStream):
        return
    try:
        await stream.send_eof()
        with trio.move_on_after(_LINGER_SECONDS):
            received = 0
            while received < _LINGER_BYTES:
                data = await stream.receive_some(65536)
                if not data:
                    break
                received += len(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    connection.mark_broken()


async def _open_any_address_listener(port: int, backlog: int | None) -> trio.SocketListener:
    """One socket for every address, as Node binds one without a host: dual-stack on
    ``::`` (so one port serves IPv4 and IPv6), or ``0.0.0.0`` where IPv6 is missing."""
    try:
        return await _open_tcp_listener(stdlib_socket.AF_INET6, "::", port, backlog)
    except OSError as exc:
        if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT):
            raise
    return await _open_tcp_listener(stdlib_socket.AF_INET, "0.0.0.0", port, backlog)


async def _open_tcp_listener(
    family: int, host: str, port: int, backlog: int | None
) -> trio.SocketListener:
    sock = trio.socket.socket(family, stdlib_socket.SOCK_STREAM)
    try:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
        if family == stdlib_socket.AF_INET6:
            sock.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY, 0)
        await sock.bind((host, port))
        sock.listen(backlog if backlog is not None else 511)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def _open_unix_listener(path: str, backlog: int | None) -> trio.SocketListener:
    sock = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen(backlog if backlog is not None else 511)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


def _address_of(listener: trio.abc.Listener[Any]) -> Any:
    if isinstance(listener, trio.SocketListener):
        name = listener.socket.getsockname()
        return tuple(name[:2]) if isinstance(name, tuple) else name
    return None


def create_server(handler: RequestHandler | None = None, **options: Any) -> Server:
    """Create a :class:`Server`; ``handler`` becomes its ``"request"`` listener.

    Node: ``http.createServer([options][, requestListener])``.
    """
    return Server(handler, **options)
