"""IncomingMessage: a request on the server, a response on the client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from ._errors import ConnectionResetError, HTTPError
from ._events import EventEmitter, Listener
from ._headers import IncomingHeaders, RawHeaders, distinct_headers, fold_headers
from ._parse import EndOfBody

#: Returns the next piece of the body, or the end of the message (with its trailers).
BodyReceiver = Callable[[], Awaitable["bytes | EndOfBody"]]


def _decode(pairs: list[tuple[bytes, bytes]]) -> RawHeaders:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs]


class IncomingMessage(EventEmitter):
    """A message being received: its head, and a body read by pulling.

    Read the body with ``await message.read()`` or ``async for chunk in message``; each
    read waits for the peer (backpressure: nothing is read ahead). Header views follow
    Node's rules: :attr:`headers` folds duplicates, :attr:`headers_distinct` keeps them
    all, :attr:`raw_headers` is the list of ``(name, value)`` pairs as received.

    Node: ``http.IncomingMessage``.
    """

    # Defaults live on the class (a message is made per request: the hot path).
    #: The connection's stream. Node: ``message.socket``.
    socket: trio.abc.Stream | None
    #: ``"1.1"`` or ``"1.0"``. Node: ``message.httpVersion``.
    http_version: str
    #: Node: ``message.httpVersionMajor``.
    http_version_major: int = 1
    #: Node: ``message.httpVersionMinor``.
    http_version_minor: int = 1
    #: Request method, uppercase (server side only). Node: ``message.method``.
    method: str | None
    #: The raw request-target (server side only). Node: ``message.url``.
    url: str | None
    #: Response status (client side only). Node: ``message.statusCode``.
    status_code: int | None
    #: Response reason phrase (client side only). Node: ``message.statusMessage``.
    status_message: str | None
    #: True once the whole message, trailers included, has been received.
    #: Node: ``message.complete``.
    complete: bool
    #: True if the message was cut short (peer gone or destroyed).
    #: Node: ``message.aborted``.
    aborted: bool = False
    #: Node: ``message.upgrade`` (an accepted upgrade or CONNECT).
    upgrade: bool = False
    _abort_emitted: bool = False
    _error: BaseException | None = None  # the error it was destroyed with, if any
    _ended = False  # "end" emitted
    _close_emitted = False
    # Runs just before "close" (the client's request emits its own "close" there).
    _close_hook: Callable[[], Awaitable[None]] | None = None
    # Called when a "close" listener is added (the server then watches the connection).
    _close_watch_hook: Callable[[], None] | None = None
    _join_duplicates: bool = False
    _raw_headers: RawHeaders | None = None
    _headers: IncomingHeaders | None = None
    _raw_trailer_pairs: list[tuple[bytes, bytes]] = []  # shared default: replaced, never mutated
    _destroy_hook: Callable[[], None] | None = None
    _timeout_hook: Callable[[float], None] | None = None

    def __init__(
        self,
        socket: trio.abc.Stream | None,
        raw_headers: list[tuple[bytes, bytes]],
        http_version: bytes = b"1.1",
        *,
        method: str | None = None,
        url: str | None = None,
        status_code: int | None = None,
        status_message: str | None = None,
        join_duplicate_headers: bool = False,
        max_headers_count: int = 2000,
        receive: BodyReceiver | None = None,
    ) -> None:
        super().__init__()
        if max_headers_count and len(raw_headers) > max_headers_count:
            raw_headers = raw_headers[:max_headers_count]
        self.socket = socket
        if http_version == b"1.1":
            self.http_version = "1.1"
        else:
            self.http_version = http_version.decode("ascii")
            major, _, minor = self.http_version.partition(".")
            self.http_version_major = int(major)
            self.http_version_minor = int(minor or 0)
        self.method = method
        self.url = url
        self.status_code = status_code
        self.status_message = status_message
        self.complete = receive is None
        if join_duplicate_headers:
            self._join_duplicates = True
        self._raw_pairs = raw_headers
        self._receive = receive

    # --- head -------------------------------------------------------------------------

    @property
    def raw_headers(self) -> RawHeaders:
        """``(name, value)`` pairs as received: casing and duplicates kept, latin-1.

        Node: ``message.rawHeaders`` (as pairs instead of a flat list).
        """
        if self._raw_headers is None:
            self._raw_headers = _decode(self._raw_pairs)
        return self._raw_headers

    @property
    def headers(self) -> IncomingHeaders:
        """Lowercase names to values, duplicates folded as Node does; assignable.

        Node: ``message.headers``.
        """
        if self._headers is None:
            self._headers = fold_headers(self.raw_headers, self._join_duplicates)
        return self._headers

    @headers.setter
    def headers(self, value: IncomingHeaders) -> None:
        self._headers = value

    @property
    def headers_distinct(self) -> dict[str, list[str]]:
        """Lowercase names to every value received. Node: ``message.headersDistinct``."""
        return distinct_headers(self.raw_headers)

    @property
    def raw_trailers(self) -> RawHeaders:
        """Trailer pairs as received; empty until :attr:`complete`.

        Node: ``message.rawTrailers``.
        """
        return _decode(self._raw_trailer_pairs)

    @property
    def trailers(self) -> IncomingHeaders:
        """Trailers folded like :attr:`headers`. Node: ``message.trailers``."""
        return fold_headers(self.raw_trailers, self._join_duplicates)

    @property
    def trailers_distinct(self) -> dict[str, list[str]]:
        """Every trailer value by lowercase name. Node: ``message.trailersDistinct``."""
        return distinct_headers(self.raw_trailers)

    def _header_value(self, name: bytes) -> bytes | None:
        """The first raw value of a lowercase header ``name`` (internal, no folding)."""
        for raw_name, value in self._raw_pairs:
            if raw_name.lower() == name:
                return value
        return None

    # --- body -------------------------------------------------------------------------

    async def _next_chunk(self) -> bytes | None:
        if self.complete:
            if not self._ended:
                await self._end()  # a message without a body ends on its first read
            return None
        if self.aborted or self._receive is None:
            raise self._error or ConnectionResetError("aborted")
        try:
            item = await self._receive()
        except (ConnectionResetError, trio.BrokenResourceError, trio.ClosedResourceError):
            await self._abort()
            await self._close()
            raise self._error or ConnectionResetError("aborted") from None
        if isinstance(item, bytes):
            return item
        self._raw_trailer_pairs = item.trailers
        self.complete = True
        await self._end()
        return None

    async def _end(self) -> None:
        """The body has been read to its end: ``"end"``, then ``"close"`` (Node)."""
        self._ended = True
        if self._listeners:
            await self.emit("end")
        await self._close()

    async def _close(self) -> None:
        """Emit ``"close"`` once: after ``"end"``, or when the message was cut short."""
        if self._close_emitted:
            return
        self._close_emitted = True
        hook, self._close_hook = self._close_hook, None
        if hook is not None:
            await hook()
        if self._listeners:
            await self.emit("close")

    def _listener_added(self, event: str) -> None:
        if event == "close" and self._close_watch_hook is not None:
            self._close_watch_hook()

    async def _abort(self) -> None:
        if not self._abort_emitted and not self.complete:
            self.aborted = True
            self._abort_emitted = True
            await self.emit("aborted")

    def __aiter__(self) -> IncomingMessage:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def read(self) -> bytes:
        """Read the rest of the body and return it. Node: collecting ``'data'`` events."""
        parts = []
        while (chunk := await self._next_chunk()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def text(self, encoding: str = "utf-8") -> str:
        """Read the rest of the body and decode it."""
        return (await self.read()).decode(encoding)

    # --- control ----------------------------------------------------------------------

    def set_timeout(self, seconds: float, callback: Listener | None = None) -> IncomingMessage:
        """Set the connection's inactivity timeout; ``callback`` runs on ``"timeout"``.

        Notify only: nothing is closed when it fires if a listener exists.
        Node: ``message.setTimeout(msecs[, callback])``.
        """
        if callback is not None:
            self.once("timeout", callback)
        if self._timeout_hook is not None:
            self._timeout_hook(seconds)
        return self

    def destroy(self, error: HTTPError | None = None) -> IncomingMessage:
        """Abort the message: mark it :attr:`aborted` (if incomplete) and close its
        connection. Node: ``message.destroy([error])``."""
        if not self.complete:
            self.aborted = True
        if self._destroy_hook is not None:
            self._destroy_hook()
        return self

    def __repr__(self) -> str:
        if self.method is not None:
            return f"<IncomingMessage {self.method} {self.url} HTTP/{self.http_version}>"
        return f"<IncomingMessage HTTP/{self.http_version} {self.status_code}>"
