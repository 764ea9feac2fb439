"""One HTTP/1.1 connection: a trio Stream, a read buffer, head parsing and body framing.

Theory of operation
-------------------
Both the server and the client read messages the same way. A connection is, at any
moment, in one of these reading states::

    IDLE ──first byte──▶ READING_HEAD ──head parsed──▶ READING_BODY ──end──▶ IDLE
                              │                            │
                              └───── parse error ──────────┴──▶ FAILED (answer, close)
                                     stream error or cut send ──▶ BROKEN (close)
                                                    upgrade ──▶ DETACHED

Heads and bodies are read from one buffer, :attr:`HTTPConnection._buffer`, and
every byte of it is judged by :mod:`._parse` (sans I/O, llhttp's strictness): a head is
framed by :func:`~._parse.find_head` and parsed by :func:`~._parse.parse_request_head`
or :func:`~._parse.parse_response_head`; a Content-Length body (or none, or a response
read until the connection closes) is cut from the buffer here; a chunked body is read by
a :class:`~._parse.ChunkedReader` over the same buffer. Bytes past the end of a message
(a pipelined request, an upgraded protocol) simply stay in the buffer, so an idle
keep-alive connection holds no parser at all.

Writing is the caller's: messages are serialised by :mod:`._outgoing` and handed to
:meth:`HTTPConnection.send_all`, which gives backpressure (it returns when the kernel has
the bytes). A send interrupted by a cancel may have written part of its bytes, so it marks
the connection broken: it must not carry another message.

Timeouts are not kept here: the caller wraps each await in a cancel scope whose deadline
follows the state (see :mod:`._server`). Every await here is cancel-safe in the sense
that a cancelled read loses no bytes (``receive_some`` is atomic), so the buffer stays
right.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable

import trio

from ._errors import ConnectionResetError, ParseError
from ._parse import (
    END_OF_BODY,
    ChunkedReader,
    EndOfBody,
    HeadKind,
    RequestHead,
    ResponseHead,
    find_head,
    invalid_eof_state,
    parse_request_head,
    parse_response_head,
    skip_empty_lines,
)

_RECEIVE_SIZE = 65536
_CR_LF = b"\r\n"
_UNTIL_CLOSE = -1  # a body that ends when the connection closes


class ReadState(enum.Enum):
    """Where a connection is in reading its current message."""

    IDLE = "idle"
    READING_HEAD = "reading head"
    READING_BODY = "reading body"
    FAILED = "failed"  # the peer sent something unparsable: answer it, then close
    BROKEN = "broken"  # the stream itself failed (or a send was cut): just close
    DETACHED = "detached"


class HTTPConnection:
    """An HTTP/1.1 connection over any :class:`trio.abc.Stream`.

    ``max_header_size`` is the budget of a message head, counted as llhttp counts it
    (:func:`counted_head_size`). ``last_activity`` is the
    :func:`trio.current_time` of the last byte read or written, for inactivity timers.
    """

    __slots__ = (
        "_buffer",
        "_chunked",
        "_fault",
        "_remaining",
        "_request_method",
        "bytes_received",
        "bytes_sent",
        "eof",
        "last_activity",
        "max_header_size",
        "state",
        "stream",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        max_header_size: int = 16384,
    ) -> None:
        self.stream = stream
        self.max_header_size = max_header_size
        self.state = ReadState.IDLE
        self.eof = False
        self.last_activity = trio.current_time()
        #: Bytes read from the stream so far (a retry is safe only before any arrive).
        self.bytes_received = 0
        #: Bytes written to the stream so far.
        self.bytes_sent = 0
        self._buffer = bytearray()
        self._chunked: ChunkedReader | None = None
        self._remaining: int | None = None  # bytes left of a Content-Length body
        self._fault: ParseError | None = None  # for the next receive_body() to raise
        self._request_method = b"GET"  # of the request whose response is read next

    # --- raw I/O -----------------------------------------------------------------------

    async def _receive(self) -> bytes | bytearray:
        data = await self.stream.receive_some(_RECEIVE_SIZE)
        self.last_activity = trio.current_time()
        self.bytes_received += len(data)
        if not data:
            self.eof = True
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` whole; on any failure or cancel the connection is broken (a
        cancel that lands before any byte is sent leaves it as it was)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            await self.stream.send_all(data)
        except BaseException:
            self.state = ReadState.BROKEN
            raise
        self.last_activity = trio.current_time()
        self.bytes_sent += len(data)

    @property
    def broken(self) -> bool:
        return self.state is ReadState.BROKEN

    def mark_broken(self) -> None:
        """This connection must carry no further message."""
        if self.state is not ReadState.DETACHED:
            self.state = ReadState.BROKEN

    @property
    def has_buffered_data(self) -> bool:
        """Whether bytes of a next message are buffered (the CR and LF bytes llhttp
        skips between messages are dropped first: they start nothing)."""
        buffer = self._buffer
        if buffer and buffer[0] in _CR_LF:
            skip_empty_lines(buffer)
        return bool(buffer)

    async def wait_for_data(self) -> bool:
        """Wait until some bytes of a next message are buffered; ``False`` at EOF.

        A cancel here loses nothing.
        """
        while not self.has_buffered_data:
            if self.eof:
                return False
            data = await self._receive()
            if not data:
                return False
            self._buffer += data
        return True

    async def wait_for_peer_close(self) -> bool:
        """Between messages' reads (a server's request body is complete, its response
        not yet sent): return ``True`` as soon as the peer closes or resets the
        connection. Bytes that arrive meanwhile (pipelined requests) are buffered, as
        :meth:`wait_for_data` would; past ``max_header_size`` of them the watch gives
        up and returns ``False``, so a peer cannot make us buffer without bound. A
        cancel here loses nothing."""
        while len(self._buffer) <= self.max_header_size:
            if self.eof:
                return True
            try:
                data = await self._receive()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return True
            if not data:
                return True
            self._buffer += data
        return False

    # --- reading a message ------------------------------------------------------------

    async def receive_request_head(self) -> RequestHead:
        """Read and parse the next request head (server side), and set up the reading
        of its body.

        Raises :class:`ParseError` with llhttp's code for a malformed head,
        ``HPE_INVALID_EOF_STATE`` if the peer closes in the middle of a head (Node
        answers that with a 400 too), and :class:`EOFError` if it closed cleanly between
        messages.
        """
        try:
            request = parse_request_head(await self._frame_head())
        except ParseError:
            self.state = ReadState.FAILED
            raise
        self._fault = request.body_fault
        if request.chunked:
            self._start_chunked(request=True)
        else:
            self._remaining = request.content_length
            self.state = ReadState.READING_BODY
        return request

    def start_response(self, method: bytes) -> None:
        """Prepare to read the response to a request just sent (client side): how a
        response is framed depends on the request it answers (HEAD, CONNECT)."""
        self._request_method = method

    async def receive_response_head(self) -> ResponseHead:
        """Read the next response head (an informational one included) of the response
        prepared by :meth:`start_response`, and set up the reading of its body.

        Raises :class:`ParseError` for a malformed head and :class:`ConnectionResetError`
        (``socket hang up``) if the server closes before a whole head arrived.
        """
        try:
            head = await self._frame_head(request=False)
        except (EOFError, ParseError) as exc:
            if isinstance(exc, ParseError) and exc.code != "HPE_INVALID_EOF_STATE":
                self.state = ReadState.FAILED
                raise
            self.state = ReadState.BROKEN
            raise ConnectionResetError("socket hang up") from None
        try:
            response = parse_response_head(head)
        except ParseError:
            self.state = ReadState.FAILED
            raise
        status = response.status_code
        if 100 <= status < 200 and status != 101:
            self.state = ReadState.IDLE
            return response
        method = self._request_method
        if status == 101 or (method == b"CONNECT" and 200 <= status < 300):
            response.switched = True
            self.state = ReadState.IDLE
            return response
        self.state = ReadState.READING_BODY
        if method == b"HEAD" or status in (204, 304):
            self._remaining = 0
        elif response.chunked:
            self._start_chunked(request=False)
        elif response.transfer_encoding is not None:
            self._remaining = _UNTIL_CLOSE  # Node: read until the connection closes
        elif response.content_length is not None:
            self._remaining = response.content_length
        else:
            self._remaining = _UNTIL_CLOSE
        return response

    async def _frame_head(self, request: bool = True) -> bytes:
        buffer = self._buffer
        checked = 0
        kind = HeadKind.REQUEST if request else HeadKind.RESPONSE
        self.state = ReadState.READING_HEAD
        while True:
            if buffer.startswith((b"\r", b"\n")):
                skip_empty_lines(buffer)
                checked = 0
            end = find_head(buffer, checked, self.max_header_size, kind)
            if end != -1:
                head = bytes(buffer[:end])
                del buffer[:end]
                return head
            checked = len(buffer)
            data = await self._receive()
            if not data:
                if buffer:
                    raise invalid_eof_state(buffer)
                raise EOFError
            buffer += data

    def _start_chunked(self, *, request: bool) -> None:
        self._chunked = ChunkedReader(self.max_header_size, request=request)
        self.state = ReadState.READING_BODY

    async def receive_body(self) -> bytes | EndOfBody:
        """The next piece of the current body, or its :class:`~._parse.EndOfBody`
        (which carries the trailers).

        Raises :class:`ParseError` for bad framing and :class:`ConnectionResetError`
        (``aborted``) when the peer closes mid-body.
        """
        while True:
            item = self._next_body_item()
            if item is not None:
                return item
            self._buffer += await self._receive()

    def receive_body_nowait(self) -> bytes | EndOfBody | None:
        """What :meth:`receive_body` would return without reading the stream, or
        ``None`` if that needs more bytes. Ends a body-less message without a checkpoint.
        A parse error is kept for the next :meth:`receive_body`: the message's head is
        handled first, as Node emits it before the body's error.
        """
        try:
            return self._next_body_item()
        except ParseError as exc:
            self._fault = exc
            return None

    def _next_body_item(self) -> bytes | EndOfBody | None:
        if self._fault is not None:
            self.state = ReadState.FAILED
            raise self._fault
        buffer = self._buffer
        chunked = self._chunked
        if chunked is not None:
            try:
                item = chunked.read(buffer)
            except ParseError:
                self.state = ReadState.FAILED
                raise
            if item is None:
                if self.eof:
                    self.state = ReadState.BROKEN
                    raise ConnectionResetError("aborted")
                return None
            if type(item) is EndOfBody:
                self._chunked = None
                self.state = ReadState.IDLE
            return item
        # A Content-Length body (or none, or one read until the connection closes).
        remaining = self._remaining
        if remaining is None:
            raise RuntimeError("no message body is being read")
        if remaining == _UNTIL_CLOSE:
            if buffer:
                data = bytes(buffer)
                buffer.clear()
                return data
            if not self.eof:
                return None
            remaining = 0
        if remaining == 0:
            self._remaining = None
            self.state = ReadState.IDLE
            return END_OF_BODY
        if not buffer:
            if self.eof:
                self.state = ReadState.BROKEN
                raise ConnectionResetError("aborted")
            return None
        if len(buffer) <= remaining:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:remaining])
            del buffer[:remaining]
        self._remaining = remaining - len(data)
        return data

    # --- hand-over --------------------------------------------------------------------

    def detach(self) -> tuple[trio.abc.Stream, bytes]:
        """Give up the stream (after an upgrade or CONNECT).

        Returns the stream and the bytes already read past the end of the last message.
        """
        leftover = bytes(self._buffer)
        self._buffer.clear()
        self.state = ReadState.DETACHED
        return self.stream, leftover


async def watch_inactivity(
    connection: HTTPConnection,
    timeout_of: Callable[[], float | None],
    fire: Callable[[], Awaitable[bool]],
) -> None:
    """Call ``fire`` whenever ``connection`` has had no byte in or out for
    ``timeout_of()`` seconds: once per quiet period (Node's socket timeout fires again
    only after new activity). Returns when ``fire`` returns ``False`` or the timeout is
    turned off (0 or ``None``). Shared by the server's ``timeout`` and ``set_timeout`` on
    either side."""
    while timeout := timeout_of():
        deadline = connection.last_activity + timeout
        if trio.current_time() < deadline:
            await trio.sleep_until(deadline)
            continue
        stamp = connection.last_activity
        if not await fire():
            return
        # Activity is a timestamp, not an event: look again once per timeout.
        while connection.last_activity == stamp and (timeout := timeout_of()):  # noqa: ASYNC110
            await trio.sleep(timeout)


def close_stream_now(stream: trio.abc.Stream) -> bool:
    """Close ``stream`` synchronously if its make allows (sockets, memory streams, and
    streams stacked on those, such as TLS); ``False`` if it must be closed with an
    ``await``."""
    if isinstance(stream, trio.SocketStream):
        stream.socket.close()
        return True
    if isinstance(stream, trio.StapledStream):
        sent = close_stream_now(stream.send_stream)
        received = close_stream_now(stream.receive_stream)
        return sent and received
    inner = getattr(stream, "transport_stream", None) or getattr(stream, "stream", None)
    if isinstance(inner, trio.abc.Stream):
        return close_stream_now(inner)
    close = getattr(stream, "close", None)  # trio.testing's memory streams
    if callable(close):
        close()
        return True
    return False


class PrefixedStream(trio.abc.HalfCloseableStream):
    """A stream with bytes already read from it put back in front.

    Given to the user after an upgrade or CONNECT, so bytes that arrived with the HTTP
    head are not lost.
    """

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self.stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            size = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if isinstance(self.stream, trio.abc.HalfCloseableStream):
            await self.stream.send_eof()
        else:
            raise trio.ClosedResourceError("this stream cannot be half-closed")

    async def aclose(self) -> None:
        await self.stream.aclose()
