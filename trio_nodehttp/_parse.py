"""Parsing HTTP/1.1 with llhttp's strictness, sans I/O: bytes in, a head, a piece of
body or a :class:`ParseError` out.

This module reads untrusted bytes, so all of it is here and nothing else in the package
raises an ``HPE_*`` code. It keeps no socket and never waits: :class:`~._connection.
HTTPConnection` owns the read buffer and calls in here whenever bytes arrive.

Heads
-----
A head is framed by :func:`find_head` (the blank line, llhttp's byte budget
``max_header_size`` as :func:`counted_head_size` counts it, and the faults that can be
seen before the head is whole: a bad byte is answered at once, as llhttp answers it) and
parsed by :func:`parse_request_head` or :func:`parse_response_head` (anchored regular
expressions: several times faster than a general parser on the per-request hot path).

Chunked bodies
--------------
:class:`ChunkedReader` is an explicit state machine over the buffer::

    SIZE ──size line──▶ DATA ──size bytes──▶ DATA_END ──CRLF──▶ SIZE
      │ (size 0)
      └──▶ TRAILERS ──blank line──▶ DONE

The chunk-size line follows llhttp's grammar to the letter: hex digits (64-bit at most),
then ``;name`` or ``;name=value`` extensions (a token or a quoted string), then CRLF; no
sign, no ``0x``, no space or tab anywhere, no empty extension. A line is checked as its
bytes arrive, so a bad one is refused at the bad byte, and every state consumes bytes or
asks for more: no input can make the reader loop without progress.
"""

from __future__ import annotations

import enum
import re

import attrs

from ._errors import ParseError
from ._status import METHOD_SET

_TOKEN_CHARS = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = rb"[" + _TOKEN_CHARS + rb"]+"
# llhttp, like this, takes several spaces between the parts of the request line.
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") +([\x21-\x7e]+) +HTTP/([0-9]\.[0-9])")
_SIMPLE_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") +([\x21-\x7e]+)")
_STATUS_LINE = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: (.*))?")
# What unfinished lines may look like so far, and the parts of a bad line.
_VERSION_PREFIX = re.compile(rb"(?:[0-9](?:\.(?:[0-9] ?)?)?)?")
_HTTP_VERSION_PREFIX = rb"(?:|H|HT|HTT|HTTP|HTTP/|HTTP/[0-9]|HTTP/[0-9]\.|HTTP/[0-9]\.[0-9])"
_REQUEST_LINE_PREFIX = re.compile(
    rb"["
    + _TOKEN_CHARS
    + rb"]*|"
    + _TOKEN
    + rb" +(?:[\x21-\x7e]+(?: +"
    + _HTTP_VERSION_PREFIX
    + rb")?)?"
)
_STATUS_LINE_PREFIX = re.compile(
    _HTTP_VERSION_PREFIX + rb"|HTTP/[0-9]\.[0-9] (?:[0-9]{0,3}|[0-9]{3} .*)"
)
_METHOD_PREFIX = re.compile(rb"[" + _TOKEN_CHARS + rb"]*")
_TARGET = re.compile(rb"[\x21-\x7e]+")
# The value's characters are checked apart (_STRAY_BYTE).
_HEADER_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(.*?)[ \t]*")
_HEADER_NAME_PREFIX = re.compile(rb"[" + _TOKEN_CHARS + rb"]*")
# In one line of a head (CRLF taken off): a control byte, or a CR or LF on its own.
_STRAY_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# A head that holds a control byte, or a CR or LF that is not part of a CRLF.
_DIRTY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")

#: llhttp takes these versions (anything but 1.1 is then served as 1.0 is).
ACCEPTED_VERSIONS = frozenset({b"1.1", b"1.0", b"0.9", b"2.0"})

