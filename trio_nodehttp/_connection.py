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

Heads are framed here: bytes accumulate in :attr:`HTTPConnection._buffer` until the
blank line, with llhttp's exact byte budget (``max_header_size``, see
:func:`counted_head_size`) and the checks llhttp makes (bare CR or LF, control
characters, obs-fold in requests, duplicate or malformed Content-Length,
Content-Length with Transfer-Encoding). The head is then parsed by
:func:`parse_request_head` or :func:`parse_response_head`: anchored regular expressions,
several times faster than a fresh h11 parser per message on the per-request hot path,
and tested byte for byte against Node's own server.

Bodies are framed by their head. A Content-Length body (or none, or a response read until
the connection closes) is cut from our own buffer. A chunked body is framed by h11: a
fresh :class:`h11.Connection` is shown a head that says just "chunked", then fed the
bytes; :class:`_ChunkGuard` holds chunk extensions to llhttp's limit beside it. When the
body ends, h11's ``trailing_data`` (bytes of the next message, or an upgraded protocol)
goes back into our buffer, so pipelined bytes are never left inside a parser and an idle
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
import re
from collections.abc import Awaitable, Callable

import attrs
import h11
import trio

from ._errors import ConnectionResetError, ParseError

_RECEIVE_SIZE = 65536

# Control characters llhttp refuses in a head in strict mode (CR and LF are checked apart).
_END = h11.EndOfMessage()
_UNTIL_CLOSE = -1  # a body that ends when the connection closes
_STATUS_LINE = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: (.*))?")
_CHUNKED_HEAD = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# llhttp, like this, takes several spaces between the parts of the request line.
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") +([\x21-\x7e]+) +HTTP/([0-9]\.[0-9])")
_SIMPLE_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") +([\x21-\x7e]+)")
# The value's characters were checked over the whole head (_BAD_HEAD_BYTE).
_HEADER_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(.*?)[ \t]*")
_BAD_HEAD_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTENT_LENGTH_LINE = re.compile(rb"\ncontent-length:[ \t]*[0-9]+[ \t]*\r\n")


class ReadState(enum.Enum):
    """Where a connection is in reading its current message."""

    IDLE = "idle"
    READING_HEAD = "reading head"
    READING_BODY = "reading body"
    FAILED = "failed"  # the peer sent something unparsable: answer it, then close
    BROKEN = "broken"  # the stream itself failed (or a send was cut): just close
    DETACHED = "detached"


@attrs.define(slots=True)
class RequestHead:
    """A parsed request line and its header lines, as received (latin-1 bytes)."""

    method: bytes
    target: bytes
    http_version: bytes
    raw_headers: list[tuple[bytes, bytes]]
    #: An HTTP/1.1 request without a Host header.
    missing_host: bool = False
    #: The body is chunked (else it is ``content_length`` bytes long).
    chunked: bool = False
    content_length: int = 0
    #: The values of the headers the server acts on, found in the same pass.
    connection: list[bytes] = attrs.field(factory=list)
    expect: bytes | None = None
    upgrade: bytes | None = None


@attrs.define(slots=True)
class ResponseHead:
    """A parsed status line and its header lines, as received (latin-1 bytes)."""

    status_code: int
    reason: bytes
    http_version: bytes
    raw_headers: list[tuple[bytes, bytes]]
    #: A 101, or a 2xx to CONNECT: the stream now speaks another protocol.
    switched: bool = False
    content_length: int | None = None
    transfer_encoding: bytes | None = None


