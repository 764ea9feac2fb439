"""ClientRequest, request() and get().

A request is built synchronously (options checked, headers set, nothing sent). Its
connection is taken from the agent at the first send (``write``, ``flush_headers`` or
``end``), and ``await req.end()`` returns the response once its head has arrived. The
connection goes back to the agent when the response body has been read to its end (and
the request was fully sent), or is closed if the exchange was cut short.
"""

from __future__ import annotations

import base64
import errno
import functools
import math
import re
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from ._agent import Agent, ConnectOptions, PooledConnection, open_stream
from ._connection import (
    HTTPConnection,
    PrefixedStream,
    close_stream_now,
    watch_inactivity,
)
from ._errors import (
    ConnectionResetError,
    HTTPError,
    InvalidArgTypeError,
    InvalidHTTPTokenError,
    InvalidProtocolError,
    InvalidURLError,
    OutOfRangeError,
    UnescapedCharactersError,
)
from ._events import Listener, emit_in_background
from ._headers import check_header_pairs, is_token, keeps_alive, max_header_size
from ._incoming import IncomingMessage
from ._outgoing import OutgoingMessage, to_bytes
from ._parse import EndOfBody, ResponseHead

# Methods whose requests carry no body unless one is written (Node's
# useChunkedEncodingByDefault is false for them).
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_UNESCAPED = re.compile(r"[^\u0021-\u00ff]")
_EXPECT_CONTINUE = re.compile(r"(?:^|\W)100-continue(?:$|\W)", re.IGNORECASE)

#: How long ``end()`` waits for ``100 Continue`` before sending the body anyway.
CONTINUE_TIMEOUT = 1.0


def _global_agent() -> Agent:
    # Read from the package at call time, so that assigning
    # ``trio_nodehttp.global_agent = Agent(...)`` takes effect (as in Node).
    return sys.modules["trio_nodehttp"].global_agent  # type: ignore[no-any-return]


def _url_options(url: object) -> dict[str, Any]:
    if isinstance(url, str):
        return dict(_parsed_url(url))
    return _split_url_options(url)


@functools.lru_cache(maxsize=512)
def _parsed_url(url: str) -> tuple[tuple[str, Any], ...]:
    # Clients ask for the same few URLs again and again: parse each once.
    return tuple(_split_url_options(url).items())