# The common chunk-size line, at once: up to 16 significant hex digits (llhttp's 64-bit
# size), plain or quoted extensions. Anything else goes to scan_chunk_line().
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_EXTENSION = rb";" + _TOKEN + rb"(?:=(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?"
_CHUNK_LINE = re.compile(rb"0*([0-9A-Fa-f]{1,16})((?:" + _EXTENSION + rb")*)\r\n")
_HEX_VALUE = {byte: int(chr(byte), 16) for byte in b"0123456789abcdefABCDEF"}
_TOKEN_BYTES = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_QDTEXT = frozenset(b"\t !") | frozenset(range(0x23, 0x5C)) | frozenset(range(0x5D, 0x7F))
_QDTEXT |= frozenset(range(0x80, 0x100))
_QUOTED_PAIR = frozenset(b"\t") | frozenset(range(0x20, 0x7F)) | frozenset(range(0x80, 0x100))


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


@attrs.frozen
class EndOfBody:
    """The end of a message body, with the trailers that came after a chunked one."""

    trailers: list[tuple[bytes, bytes]] = attrs.field(factory=list)


#: The end of a body without trailers (shared: never mutated).
END_OF_BODY = EndOfBody()


# --- heads ---------------------------------------------------------------------------


class HeadKind(enum.Enum):
    """What the first line of a head is: it decides that line's grammar and the fate of
    obs-fold (refused in requests, unfolded in responses)."""

    REQUEST = "request"
    RESPONSE = "response"
    REQUEST_TRAILERS = "request trailers"  # no first line of its own
    RESPONSE_TRAILERS = "response trailers"


def find_head(buffer: bytearray, checked: int, max_header_size: int, kind: HeadKind) -> int:
    """Where the head at the start of ``buffer`` ends (just past its blank line), or
    ``-1`` if it is not whole yet.

    ``checked`` is how much of the buffer an earlier call has already seen (0 at first):
    the faults of an unfinished head are looked for in the new bytes only, so a head
    dribbled byte by byte costs linear time. Raises :class:`ParseError` for a head over
    ``max_header_size`` and for a fault that no later byte can mend.
    """
    end = buffer.find(b"\r\n\r\n", max(0, checked - 3))
    if end != -1:
        size = end + 4
        if size >= max_header_size and counted_head_size(buffer[:size]) >= max_header_size:
            raise _overflow(buffer)
        return size
    if buffer:
        # From the start of the line that was unfinished when ``checked`` bytes were seen.
        found = buffer.rfind(b"\r\n", 0, checked)
        start = found + 2 if found != -1 else 0
        lines = buffer[start:].split(b"\r\n")
        last = len(lines) - 1
        first = buffer.count(b"\r\n", 0, start)  # the index of that line in the head
        for index, line in enumerate(lines):
            fault = _line_fault(line, first + index, kind, complete=index < last)
            if fault is not None:
                raise fault
    if len(buffer) >= max_header_size and counted_head_size(buffer) >= max_header_size:
        raise _overflow(buffer)
    return -1