class HTTPConnection:
    """An HTTP/1.1 connection over any :class:`trio.abc.Stream`.

    ``max_header_size`` is the budget of a message head, counted as llhttp counts it
    (:func:`counted_head_size`). ``last_activity`` is the
    :func:`trio.current_time` of the last byte read or written, for inactivity timers.
    """

    __slots__ = (
        "_buffer",
        "_chunk_guard",
        "_parser",
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
        self._parser: h11.Connection | None = None
        self._chunk_guard: _ChunkGuard | None = None
        self._remaining: int | None = None  # bytes left of a Content-Length body
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
        return bool(self._buffer)

    async def wait_for_data(self) -> bool:
        """Wait until some bytes of a next message are buffered; ``False`` at EOF.

        A cancel here loses nothing.
        """
        while not self._buffer:
            if self.eof:
                return False
            data = await self._receive()
            if not data:
                return False
            self._buffer += data
        return True

    # --- reading a message ------------------------------------------------------------

    async def receive_request_head(self) -> RequestHead:
        """Read and parse the next request head (server side), and set up the reading
        of its body.

        Raises :class:`ParseError` with llhttp's code for a malformed head,
        :class:`ConnectionResetError` if the peer closes in the middle of a head, and
        :class:`EOFError` if it closed cleanly between messages.
        """
        head = bytes(await self._frame_head())
        try:
            request = parse_request_head(head)
        except ParseError:
            self.state = ReadState.FAILED
            raise
        if request.chunked:
            self._start_chunked()
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
            head = bytes(await self._frame_head(request=False))
        except EOFError:
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
        elif response.transfer_encoding is not None:
            if _codings(response.transfer_encoding)[-1] == b"chunked":
                self._start_chunked()
            else:
                self._remaining = _UNTIL_CLOSE  # Node: read until the connection closes
        elif response.content_length is not None:
            self._remaining = response.content_length
        else:
            self._remaining = _UNTIL_CLOSE
        return response

    async def _frame_head(self, request: bool = True) -> bytearray:
        buffer = self._buffer
        search_from = 0
        checked = 0
        self.state = ReadState.READING_HEAD
        while True:
            # Empty lines before a request line are skipped, as llhttp and h11 do.
            while buffer[:2] == b"\r\n":
                del buffer[:2]
            end = buffer.find(b"\r\n\r\n", search_from)
            limit = self.max_header_size
            if end != -1:
                size = end + 4
                if size >= limit and counted_head_size(buffer[:size]) >= limit:
                    raise _overflow(buffer)
                head = buffer[:size]
                del buffer[:size]
                _check_head(head, request)
                return head
            _check_partial_head(buffer, checked)
            if len(buffer) >= limit and counted_head_size(buffer) >= limit:
                raise _overflow(buffer)
            search_from = max(0, len(buffer) - 3)
            checked = len(buffer)
            data = await self._receive()
            if not data:
                if buffer:
                    self.state = ReadState.BROKEN
                    raise ConnectionResetError("socket hang up")
                raise EOFError
            buffer += data

    def _start_chunked(self) -> None:
        """Hand a chunked body to h11: a fresh parser is shown a head that says just
        "chunked", then fed what is buffered; :class:`_ChunkGuard` watches beside it."""
        parser = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_header_size)
        parser.receive_data(_CHUNKED_HEAD)
        parser.next_event()
        self._parser = parser
        self._chunk_guard = _ChunkGuard(self.max_header_size)
        self.state = ReadState.READING_BODY
        if self._buffer:
            self._feed(parser, bytes(self._buffer))
            self._buffer.clear()

    def _feed(self, parser: h11.Connection, data: bytes) -> None:
        if self._chunk_guard is not None and data:
            self._chunk_guard.feed(data)
        parser.receive_data(data)

    async def receive_body(self) -> bytes | h11.EndOfMessage:
        """The next piece of the current body, or its :class:`h11.EndOfMessage`
        (which carries the trailers).

        Raises :class:`ParseError` for bad framing (``HPE_CHUNK_EXTENSIONS_OVERFLOW``
        for an oversized chunk line) and :class:`ConnectionResetError` (``aborted``)
        when the peer closes mid-body.
        """
        while True:
            item = self.receive_body_nowait()
            if item is not None:
                return item
            data = await self._receive()
            if self._parser is not None:
                self._feed(self._parser, bytes(data))
            elif data:
                self._buffer += data
            elif self._remaining != _UNTIL_CLOSE:
                self.state = ReadState.BROKEN
                raise ConnectionResetError("aborted")

    def receive_body_nowait(self) -> bytes | h11.EndOfMessage | None:
        """What :meth:`receive_body` would return without reading the stream, or
        ``None`` if that needs more bytes. Ends a body-less message without a checkpoint.
        """
        parser = self._parser
        if parser is None:
            # A Content-Length body (or none): framed here, from our own buffer.
            remaining = self._remaining
            if remaining is None:
                raise RuntimeError("no message body is being read")
            if remaining == _UNTIL_CLOSE:
                if self._buffer:
                    data = bytes(self._buffer)
                    self._buffer.clear()
                    return data
                if not self.eof:
                    return None
                remaining = 0
            if remaining == 0:
                self._remaining = None
                self.state = ReadState.IDLE
                return _END
            buffer = self._buffer
            if not buffer:
                return None
            if len(buffer) <= remaining:
                data = bytes(buffer)
                buffer.clear()
            else:
                data = bytes(buffer[:remaining])
                del buffer[:remaining]
            self._remaining = remaining - len(data)
            return data
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError as exc:
            if self.eof:
                self.state = ReadState.BROKEN
                raise ConnectionResetError("aborted") from None
            self.state = ReadState.FAILED
            raise _body_error(exc) from None
        if event is h11.NEED_DATA:
            if self.eof:
                self.state = ReadState.BROKEN
                raise ConnectionResetError("aborted")
            return None
        if type(event) is h11.Data:
            return bytes(event.data)
        if type(event) is h11.EndOfMessage or event is h11.PAUSED:
            self._finish_body(parser)
            return event if type(event) is h11.EndOfMessage else _END
        if type(event) is h11.ConnectionClosed:
            self.state = ReadState.BROKEN
            raise ConnectionResetError("aborted")
        raise ParseError(f"unexpected event {event!r}")  # pragma: no cover

    def _finish_body(self, parser: h11.Connection) -> None:
        leftover, closed = parser.trailing_data
        self._buffer[:0] = leftover
        if closed:
            self.eof = True
        self._parser = None
        self._chunk_guard = None
        self.state = ReadState.IDLE

    # --- hand-over --------------------------------------------------------------------

    def detach(self) -> tuple[trio.abc.Stream, bytes]:
        """Give up the stream (after an upgrade or CONNECT).

        Returns the stream and the bytes already read past the end of the last message.
        """
        leftover = bytes(self._buffer)
        self._buffer.clear()
        self.state = ReadState.DETACHED
        return self.stream, leftover