def _split_url_options(url: object) -> dict[str, Any]:
    if isinstance(url, str):
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidURLError(f"Invalid URL: {url}") from None
        if not parts.scheme or not parts.hostname:
            raise InvalidURLError(f"Invalid URL: {url}")
    elif isinstance(url, urllib.parse.SplitResult | urllib.parse.ParseResult):
        parts = urllib.parse.urlsplit(url.geturl())
        port = parts.port
    else:
        raise InvalidArgTypeError(
            f'The "url" argument must be a str or a parsed URL. Received {type(url).__name__}'
        )
    options: dict[str, Any] = {
        "protocol": f"{parts.scheme}:",
        "hostname": parts.hostname,
        "path": (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
    }
    if port is not None:
        options["port"] = port
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        options["auth"] = f"{user}:{password}"
    return options


class ClientRequest(OutgoingMessage):
    """An outgoing request. Node: ``http.ClientRequest``.

    Made by :func:`request` (or directly, with the same arguments). Nothing is sent
    until the first ``write()``, ``flush_headers()`` or ``end()``; ``await end()``
    returns the :class:`IncomingMessage` response once its head is read. Events:
    ``"socket"`` (stream), ``"finish"``, ``"information"`` (message, for each 1xx but
    101), ``"continue"``, ``"response"`` (res), ``"upgrade"`` and ``"connect"`` (res,
    stream, head), ``"timeout"``.
    """

    def __init__(
        self,
        url: str | urllib.parse.SplitResult | urllib.parse.ParseResult | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        merged: dict[str, Any] = _url_options(url) if url is not None else {}
        merged.update(options or {})
        merged.update(kwargs)
        self._configure(merged)

    def _configure(self, o: dict[str, Any]) -> None:
        unknown = set(o) - _OPTION_NAMES
        if unknown:
            raise InvalidArgTypeError(f"Unknown request option(s): {', '.join(sorted(unknown))}")
        if o.get("insecure_http_parser"):
            raise InvalidArgTypeError(
                "insecure_http_parser is not supported: responses are always parsed strictly"
            )
        agent = o.get("agent")
        if agent is None and o.get("create_connection") is None:
            agent = _global_agent()
        elif agent is not None and agent is not False and not isinstance(agent, Agent):
            raise InvalidArgTypeError(
                'The "agent" option must be an Agent, None or False. '
                f"Received {type(agent).__name__}"
            )
        #: The agent, or ``None`` (one-shot connection). Node: ``req.agent``.
        self.agent: Agent | None = agent if isinstance(agent, Agent) else None
        default_port = o.get("default_port") or (self.agent.default_port if self.agent else 80)
        protocol = o.get("protocol") or (self.agent.protocol if self.agent else "http:")
        expected = self.agent.protocol if self.agent else "http:"
        if protocol != expected:
            raise InvalidProtocolError(
                f'Protocol "{protocol}" not supported. Expected "{expected}"'
            )
        #: Node: ``req.protocol``.
        self.protocol: str = protocol
        for key in ("host", "hostname"):
            if o.get(key) is not None and not isinstance(o[key], str):
                raise InvalidArgTypeError(f'The "options.{key}" property must be of type string')
        #: Node: ``req.host``.
        self.host: str = o.get("hostname") or o.get("host") or "localhost"
        port = o.get("port") or default_port
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise OutOfRangeError(f"Port should be >= 0 and < 65536. Received {port!r}.")
        self.port: int = port
        path = o.get("path") or "/"
        if not isinstance(path, str):
            raise InvalidArgTypeError('The "options.path" property must be of type string')
        if _UNESCAPED.search(path):
            raise UnescapedCharactersError("Request path contains unescaped characters")
        #: Node: ``req.path``.
        self.path: str = path
        method = o.get("method") or "GET"
        if not isinstance(method, str):
            raise InvalidArgTypeError('The "method" argument must be of type string')
        if not is_token(method):
            raise InvalidHTTPTokenError(f'Method must be a valid HTTP token ["{method}"]')
        #: Node: ``req.method``.
        self.method: str = method.upper()
        self.socket_path: str | None = o.get("socket_path")
        self.local_address: str | None = o.get("local_address")
        self.family: int | None = o.get("family")
        self._create_connection = o.get("create_connection")
        header_limit = o.get("max_header_size")
        if header_limit is None:
            header_limit = self.agent.max_header_size if self.agent else max_header_size
        if isinstance(header_limit, bool) or not isinstance(header_limit, int) or header_limit < 0:
            raise OutOfRangeError('The value of "max_header_size" is out of range. It must be >= 0')
        self._max_header_size = header_limit or max_header_size
        self._join_duplicates = bool(o.get("join_duplicate_headers", False))
        #: Header lines kept per response (0: all). Node: ``req.maxHeadersCount``.
        count = o.get("max_headers_count", 2000)
        self.max_headers_count: int = 2000 if count is None else count
        self._unique_headers = frozenset(n.lower() for n in o.get("unique_headers") or ())
        #: Whether the connection came from the free pool. Node: ``req.reusedSocket``.
        self.reused_socket = False
        #: The response, once its head has arrived. Node: ``req.res``.
        self.res: IncomingMessage | None = None
        self.timeout: float | None = None
        self._pooled: PooledConnection | None = None
        self._record: list[bytes] | None = []  # bytes sent, for a retry; None: not replayable
        self._watch: trio.CancelScope | None = None
        self._closed = False
        self._error: BaseException | None = None  # destroy(error): what awaits raise
        self._close_emitted = False
        self._received_before = 0
        self._sent_before = 0

        self.should_keep_alive = self.agent is not None and (
            self.agent.keep_alive or self.agent.max_sockets != math.inf
        )
        self._uses_agent = self.agent is not None
        if self.method in _BODYLESS_METHODS:
            self.use_chunked_encoding_by_default = False

        headers = o.get("headers")
        set_host = o.get("set_host", True)
        if isinstance(headers, (list, tuple)):
            # Array form: sent as given, in order, duplicates kept; no automatic Host or
            # Authorization, and the head is fixed now (Node renders it here too).
            pairs = check_header_pairs(headers)
            for name, value in pairs:
                self._store.append(name, value)
            self._ordered_headers = pairs
            self._render_head()
        else:
            if headers is not None:
                if not isinstance(headers, Mapping):
                    raise InvalidArgTypeError('The "options.headers" property must be a mapping')
                for name, value in headers.items():
                    self.set_header(name, value)
            host_value = self._store.get("host")
            if isinstance(host_value, list):
                raise InvalidArgTypeError('The "options.headers.host" property must be a string')
            if set_host and host_value is None:
                self.set_header("Host", self._host_header(default_port))
            auth = o.get("auth")
            if auth and not self.has_header("authorization"):
                token = base64.b64encode(str(auth).encode("latin-1")).decode("ascii")
                self.set_header("Authorization", f"Basic {token}")
        timeout = o.get("timeout")
        if timeout is not None:
            self.set_timeout(timeout)

    def _host_header(self, default_port: int) -> str:
        host = self.host
        if host.count(":") >= 2 and not host.startswith("["):
            host = f"[{host}]"
        return host if self.port == default_port else f"{host}:{self.port}"

    @property
    def socket(self) -> trio.abc.Stream | None:
        """The connection's stream once assigned. Node: ``req.socket``."""
        return None if self._connection is None else self._connection.stream

    def _first_line(self) -> str:
        return f"{self.method} {self.path} HTTP/1.1"

    def _render_implicit_head(self) -> None:
        if self.method in _BODYLESS_METHODS:
            if self._content_length == 0 or (self._content_length is None and not self._writing):
                self._has_body = False
            else:
                # Node leaves such a body unframed (nodejs/node#27880); we frame it.
                self.use_chunked_encoding_by_default = True
        self._render_head()

    _writing = False

    async def write(
        self, chunk: bytes | bytearray | memoryview | str, encoding: str = "utf-8"
    ) -> None:
        """Send a piece of the body (the head first). A request whose body is written
        in pieces is not retried. Node: ``req.write(chunk[, encoding])``."""
        if self.destroyed:
            raise self._destroyed_error()
        self._writing = True
        self._record = None
        try:
            await super().write(chunk, encoding)
        except BaseException:
            self._abandon()  # a cut write leaves the stream mid-message
            raise

    async def flush_headers(self) -> None:
        """Send the head now. Node: ``req.flushHeaders()``."""
        try:
            await super().flush_headers()
        except BaseException:
            self._abandon()
            raise

    # --- the connection -----------------------------------------------------------------

    async def _send(self, parts: list[bytes]) -> None:
        if self._connection is None:
            await self._assign_connection()
        elif self._closed:
            raise self._destroyed_error()
        if self._record is not None:
            self._record.extend(parts)
        await super()._send(parts)

    async def _assign_connection(self, fresh: bool = False) -> None:
        if self.destroyed:
            raise self._destroyed_error()
        if self.agent is not None:
            name = self.agent.get_name(
                self.host, self.port, self.local_address, self.family, self.socket_path
            )
            try:
                pooled, reused = await self.agent._acquire(
                    name, self._connect_options(), fresh=fresh
                )
            except OSError as exc:
                raise connect_error(
                    exc, self.socket_path or self.host, None if self.socket_path else self.port
                ) from exc
            self._pooled = pooled
            self._connection = pooled.connection
            if reused:
                self.agent.reuse_socket(pooled.stream, self)
            else:
                self.reused_socket = False
        else:
            stream = await self._open_direct()
            self._connection = HTTPConnection(stream, max_header_size=self._max_header_size)
        self._connection.max_header_size = self._max_header_size
        self._received_before = self._connection.bytes_received
        self._sent_before = self._connection.bytes_sent
        if self.timeout:
            await self._start_watch()
        await self.emit("socket", self._connection.stream)

    def _connect_options(self) -> ConnectOptions:
        return ConnectOptions(
            host=self.host,
            port=self.port,
            local_address=self.local_address,
            family=self.family,
            socket_path=self.socket_path,
        )

    async def _open_direct(self) -> trio.abc.Stream:
        try:
            if self._create_connection is not None:
                stream = self._create_connection(self._connect_options())
                if not isinstance(stream, trio.abc.Stream):
                    stream = await stream
                return stream  # type: ignore[no-any-return]
            return await open_stream(self._connect_options())
        except OSError as exc:
            raise connect_error(
                exc, self.socket_path or self.host, None if self.socket_path else self.port
            ) from exc

    # --- ending and the response ------------------------------------------------------

    async def end(  # type: ignore[override]
        self, chunk: bytes | bytearray | memoryview | str | None = None, encoding: str = "utf-8"
    ) -> IncomingMessage:
        """Send the rest of the request and return the response once its head is read.

        With ``Expect: 100-continue`` the body waits for ``100 Continue`` (at most one
        second), and is not sent at all if a final response comes first.
        Node: ``req.end()`` followed by the ``'response'`` event.
        """
        if self.res is not None:
            return self.res
        if self.destroyed:
            raise self._destroyed_error()
        try:
            try:
                return await self._exchange(chunk, encoding)
            except _HUNG_UP as exc:
                if not self._may_retry():
                    raise self._hang_up(exc) from None
                return await self._retry(exc)
            except BaseException:
                self._abandon()
                raise
        except Exception:
            await self._emit_close()  # Node: 'error', then 'close'
            raise

    async def _exchange(
        self, chunk: bytes | bytearray | memoryview | str | None, encoding: str
    ) -> IncomingMessage:
        expect = self.get_header("expect")
        if isinstance(expect, str) and _EXPECT_CONTINUE.search(expect) and not self._head_rendered:
            if chunk is not None:
                chunk = to_bytes(chunk, encoding)  # encoded once, measured here
            self._content_length = 0 if chunk is None else len(chunk)
            await self.flush_headers()
            connection = self._connection
            assert connection is not None
            connection.start_response(self.method.encode("ascii"))
            with trio.move_on_after(CONTINUE_TIMEOUT):
                head = await connection.receive_response_head()
                if head.status_code != 100:
                    # A final answer instead: the body is never sent.
                    self.writable_ended = True
                    self._record = None
                    self._content_length = None
                    return await self._take_response(head)
                await self._information(head)
            await OutgoingMessage.end(self, chunk, encoding)
        else:
            await OutgoingMessage.end(self, chunk, encoding)
            assert self._connection is not None
            self._connection.start_response(self.method.encode("ascii"))
        return await self._read_response()

    async def _read_response(self) -> IncomingMessage:
        connection = self._connection
        assert connection is not None
        while True:
            head = await connection.receive_response_head()
            if 100 <= head.status_code < 200 and not head.switched:
                await self._information(head)
                continue
            return await self._take_response(head)

    async def _information(self, head: ResponseHead) -> None:
        message = IncomingMessage(
            self.socket,
            head.raw_headers,
            head.http_version,
            status_code=head.status_code,
            status_message=head.reason.decode("latin-1"),
        )
        if head.status_code == 100:
            await self.emit("continue")
        await self.emit("information", message)

    async def _take_response(self, head: ResponseHead) -> IncomingMessage:
        connection = self._connection
        assert connection is not None
        res = IncomingMessage(
            connection.stream,
            head.raw_headers,
            head.http_version,
            status_code=head.status_code,
            status_message=head.reason.decode("latin-1"),
            join_duplicate_headers=self._join_duplicates,
            max_headers_count=self.max_headers_count,
            receive=self._receive_body,
        )
        res._destroy_hook = self._abandon
        res._timeout_hook = self._set_timeout_value
        if "close" in self._listeners:
            res._close_hook = self._emit_close  # a link back: only when someone listens
        self.res = res
        if head.switched:
            stream, leftover = connection.detach()
            if self._pooled is not None and self.agent is not None:
                self.agent._detach(self._pooled)
            self._pooled = None
            res.socket = PrefixedStream(stream, leftover) if leftover else stream
            res.complete = True
            res.upgrade = True
            self._stop_watch()
            event = "connect" if self.method == "CONNECT" else "upgrade"
            await self.emit(event, res, res.socket, leftover)
            await self._emit_close()
        else:
            item = connection.receive_body_nowait()
            if isinstance(item, EndOfBody):
                res.complete = True
                self._release(res)
            elif item is not None:
                res._receive = _Prepend(item, self._receive_body)
        await self.emit("response", res)
        return res

    async def _receive_body(self) -> bytes | EndOfBody:
        connection = self._connection
        if connection is None:
            raise ConnectionResetError("aborted")
        try:
            item = await connection.receive_body()
        except BaseException:
            self._abandon()
            raise
        if not isinstance(item, bytes) and self.res is not None:
            self.res.complete = True
            self._release(self.res)
        return item

    def _release(self, res: IncomingMessage) -> None:
        """The exchange is over: the connection goes back to the agent or is closed."""
        self._stop_watch()
        connection = self._connection
        if connection is None:
            return
        reusable = (
            self.should_keep_alive
            and self.writable_finished
            and keeps_alive(
                [value for name, value in res._raw_pairs if name.lower() == b"connection"],
                res.http_version,
            )
            and not connection.has_buffered_data
            and not connection.broken
        )
        if self._pooled is not None and self.agent is not None:
            idle = self.agent.keep_socket_alive(connection.stream, res) if reusable else None
            self.agent._release(self._pooled, reusable=reusable, idle_timeout=idle)
            self._pooled = None
        else:
            _close_soon(connection)
        self._closed = True
        _unhook(res)

    def _abandon(self) -> None:
        """Cut short (cancel, error, destroy): the connection cannot be reused. Once the
        exchange is over the connection is the agent's again: nothing to do."""
        if self._closed:
            return
        self._stop_watch()
        connection = self._connection
        if connection is not None:
            untouched = (
                not connection.broken
                and connection.bytes_sent == self._sent_before
                and connection.bytes_received == self._received_before
            )
            if self._pooled is not None and self.agent is not None:
                # A connection this request never wrote to or read from is still clean.
                pooled, self._pooled = self._pooled, None
                if not untouched:
                    connection.mark_broken()
                self.agent._release(pooled, reusable=untouched, idle_timeout=pooled.idle_timeout)
            else:
                _close_soon(connection)
        if self.res is not None:
            if not self.res.complete:
                self.res.aborted = True
            _unhook(self.res)
        self._closed = True

    def _may_retry(self) -> bool:
        connection = self._connection
        return bool(
            self.reused_socket
            and not self.destroyed
            and self.agent is not None
            and self.agent.retry_stale
            and self.method in _IDEMPOTENT_METHODS
            and self._record is not None
            and self.res is None
            and connection is not None
            and connection.bytes_received == self._received_before
        )

    async def _retry(self, first_error: BaseException) -> IncomingMessage:
        record = self._record or []
        self._abandon()
        self._closed = False
        self._connection = None
        self.reused_socket = False
        try:
            await self._assign_connection(fresh=True)
            assert self._connection is not None
            for part in record:
                await self._connection.send_all(part)
            self._connection.start_response(self.method.encode("ascii"))
            return await self._read_response()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionResetError) as exc:
            self._abandon()
            raise self._hang_up(exc) from first_error
        except BaseException:
            self._abandon()
            raise

    def _hang_up(self, exc: BaseException) -> BaseException:
        self._abandon()
        if self._error is not None:
            return self._error
        if isinstance(exc, HTTPError):
            return exc
        return ConnectionResetError("socket hang up")

    def destroy(self, error: BaseException | None = None) -> ClientRequest:
        """Abort the request: its connection is closed and not reused. With ``error``,
        the await that is waiting on the request (``end()``, a ``write()``, or reading
        the response) raises it, and so does every later one; without, they raise
        ``ConnectionResetError`` (``ECONNRESET``).

        Node: ``req.destroy([error])`` (whose error is emitted as ``'error'``).
        """
        if not self.destroyed:
            self.destroyed = True
            self._error = error
            if self.res is not None and not self.res.complete:
                self.res.aborted = True
                self.res._error = error
            self._abandon()
        return self

    async def _emit_close(self) -> None:
        """``"close"``, once: after the response's ``"end"`` (before its own
        ``"close"``), or after the error that ended the request."""
        if not self._close_emitted:
            self._close_emitted = True
            if self._listeners:
                await self.emit("close")

    def _listener_failed(self, exc: Exception) -> bool:
        """A listener run from a background task raised: it ends this request. The
        exception surfaces from the request's await unless the exchange is over."""
        over = self._closed and (self.res is None or self.res.complete)
        self.destroy(exc)
        return not over

    def _destroyed_error(self) -> BaseException:
        return self._error or ConnectionResetError("socket hang up")

    # --- timeouts ("timeout" event, notify only) ---------------------------------------

    def set_timeout(self, seconds: float, callback: Listener | None = None) -> ClientRequest:
        """Emit ``"timeout"`` after ``seconds`` without activity on the connection;
        nothing is aborted (as in Node). ``0`` turns it off.

        Node: ``req.setTimeout(msecs[, callback])``.
        """
        if callback is not None:
            self.once("timeout", callback)
        self._set_timeout_value(seconds)
        return self

    def _set_timeout_value(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise OutOfRangeError(f'The value of "timeout" is out of range. Received {seconds!r}')
        self.timeout = float(seconds) or None
        if not self.timeout:
            self._stop_watch()
        elif self._watch is None and self._connection is not None and not self._closed:
            nursery = (self.agent or _global_agent())._nursery
            if nursery is not None:
                self._watch = trio.CancelScope()
                nursery.start_soon(self._watch_inactivity, self._watch)

    async def _start_watch(self) -> None:
        agent = self.agent or _global_agent()
        nursery = await agent._ensure_open()
        self._stop_watch()
        self._watch = trio.CancelScope()
        nursery.start_soon(self._watch_inactivity, self._watch)

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    async def _watch_inactivity(self, scope: trio.CancelScope) -> None:
        connection = self._connection
        if connection is None:
            return

        async def emit_timeout() -> bool:
            await self.emit("timeout")
            if self.res is not None and not self.res.complete:
                await self.res.emit("timeout")
            return True

        async def fire() -> bool:
            # Notify only, as in Node; a listener that raises destroys the request.
            outcome = await emit_in_background(emit_timeout, self._listener_failed, '"timeout"')
            return outcome is not None

        with scope:
            await watch_inactivity(connection, lambda: self.timeout, fire)


# How a connection that the peer closed (or we did) shows under an await.
_HUNG_UP = (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionResetError)


class _Prepend:
    """A body receiver that first returns a piece already read (with the head).

    That first return does not checkpoint: the bytes are at hand, and a scheduling round
    per response costs more than anything else on the client's hot path.
    """

    def __init__(self, first: bytes, then: Callable[[], Awaitable[bytes | EndOfBody]]) -> None:
        self._first: bytes | None = first
        self._then = then

    async def __call__(self) -> bytes | EndOfBody:
        if self._first is None:
            return await self._then()
        first, self._first = self._first, None
        return first


def _unhook(res: IncomingMessage) -> None:
    """The exchange is over: drop the response's links back to its request, so the pair
    is freed by reference counting rather than left to the cycle collector."""
    res._destroy_hook = res._timeout_hook = None
    if res.complete:
        res._receive = None


def _close_soon(connection: HTTPConnection) -> None:
    """Close a one-shot (agentless) connection without awaiting."""
    connection.mark_broken()
    if not close_stream_now(connection.stream):
        nursery = _global_agent()._nursery  # supervised by the run: closes it soon
        if nursery is not None:
            nursery.start_soon(trio.aclose_forcefully, connection.stream)


_ERRNO_CODES = {
    errno.ECONNREFUSED: "ECONNREFUSED",
    errno.ETIMEDOUT: "ETIMEDOUT",
    errno.EHOSTUNREACH: "EHOSTUNREACH",
    errno.ENETUNREACH: "ENETUNREACH",
    errno.ECONNRESET: "ECONNRESET",
    errno.EADDRNOTAVAIL: "EADDRNOTAVAIL",
    errno.ENOENT: "ENOENT",
    errno.EACCES: "EACCES",
}


def root_os_error(exc: BaseException) -> OSError | None:
    """The first OSError with an errno inside ``exc`` (trio's "all attempts to
    connect failed" error carries the attempts' errors as its cause)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, trio.socket.gaierror):
            return current
        if isinstance(current, OSError) and current.errno is not None:
            return current
        stack.extend(getattr(current, "exceptions", ()))  # an exception group
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return None


def connect_error(exc: OSError, host: str, port: int | None) -> HTTPError:
    """Node's error for a failed connect: ``connect ECONNREFUSED 127.0.0.1:1`` with
    ``code`` ``ECONNREFUSED`` (``ENOTFOUND`` for a name that does not resolve)."""
    root = root_os_error(exc) or exc
    if isinstance(root, trio.socket.gaierror):
        return HTTPError(f"getaddrinfo ENOTFOUND {host}", code="ENOTFOUND")
    code = _ERRNO_CODES.get(root.errno or 0) or (
        errno.errorcode.get(root.errno, "ECONNREFUSED") if root.errno else "ECONNREFUSED"
    )
    where = host if port is None else f"{host}:{port}"
    error = HTTPError(f"connect {code} {where}", code=code)
    error.errno = root.errno  # type: ignore[attr-defined]
    return error


_OPTION_NAMES = frozenset(
    {
        "protocol",
        "host",
        "hostname",
        "port",
        "path",
        "method",
        "headers",
        "auth",
        "agent",
        "timeout",
        "set_host",
        "socket_path",
        "local_address",
        "family",
        "default_port",
        "max_header_size",
        "max_headers_count",
        "join_duplicate_headers",
        "insecure_http_parser",
        "create_connection",
        "unique_headers",
    }
)


def request(
    url: str | urllib.parse.SplitResult | urllib.parse.ParseResult | None = None,
    options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> ClientRequest:
    """Make a request (nothing is sent yet). Node: ``http.request(url[, options])``."""
    return ClientRequest(url, options, **kwargs)


async def get(
    url: str | urllib.parse.SplitResult | urllib.parse.ParseResult | None = None,
    options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> IncomingMessage:
    """Send a request with no body (GET unless ``method`` says otherwise) and return the
    response once its head is read. Node: ``http.get(url[, options])``."""
    return await ClientRequest(url, options, **kwargs).end()