def skip_empty_lines(buffer: bytearray) -> None:
    """Drop the empty lines before a request line, as llhttp does."""
    while buffer[:2] == b"\r\n":
        del buffer[:2]


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a request head framed by :func:`find_head` (it ends in CRLFCRLF).

    Faults are found in the order of their bytes, so that the same bytes fail the same
    way however they were split; the framing rules (Content-Length, Transfer-Encoding)
    are judged once every line is known to be well formed.
    """
    lines = head[:-4].split(b"\r\n")
    if _DIRTY.search(head):
        raise _first_fault(lines, HeadKind.REQUEST)
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is not None:
        method, target, version = match.groups()
    elif (simple := _SIMPLE_REQUEST_LINE.fullmatch(lines[0])) is not None:
        # An HTTP/0.9-style line with no version: llhttp serves it as 0.9 (like 1.0).
        method, target = simple.groups()
        version = b"0.9"
    else:
        raise _first_fault(lines, HeadKind.REQUEST)
    raw_headers: list[tuple[bytes, bytes]] = []
    has_host = False
    chunked = False
    content_length = 0
    lengths = 0
    fault: ParseError | None = None  # a framing fault, raised once every line is read
    connection: list[bytes] = []
    expect = upgrade = None
    for line in lines[1:]:
        header = _HEADER_LINE.fullmatch(line)
        if header is None:
            raise _first_fault(lines, HeadKind.REQUEST)
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
            lengths += 1
            if lengths > 1 or chunked:
                fault = fault or _unexpected_content_length(head)
            else:
                try:
                    content_length = _content_length(value, head)
                except ParseError as exc:
                    fault = fault or exc
        elif lower == b"transfer-encoding":
            codings = transfer_codings(value)
            if lengths:
                fault = fault or _unexpected_content_length(head)
            elif chunked or codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
                fault = fault or ParseError(
                    "Invalid transfer-encoding",
                    code="HPE_INVALID_TRANSFER_ENCODING",
                    raw_packet=head[:2048],
                )
            chunked = True
    if fault is not None:
        raise fault
    if method not in METHOD_SET:  # PRI (an HTTP/2 preface) included, as in Node
        raise ParseError(
            "Invalid method encountered", code="HPE_INVALID_METHOD", raw_packet=head[:2048]
        )
    if version not in ACCEPTED_VERSIONS:
        raise ParseError("Invalid HTTP version", code="HPE_INVALID_VERSION", raw_packet=head[:2048])
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
    """Parse a response head framed by :func:`find_head`, as :func:`parse_request_head`
    does a request's. Folded header lines are unfolded into one space, as Node does."""
    lines = head[:-4].split(b"\r\n")
    if _DIRTY.search(head):
        raise _first_fault(lines, HeadKind.RESPONSE)
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise _first_fault(lines, HeadKind.RESPONSE)
    version, status, reason = match.groups()
    raw_headers = header_lines(lines, HeadKind.RESPONSE)
    content_length: int | None = None
    transfer_encoding: bytes | None = None
    lengths = 0
    for name, value in raw_headers:
        lower = name.lower()
        if lower == b"content-length":
            lengths += 1
            if lengths > 1:
                raise _unexpected_content_length(head)
            content_length = _content_length(value, head)
        elif lower == b"transfer-encoding":
            transfer_encoding = (
                value if transfer_encoding is None else transfer_encoding + b", " + value
            )
    if lengths and transfer_encoding is not None:
        raise _unexpected_content_length(head)
    if version not in ACCEPTED_VERSIONS:
        raise ParseError("Invalid HTTP version", code="HPE_INVALID_VERSION", raw_packet=head[:2048])
    return ResponseHead(
        int(status),
        reason or b"",
        version,
        raw_headers,
        content_length=content_length,
        transfer_encoding=transfer_encoding,
    )


def header_lines(lines: list[bytes], kind: HeadKind) -> list[tuple[bytes, bytes]]:
    """The ``(name, value)`` pairs of a head's lines after the first (``lines[0]`` is the
    request or status line, or empty for trailers); folded lines of a response are
    unfolded."""
    raw_headers: list[tuple[bytes, bytes]] = []
    unfold = kind in (HeadKind.RESPONSE, HeadKind.RESPONSE_TRAILERS)
    for line in lines[1:]:
        if unfold and line[:1] in (b" ", b"\t") and raw_headers:
            name, value = raw_headers[-1]
            raw_headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        header = _HEADER_LINE.fullmatch(line)
        if header is None:
            raise _first_fault(lines, kind)
        name, value = header.groups()
        raw_headers.append((name, value))
    return raw_headers


def transfer_codings(value: bytes) -> list[bytes]:
    """The transfer codings of a ``Transfer-Encoding`` value, lowercase."""
    return [coding.strip().lower() for coding in value.split(b",")]


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


def invalid_eof_state(buffer: bytearray) -> ParseError:
    """The connection ended in the middle of a head."""
    return ParseError("Invalid EOF state", code="HPE_INVALID_EOF_STATE", raw_packet=bytes(buffer))