def _request_line_fault(line: bytes) -> str:
    method, _, rest = line.partition(b" ")
    if not re.fullmatch(_TOKEN, method):
        return "HPE_INVALID_METHOD"
    if not re.search(rb" HTTP/[0-9]\.[0-9]$", rest):
        return "HPE_INVALID_VERSION"
    return "HPE_INVALID_URL"


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


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a request head framed by :class:`HTTPConnection` (it ends in CRLFCRLF and
    passed :func:`_check_head`), with llhttp's strictness.

    Request heads are parsed here rather than by h11 because it is the per-request hot
    path and a few regular expressions do it several times faster; h11 still frames
    chunked bodies.
    """
    lines = head[:-4].split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is not None:
        method, target, version = match.groups()
    elif (simple := _SIMPLE_REQUEST_LINE.fullmatch(lines[0])) is not None:
        # An HTTP/0.9-style line with no version: llhttp serves it as 0.9 (like 1.0).
        method, target = simple.groups()
        version = b"0.9"
    else:
        raise ParseError(
            "Invalid request line", code=_request_line_fault(lines[0]), raw_packet=head[:2048]
        )
    raw_headers: list[tuple[bytes, bytes]] = []
    has_host = False
    chunked = False
    content_length = 0
    connection: list[bytes] = []
    expect = upgrade = None
    for line in lines[1:]:
        header = _HEADER_LINE.fullmatch(line)
        if header is None:
            raise ParseError(
                "Invalid header token", code="HPE_INVALID_HEADER_TOKEN", raw_packet=head[:2048]
            )
        name, value = header.groups()
        raw_headers.append((name, value))
        lower = name.lower()
        if lower == b"host":
            has_host = True
        elif lower == b"connection":
            connection.append(value)
        elif lower == b"expect":
            expect = value if expect is None else expect
        elif lower == b"upgrade":
            upgrade = value if upgrade is None else upgrade
        elif lower == b"content-length":
            content_length = _content_length(value, head)
        elif lower == b"transfer-encoding":
            codings = _codings(value)
            if chunked or codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
                raise ParseError(
                    "Invalid transfer-encoding",
                    code="HPE_INVALID_TRANSFER_ENCODING",
                    raw_packet=head[:2048],
                )
            chunked = True
    return RequestHead(
        method,
        target,
        version,
        raw_headers,
        missing_host=not has_host and version == b"1.1",
        chunked=chunked,
        content_length=content_length,
        connection=connection,
        expect=expect,
        upgrade=upgrade,
    )


def parse_response_head(head: bytes) -> ResponseHead:
    """Parse a response head framed by :class:`HTTPConnection` (like
    :func:`parse_request_head`). Folded header lines are unfolded into one space, as
    Node does for responses."""
    lines = head[:-4].split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise ParseError("Invalid status line", code="HPE_INVALID_STATUS", raw_packet=head[:2048])
    version, status, reason = match.groups()
    raw_headers: list[tuple[bytes, bytes]] = []
    content_length: int | None = None
    transfer_encoding: bytes | None = None
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and raw_headers:
            name, value = raw_headers[-1]
            raw_headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        header = _HEADER_LINE.fullmatch(line)
        if header is None:
            raise ParseError(
                "Invalid header token", code="HPE_INVALID_HEADER_TOKEN", raw_packet=head[:2048]
            )
        name, value = header.groups()
        raw_headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            content_length = _content_length(value, head)
        elif lower == b"transfer-encoding":
            transfer_encoding = (
                value if transfer_encoding is None else transfer_encoding + b", " + value
            )
    return ResponseHead(
        int(status),
        reason or b"",
        version,
        raw_headers,
        content_length=content_length,
        transfer_encoding=transfer_encoding,
    )


def _codings(value: bytes) -> list[bytes]:
    """The transfer codings of a ``Transfer-Encoding`` value, lowercase."""
    return [coding.strip().lower() for coding in value.split(b",")]


def _content_length(value: bytes, head: bytes) -> int:
    text = value.strip()
    if not text.isdigit() or int(text) >= 1 << 64:  # llhttp's length is 64-bit
        raise ParseError(
            "Invalid character in Content-Length",
            code="HPE_INVALID_CONTENT_LENGTH",
            raw_packet=head[:2048],
        )
    return int(text)


class _ChunkGuard:
    """Follows the chunk framing of a body that h11 is parsing, only to hold each chunk
    line's extensions to llhttp's limit (h11 ignores extensions, and its own buffer
    limit misses a long line that arrives in one read).

    Counted as llhttp counts: the extension bytes of one chunk line, ``;`` and ``=``
    excluded; more than ``limit`` is ``HPE_CHUNK_EXTENSIONS_OVERFLOW`` (413).
    """

    __slots__ = ("_line", "_skip", "done", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._line = bytearray()  # the chunk-size line read so far
        self._skip = 0  # chunk data (plus its CRLF) still to pass over
        self.done = False

    def feed(self, data: bytes) -> None:
        position = 0
        size = len(data)
        while position < size and not self.done:
            if self._skip:
                step = min(self._skip, size - position)
                self._skip -= step
                position += step
                continue
            end = data.find(b"\n", position)
            piece = data[position : size if end == -1 else end]
            self._line += piece
            if _extension_size(self._line) > self.limit:
                raise ParseError("Chunk extensions overflow", code="HPE_CHUNK_EXTENSIONS_OVERFLOW")
            if end == -1:
                return
            position = end + 1
            line = bytes(self._line).rstrip(b"\r")
            self._line.clear()
            size_text = line.split(b";", 1)[0].strip()
            try:
                chunk_size = int(size_text, 16)
            except ValueError:
                return  # h11 reports the bad chunk size itself
            if chunk_size == 0:
                self.done = True  # trailers follow; h11 bounds those
            else:
                self._skip = chunk_size + 2


def _extension_size(line: bytearray) -> int:
    semicolon = line.find(b";")
    if semicolon == -1:
        return 0
    extensions = line[semicolon:].rstrip(b"\r")
    return len(extensions) - extensions.count(b";") - extensions.count(b"=")


def counted_head_size(head: bytes | bytearray) -> int:
    """The size llhttp holds against ``max_header_size``: the request-target plus each
    header's name and value (leading blanks of the value excluded). The method, the
    version, colons and line ends do not count. Works on an unfinished head too."""
    lines = bytes(head).split(b"\r\n")
    request_line = lines[0].split(b" ")
    total = len(request_line[1]) if len(request_line) > 1 else 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        total += len(name) + len(value.lstrip(b" \t"))
    return total


def _overflow(buffer: bytearray) -> ParseError:
    return ParseError(
        "Header overflow", code="HPE_HEADER_OVERFLOW", raw_packet=bytes(buffer[:4096])
    )


def _check_partial_head(buffer: bytearray, checked: int) -> None:
    """Fail fast on a bare LF in an unfinished head: such a head never ends in CRLFCRLF,
    so its sender would otherwise wait for the headers timeout. ``buffer[:checked]`` was
    checked before; the region starts one byte earlier so that a CRLF split between two
    reads is seen whole."""
    start = max(0, checked - 1)
    region = buffer[start:]
    bare = region.count(b"\n") - region.count(b"\r\n")
    if start and region[:1] == b"\n":
        bare -= 1
    if bare:
        raise ParseError("Missing expected CR after header value", code="HPE_CR_EXPECTED")


def _check_head(head: bytearray, request: bool = True) -> None:
    """llhttp's strict checks that h11 does not make (obs-fold is refused in requests
    only: in a response it is unfolded, as Node does)."""
    raw = bytes(head[:2048])
    if head.count(b"\n") != head.count(b"\r\n"):
        raise ParseError(
            "Missing expected CR after header value", code="HPE_CR_EXPECTED", raw_packet=raw
        )
    if head.count(b"\r") != head.count(b"\r\n"):
        raise ParseError(
            "Missing expected LF after header value", code="HPE_LF_EXPECTED", raw_packet=raw
        )
    if request and (b"\r\n " in head or b"\r\n\t" in head):
        # obs-fold: h11 would unfold it; llhttp refuses it in requests.
        raise ParseError("Invalid header token", code="HPE_INVALID_HEADER_TOKEN", raw_packet=raw)
    if _BAD_HEAD_BYTE.search(head):
        raise ParseError(
            "Invalid header value char", code="HPE_INVALID_HEADER_TOKEN", raw_packet=raw
        )
    lower = head.lower()
    lengths = lower.count(b"\ncontent-length:")
    if lengths > 1 or (lengths and b"\ntransfer-encoding:" in lower):
        raise ParseError(
            "Unexpected content-length header",
            code="HPE_UNEXPECTED_CONTENT_LENGTH",
            raw_packet=raw,
        )
    if lengths and not _CONTENT_LENGTH_LINE.search(lower):
        # h11 would take "5, 5" or "+5"; llhttp wants digits only.
        raise ParseError(
            "Invalid character in Content-Length",
            code="HPE_INVALID_CONTENT_LENGTH",
            raw_packet=raw,
        )


def _body_error(exc: h11.RemoteProtocolError) -> ParseError:
    text = str(exc)
    if "buffer too long" in text:
        return ParseError("Chunk extensions overflow", code="HPE_CHUNK_EXTENSIONS_OVERFLOW")
    if "chunk" in text.lower():
        return ParseError(text, code="HPE_INVALID_CHUNK_SIZE")
    return ParseError(text, code="HPE_INVALID_CONSTANT")


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