def _line_fault(
    line: bytes | bytearray, index: int, kind: HeadKind, *, complete: bool
) -> ParseError | None:
    """What is wrong with line ``index`` of a head, judged alone, or ``None``; an
    unfinished line (``complete=False``, its last byte may be the CR of its CRLF) is
    judged by whether it can still become good. The first bad byte decides: a stray CR
    or LF or a control byte, or the first byte the line's grammar cannot take."""
    line = bytes(line)
    if not complete and line[-1:] == b"\r":
        line = line[:-1]
    stray = _STRAY_BYTE.search(line)
    if stray is None:
        return _grammar_fault(line, index, kind, complete=complete)
    fault = _grammar_fault(line[: stray.start()], index, kind, complete=False)
    if fault is not None:
        return fault
    raw = line[:2048]
    byte = stray.group()
    if byte == b"\n":
        return ParseError(
            "Missing expected CR after header value", code="HPE_CR_EXPECTED", raw_packet=raw
        )
    if byte == b"\r":
        return ParseError(
            "Missing expected LF after header value", code="HPE_LF_EXPECTED", raw_packet=raw
        )
    return ParseError("Invalid header value char", code="HPE_INVALID_HEADER_TOKEN", raw_packet=raw)


def _grammar_fault(line: bytes, index: int, kind: HeadKind, *, complete: bool) -> ParseError | None:
    """The grammar of line ``index`` (no CR, LF or control byte in it): a whole line,
    or with ``complete=False`` a beginning that may still become one."""
    if index == 0:
        if kind is HeadKind.REQUEST:
            pattern = _REQUEST_LINE if complete else _REQUEST_LINE_PREFIX
            if pattern.fullmatch(line) or (complete and _SIMPLE_REQUEST_LINE.fullmatch(line)):
                return None
            return _request_line_error(line)
        if kind is HeadKind.RESPONSE:
            if (_STATUS_LINE if complete else _STATUS_LINE_PREFIX).fullmatch(line):
                return None
            return _status_line_error(line)
        return None
    if line[:1] in (b" ", b"\t"):
        if kind in (HeadKind.RESPONSE, HeadKind.RESPONSE_TRAILERS) and index > 1:
            return None  # obs-fold, unfolded in a response
        return _bad_header(line[:2048])
    if complete:
        good = _HEADER_LINE.fullmatch(line) is not None
    else:
        good = _HEADER_NAME_PREFIX.fullmatch(line.split(b":", 1)[0]) is not None
    return None if good else _bad_header(line[:2048])


def _first_fault(lines: list[bytes], kind: HeadKind) -> ParseError:
    """The fault of the first bad line of a whole head that did not parse."""
    for index, line in enumerate(lines):
        fault = _line_fault(line, index, kind, complete=True)
        if fault is not None:
            return fault
    raise AssertionError("no fault in a head that did not parse")  # pragma: no cover


def _content_length(value: bytes, head: bytes) -> int:
    text = value.strip(b" \t")
    if not text.isdigit() or int(text) >= 1 << 64:  # llhttp's length is 64-bit
        raise ParseError(
            "Invalid character in Content-Length",
            code="HPE_INVALID_CONTENT_LENGTH",
            raw_packet=head[:2048],
        )
    return int(text)


def _unexpected_content_length(head: bytes) -> ParseError:
    return ParseError(
        "Unexpected content-length header",
        code="HPE_UNEXPECTED_CONTENT_LENGTH",
        raw_packet=head[:2048],
    )


def _request_line_error(line: bytes) -> ParseError:
    """The fault of a bad (or unfinishable) request line, by the part it is in."""
    method, _, rest = line.partition(b" ")
    target = rest.lstrip(b" ").partition(b" ")[0]
    if not _METHOD_PREFIX.fullmatch(method):
        code, reason = "HPE_INVALID_METHOD", "Invalid method encountered"
    elif target and not _TARGET.fullmatch(target):
        code, reason = "HPE_INVALID_URL", "Invalid characters in url"
    else:
        code, reason = "HPE_INVALID_VERSION", "Invalid HTTP version"
    return ParseError(reason, code=code, raw_packet=line[:2048])


def _status_line_error(line: bytes) -> ParseError:
    """The fault of a bad (or unfinishable) status line, by the part it is in."""
    if not b"HTTP/".startswith(line[:5]):
        code, reason = "HPE_INVALID_CONSTANT", "Expected HTTP/"
    elif not _VERSION_PREFIX.fullmatch(line[5:9]):
        code, reason = "HPE_INVALID_VERSION", "Invalid HTTP version"
    else:
        code, reason = "HPE_INVALID_STATUS", "Invalid status code"
    return ParseError(reason, code=code, raw_packet=line[:2048])


def _bad_header(raw: bytes) -> ParseError:
    return ParseError("Invalid header token", code="HPE_INVALID_HEADER_TOKEN", raw_packet=raw)


def _overflow(buffer: bytearray) -> ParseError:
    return ParseError(
        "Header overflow", code="HPE_HEADER_OVERFLOW", raw_packet=bytes(buffer[:4096])
    )


# --- chunked bodies ------------------------------------------------------------------


class ChunkedState(enum.Enum):
    """Where a :class:`ChunkedReader` is in a chunked body."""

    SIZE = "chunk-size line"
    DATA = "chunk data"
    DATA_END = "CRLF after chunk data"
    TRAILERS = "trailer section"
    DONE = "done"


class ChunkedReader:
    """Reads one chunked body out of a connection's buffer (see the module docstring).

    ``max_header_size`` bounds a chunk line's extensions (llhttp counts their bytes, ``;``
    and ``=`` aside: more is ``HPE_CHUNK_EXTENSIONS_OVERFLOW``) and the trailer section
    (counted as a head: more is ``HPE_HEADER_OVERFLOW``). ``request`` selects the
    trailer rules: obs-fold is refused in a request and unfolded in a response.
    """

    __slots__ = ("_checked", "_kind", "_remaining", "limit", "state")

    def __init__(self, max_header_size: int, *, request: bool) -> None:
        self.limit = max_header_size
        self._kind = HeadKind.REQUEST_TRAILERS if request else HeadKind.RESPONSE_TRAILERS
        self.state = ChunkedState.SIZE
        self._remaining = 0  # bytes of chunk data still to come
        self._checked = 0  # bytes of the unfinished line (or trailers) already checked

    def read(self, buffer: bytearray) -> bytes | EndOfBody | None:
        """The next piece of chunk data, or the :class:`EndOfBody` with the trailers, taken
        from the front of ``buffer``; ``None`` when that needs more bytes (all that was
        seen is consumed or checked, so the call always makes progress)."""
        while True:
            state = self.state
            if state is ChunkedState.DATA:
                if not buffer:
                    return None
                size = min(self._remaining, len(buffer))
                data = bytes(buffer[:size])
                del buffer[:size]
                self._remaining -= size
                if not self._remaining:
                    self.state = ChunkedState.DATA_END
                return data
            if state is ChunkedState.SIZE:
                if not self._read_size_line(buffer):
                    return None
            elif state is ChunkedState.DATA_END:
                if len(buffer) < 2:
                    if buffer and buffer[:1] != b"\r":
                        raise _after_data_error(buffer)
                    return None
                if buffer[:2] != b"\r\n":
                    raise _after_data_error(buffer)
                del buffer[:2]
                self.state = ChunkedState.SIZE
            elif state is ChunkedState.TRAILERS:
                return self._read_trailers(buffer)
            else:
                raise RuntimeError("the chunked body has ended")

    def _read_size_line(self, buffer: bytearray) -> bool:
        match = _CHUNK_LINE.match(buffer)
        if match is not None:
            size_hex, extensions = match.groups()
            if extensions and _extension_size(extensions) > self.limit:
                raise ParseError("Chunk extensions overflow", code="HPE_CHUNK_EXTENSIONS_OVERFLOW")
            del buffer[: match.end()]
            size = int(size_hex, 16)
        else:
            end = buffer.find(b"\n")
            scanned = scan_chunk_line(buffer if end == -1 else buffer[: end + 1], self.limit)
            if scanned is None:
                return False
            del buffer[: end + 1]
            size = scanned
        if size:
            self._remaining = size
            self.state = ChunkedState.DATA
        else:
            self.state = ChunkedState.TRAILERS
            self._checked = 0
        return True

    def _read_trailers(self, buffer: bytearray) -> EndOfBody | None:
        if buffer[:2] == b"\r\n":
            del buffer[:2]
            self.state = ChunkedState.DONE
            return END_OF_BODY
        if buffer[:1] == b"\r" and len(buffer) == 1:
            return None
        # The trailer section is framed as a head whose first line is empty.
        section = bytearray(b"\r\n") + buffer
        end = find_head(section, self._checked, self.limit, self._kind)
        if end == -1:
            self._checked = len(section)
            return None
        head = bytes(section[:end])
        lines = head[:-4].split(b"\r\n")
        if _DIRTY.search(head):
            raise _first_fault(lines, self._kind)
        trailers = header_lines(lines, self._kind)
        del buffer[: end - 2]
        self.state = ChunkedState.DONE
        return EndOfBody(trailers)


def scan_chunk_line(line: bytes | bytearray, limit: int) -> int | None:
    """llhttp's chunk-size grammar, a byte at a time (the states are llhttp's own): the
    size of a whole chunk line, ``None`` if the line is unfinished but good so far, or a
    :class:`ParseError` at the first bad byte. For the lines :data:`_CHUNK_LINE` does not
    take at once; ``limit`` bounds the extensions' bytes."""
    state = "size_start"
    size = 0
    extension_size = 0
    for byte in line:
        if state == "extensions":
            if byte in b" \r":
                raise _strict_error("Invalid character in chunk extensions")
            state = "name"  # this byte is the name's first, or ends an empty name
        if state in ("size_start", "size"):
            digit = _HEX_VALUE.get(byte)
            if digit is not None:
                size = size * 16 + digit
                if size >= 1 << 64:
                    raise ParseError("Chunk size overflow", code="HPE_INVALID_CHUNK_SIZE")
                state = "size"
            elif state == "size_start" or byte not in b";\r\n":
                raise _chunk_size_error()
            else:
                state = "extensions" if byte == ord(";") else _line_end(byte, "chunk size")
        elif state == "name":
            if byte in _TOKEN_BYTES:
                extension_size += 1
            elif byte == ord("="):
                state = "value"
            elif byte == ord(";"):
                state = "extensions"
            else:
                state = _line_end(byte, "chunk extensions name")
        elif state == "value":
            if byte == ord('"'):
                extension_size += 1
                state = "quoted"
            elif byte in _TOKEN_BYTES:
                extension_size += 1
            elif byte == ord(";"):
                state = "extensions"
            else:
                state = _line_end(byte, "chunk extensions value")
        elif state == "quoted":
            extension_size += 1
            if byte == ord('"'):
                state = "quoted_done"
            elif byte == ord("\\"):
                state = "quoted_pair"
            elif byte not in _QDTEXT:
                raise _strict_error("Invalid character in chunk extensions quoted value")
        elif state == "quoted_pair":
            extension_size += 1
            if byte not in _QUOTED_PAIR:
                raise _strict_error("Invalid quoted-pair in chunk extensions quoted value")
            state = "quoted"
        elif state == "quoted_done":
            if byte == ord(";"):
                state = "extensions"
            else:
                state = _line_end(byte, "chunk extensions quote value")
        else:  # almost_done: a CR was seen
            if byte != ord("\n"):
                raise _strict_error("Expected LF after chunk size")
            return size
        if extension_size > limit:
            raise ParseError("Chunk extensions overflow", code="HPE_CHUNK_EXTENSIONS_OVERFLOW")
    return None


def _line_end(byte: int, where: str) -> str:
    """After a chunk-size line's last part: CR is the way on; a bare LF or anything else
    is refused."""
    if byte == ord("\r"):
        return "almost_done"
    if byte == ord("\n"):
        raise ParseError(f"Missing expected CR after {where}", code="HPE_CR_EXPECTED")
    if where == "chunk size":
        raise _chunk_size_error()
    raise _strict_error(f"Invalid character in {where}")


def _chunk_size_error() -> ParseError:
    return ParseError("Invalid character in chunk size", code="HPE_INVALID_CHUNK_SIZE")


def _strict_error(reason: str) -> ParseError:
    return ParseError(reason, code="HPE_STRICT")


def _after_data_error(buffer: bytearray) -> ParseError:
    if buffer[:1] == b"\n":
        return ParseError("Missing expected CR after chunk data", code="HPE_CR_EXPECTED")
    return _strict_error("Expected LF after chunk data")


def _extension_size(extensions: bytes) -> int:
    return len(extensions) - extensions.count(b";") - extensions.count(b"=")
