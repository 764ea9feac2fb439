"""Parsing HTTP/1.1 as llhttp 9.3.1 (the parser inside Node 20) parses it, sans I/O:
bytes in, a head, a piece of body or a :class:`ParseError` out.

This module reads untrusted bytes, so all of it is here and nothing else in the package
raises an ``HPE_*`` code. It keeps no socket and never waits: :class:`~._connection.
HTTPConnection` owns the read buffer and calls in here whenever bytes arrive.

Heads
-----
A head is framed by :func:`find_head` (the blank line, llhttp's byte budget
``max_header_size`` as :func:`counted_head_size` counts it, and the faults that can be
seen before the head is whole: a bad byte is answered at once, as llhttp answers it) and
parsed by :func:`parse_request_head` or :func:`parse_response_head`.

A whole head goes through anchored regular expressions first (several times faster than
a general parser on the per-request hot path), which take exactly what llhttp takes. A
head they refuse, and every unfinished one, is read by scanners that follow llhttp's
state machine (``src/llhttp/http.ts`` and ``url.ts``) a part at a time, so the fault
reported is llhttp's, at llhttp's byte: the first bad byte in the order of the bytes,
the framing rules included (a second ``Content-Length``, ``Content-Length`` with
``Transfer-Encoding``, a coding after ``chunked`` in a request), whatever the split.

What llhttp decides about a message is decided here the same way: the methods each
protocol (``HTTP``, ``RTSP``, ``ICE``) may use, the versions (0.9, 1.0, 1.1, 2.0),
whether the body is chunked (``chunked`` the last coding, spaces but no tab after it),
the ``Connection`` tokens it acts on (``Proxy-Connection`` too), an upgrade. A request
whose ``Transfer-Encoding`` does not end in ``chunked`` has its head parsed and its
body refused (:attr:`RequestHead.body_fault`), as llhttp refuses it only after the
head's callback has run.

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
from collections.abc import Callable

import attrs

from ._errors import ParseError
from ._status import METHOD_SET

_SP, _HT, _CR, _LF, _COMMA = 0x20, 0x09, 0x0D, 0x0A, 0x2C

_TOKEN_CHARS = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN_RUN = re.compile(rb"[" + _TOKEN_CHARS + rb"]*")

# llhttp's methods (src/llhttp/constants.ts), by the protocol a request line names. Node's
# http.METHODS are llhttp's HTTP/1 methods; PRI starts the HTTP/2 preface.
HTTP_METHODS = METHOD_SET | {b"PRI"}
RTSP_METHODS = frozenset(
    b"OPTIONS DESCRIBE ANNOUNCE SETUP PLAY PAUSE TEARDOWN GET_PARAMETER SET_PARAMETER "
    b"REDIRECT RECORD GET POST FLUSH".split()
)
ICE_METHODS = frozenset({b"SOURCE"})
_PROTOCOL_METHODS = {b"HTTP": HTTP_METHODS, b"RTSP": RTSP_METHODS, b"ICE": ICE_METHODS}
_PROTOCOLS = (b"HTTP", b"RTSP", b"ICE")
_METHODS = HTTP_METHODS | RTSP_METHODS
_METHOD_PREFIXES = frozenset(
    method[:size] for method in _METHODS for size in range(1, len(method) + 1)
)
#: The rest of the HTTP/2 preface after ``PRI * HTTP/2.0``.
_PREFACE_REST = b"\r\n\r\nSM\r\n\r\n"

#: llhttp takes these versions (anything but 1.1 is then served as 1.0 is).
ACCEPTED_VERSIONS = frozenset({b"1.1", b"1.0", b"0.9", b"2.0"})

# A request-target as llhttp's url.ts reads it: a path (or ``*``), or an absolute URL
# whose scheme is letters and whose host holds no ``#`` and no ``@@``; CONNECT's is a
# host (possibly empty) and what may follow a host.
_HOST = rb"(?:[0-9A-Za-z\-_.!~*'();:&=+$,%\[\]]|@(?!@))*"
_HOST_RUN = re.compile(_HOST)
_PATH_RUN = re.compile(rb"[\x21-\x7e]*")
_URL = re.compile(rb"[/*][\x21-\x7e]*|[A-Za-z]+://" + _HOST + rb"(?:[/?][\x21-\x7e]*)?")
_CONNECT_URL = re.compile(_HOST + rb"(?:[/?][\x21-\x7e]*)?")
_ALPHA_RUN = re.compile(rb"[A-Za-z]*")
_DIGIT_RUN = re.compile(rb"[0-9]*")

# The whole lines llhttp takes, for the hot path; the parts are checked apart.
_REQUEST_LINE = re.compile(rb"([A-Z_\-]+) +([\x21-\x7e]+) +(HTTP|RTSP|ICE)/([0-9]\.[0-9])")
_SIMPLE_REQUEST_LINE = re.compile(rb"([A-Z_\-]+) +([\x21-\x7e]*)")  # HTTP/0.9
_STATUS_LINE = re.compile(rb"(?:HTTP|RTSP|ICE)/([0-9]\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?")
# The value, its leading blanks gone but not its trailing ones (which llhttp's framing
# rules look at); its characters are checked apart (_DIRTY).
_HEADER_LINE = re.compile(rb"([" + _TOKEN_CHARS + rb"]+):[ \t]*(.*)")
_CONTENT_LENGTH = re.compile(rb"([0-9]+) *")
# A head that holds a control byte, or a CR or LF that is not part of a CRLF.
_DIRTY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")
# A byte a header value may not hold (llhttp's HEADER_CHARS are HTAB, SP, VCHAR, obs-text).
_NOT_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# The framing header lines of the part of a head before some line, for the unfinished-head
# checks (the lines there are known to be good).
_FRAMING_LINE = re.compile(rb"\r\n((?i:content-length|transfer-encoding)):[ \t]*([^\r]*)")

_CONNECTION_TOKENS = (b"close", b"keep-alive", b"upgrade")

# The common chunk-size line, at once: up to 16 significant hex digits (llhttp's 64-bit
# size), plain or quoted extensions. Anything else goes to scan_chunk_line().
_TOKEN = rb"[" + _TOKEN_CHARS + rb"]+"
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
    #: The body is chunked (else it is ``content_length`` bytes long). A CONNECT request
    #: has no body: what follows its head is the tunnel's.
    chunked: bool = False
    content_length: int = 0
    #: The ``Connection`` (and ``Proxy-Connection``) tokens llhttp acts on, lowercase:
    #: ``close``, ``keep-alive``, ``upgrade``.
    connection: list[bytes] = attrs.field(factory=list)
    #: The first ``Expect`` value; the first non-empty ``Upgrade`` value.
    expect: bytes | None = None
    upgrade: bytes | None = None
    #: Why the body cannot be read (a ``Transfer-Encoding`` that does not end in
    #: ``chunked``): llhttp fails the request only once its head has been handled.
    body_fault: ParseError | None = None


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
    #: The non-empty ``Transfer-Encoding`` values, joined; the body is chunked if
    #: ``chunked``, else (with a ``Transfer-Encoding``) it lasts until the close.
    transfer_encoding: bytes | None = None
    chunked: bool = False


@attrs.frozen
class EndOfBody:
    """The end of a message body, with the trailers that came after a chunked one."""

    trailers: list[tuple[bytes, bytes]] = attrs.field(factory=list)


#: The end of a body without trailers (shared: never mutated).
END_OF_BODY = EndOfBody()


# --- heads ---------------------------------------------------------------------------


class HeadKind(enum.Enum):
    """What the first line of a head is (it decides that line's grammar), and which
    framing rules apply (a request's are stricter)."""

    REQUEST = "request"
    RESPONSE = "response"
    REQUEST_TRAILERS = "request trailers"  # no first line of its own
    RESPONSE_TRAILERS = "response trailers"

    @property
    def request(self) -> bool:
        return self in (HeadKind.REQUEST, HeadKind.REQUEST_TRAILERS)

    @property
    def trailers(self) -> bool:
        return self in (HeadKind.REQUEST_TRAILERS, HeadKind.RESPONSE_TRAILERS)


@attrs.define(slots=True)
class _Framing:
    """llhttp's framing flags, as the header lines so far have set them. Trailers come
    after a chunked head: Transfer-Encoding and chunked are set."""

    content_length: bool = False
    transfer_encoding: bool = False
    chunked: bool = False

    @classmethod
    def start(cls, kind: HeadKind) -> _Framing:
        trailers = kind is HeadKind.REQUEST_TRAILERS or kind is HeadKind.RESPONSE_TRAILERS
        return cls(False, True, True) if trailers else cls()

    def add(self, name: bytes, value: bytes, request: bool) -> None:
        """Note a good header line (``value`` without its leading blanks)."""
        if name == b"content-length":
            self.content_length = True
        elif name == b"transfer-encoding" and value:  # an empty value is no coding
            self.transfer_encoding = True
            self.chunked = _transfer_coding(value, request)[0]

    @classmethod
    def before(cls, head: bytes | bytearray, kind: HeadKind) -> _Framing:
        """The flags the good lines of ``head`` (whole lines only) leave."""
        framing = cls.start(kind)
        for found in _FRAMING_LINE.finditer(head):
            framing.add(found.group(1).lower(), found.group(2), kind.request)
        return framing


def find_head(buffer: bytearray, checked: int, max_header_size: int, kind: HeadKind) -> int:
    """Where the head at the start of ``buffer`` ends (just past its blank line), or
    ``-1`` if it is not whole yet.

    ``checked`` is how much of the buffer an earlier call has already seen (0 at first):
    the faults of an unfinished head are looked for in the lines the new bytes touch, so
    a head dribbled byte by byte costs linear time. Raises :class:`ParseError` for a head
    over ``max_header_size`` and for a fault that no later byte can mend, as soon as its
    byte (or, where llhttp needs it to decide, the byte after) is there.
    """
    if kind is HeadKind.REQUEST and buffer[:4] == b"PRI ":
        preface = _preface_fault(bytes(buffer))
        if preface is not None:
            raise preface
        if _preface_pending(bytes(buffer)):
            _check_size(buffer, max_header_size)
            return -1
    end = buffer.find(b"\r\n\r\n", max(0, checked - 3))
    if end != -1:
        size = end + 4
        if size >= max_header_size and counted_head_size(buffer[:size]) >= max_header_size:
            raise _overflow(buffer)
        return size
    if buffer:
        # From the start of the line that was unfinished (or had just ended: its last
        # byte may decide) when ``checked`` bytes were seen.
        found = buffer.rfind(b"\r\n", 0, max(0, checked - 1))
        start = found + 2 if found != -1 else 0
        lines = buffer[start:].split(b"\r\n")
        last = len(lines) - 1
        index = buffer.count(b"\r\n", 0, start)  # the index of that line in the head
        offset = start
        for number, line in enumerate(lines):
            data = bytes(line)
            if number < last:
                data += b"\r\n" + lines[number + 1][:1]
            line_start = offset

            def framing(line_start: int = line_start) -> _Framing:
                return _Framing.before(buffer[:line_start], kind)

            fault = _line_fault(data, index + number, kind, framing)
            if fault is not None:
                raise fault
            offset += len(line) + 2
    _check_size(buffer, max_header_size)
    return -1


def _check_size(buffer: bytearray, max_header_size: int) -> None:
    if len(buffer) >= max_header_size and counted_head_size(buffer) >= max_header_size:
        raise _overflow(buffer)


def skip_empty_lines(buffer: bytearray) -> None:
    """Drop the CR and LF bytes before a message, as llhttp does (each on its own)."""
    size = 0
    while size < len(buffer) and buffer[size] in (_CR, _LF):
        size += 1
    if size:
        del buffer[:size]


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a request head framed by :func:`find_head` (it ends in CRLFCRLF).

    A fault is the first in the order of the bytes, as llhttp finds it, so the same bytes
    fail the same way however they were split.
    """
    lines = head[:-4].split(b"\r\n")
    kind = HeadKind.REQUEST
    if _DIRTY.search(head):
        raise _first_fault(lines, kind)
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is not None:
        method, target, protocol, version = match.groups()
        if method == b"PRI" and protocol == b"HTTP" and version in ACCEPTED_VERSIONS:
            # find_head never frames it: the rest of the preface decides at once.
            raise _error("HPE_PAUSED_H2_UPGRADE", "Pause on PRI/Upgrade", head)
        if (
            method not in _PROTOCOL_METHODS[protocol]
            or version not in ACCEPTED_VERSIONS
            or not (_CONNECT_URL if method == b"CONNECT" else _URL).fullmatch(target)
        ):
            raise _first_fault(lines, kind)
    else:
        # An HTTP/0.9-style line with no version: llhttp serves it as 0.9 (like 1.0).
        simple = _SIMPLE_REQUEST_LINE.fullmatch(lines[0])
        if simple is None:
            raise _first_fault(lines, kind)
        method, target = simple.groups()
        version = b"0.9"
        url = _CONNECT_URL if method == b"CONNECT" else _URL
        if method not in _METHODS or not url.fullmatch(target):
            raise _first_fault(lines, kind)
    fields = _read_fields(lines, kind)
    chunked = fields.chunked
    content_length = fields.content_length or 0
    body_fault = None
    if method == b"CONNECT":
        chunked, content_length = False, 0  # the bytes after the head are the tunnel's
    elif (
        fields.transfer_encoding
        and not chunked
        and not (fields.upgrade is not None and b"upgrade" in fields.connection)
    ):
        # A body llhttp cannot frame; an upgrade (which has no body then) goes ahead.
        body_fault = _error(
            "HPE_INVALID_TRANSFER_ENCODING", "Request has invalid `Transfer-Encoding`", head
        )
    return RequestHead(
        method,
        target,
        version,
        fields.raw_headers,
        missing_host=not fields.has_host and version == b"1.1",
        chunked=chunked,
        content_length=content_length,
        connection=fields.connection,
        expect=fields.expect,
        upgrade=fields.upgrade,
        body_fault=body_fault,
    )


def parse_response_head(head: bytes) -> ResponseHead:
    """Parse a response head framed by :func:`find_head`, as :func:`parse_request_head`
    does a request's. The reason phrase may hold any byte but CR and LF, as in llhttp."""
    lines = head[:-4].split(b"\r\n")
    kind = HeadKind.RESPONSE
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None or match.group(1) not in ACCEPTED_VERSIONS:
        raise _first_fault(lines, kind)
    if _DIRTY.search(head, len(lines[0])):
        raise _first_fault(lines, kind)
    version, status, reason = match.groups()
    fields = _read_fields(lines, kind)
    return ResponseHead(
        int(status),
        reason or b"",
        version,
        fields.raw_headers,
        content_length=fields.content_length,
        transfer_encoding=fields.transfer_encoding,
        chunked=fields.chunked,
    )


@attrs.define(slots=True)
class _Fields:
    """What the header lines of a head say, read in one pass."""

    raw_headers: list[tuple[bytes, bytes]]
    content_length: int | None = None
    transfer_encoding: bytes | None = None
    chunked: bool = False
    connection: list[bytes] = attrs.field(factory=list)
    upgrade: bytes | None = None
    expect: bytes | None = None
    has_host: bool = False


def _read_fields(lines: list[bytes], kind: HeadKind) -> _Fields:
    """The header lines after ``lines[0]`` (the request or status line, or empty for
    trailers) of a head whose bytes :data:`_DIRTY` found clean; raises the first fault
    of the head if a line is not one llhttp takes."""
    request = kind.request
    fields = _Fields([])
    raw_headers = fields.raw_headers
    framing = _Framing.start(kind)
    for line in lines[1:]:
        header = _HEADER_LINE.fullmatch(line)
        if header is None:
            raise _first_fault(lines, kind)
        name, value = header.groups()
        stripped = value.rstrip(b" \t")
        raw_headers.append((name, stripped))
        lower = name.lower()
        if lower == b"host":
            fields.has_host = True
        elif lower == b"content-length":
            length = _CONTENT_LENGTH.fullmatch(value)
            if (
                framing.content_length
                or framing.transfer_encoding
                or length is None
                or int(length.group(1)) >> 64
            ):
                raise _first_fault(lines, kind)
            fields.content_length = int(length.group(1))
            framing.content_length = True
        elif lower == b"transfer-encoding":
            if framing.content_length:
                raise _first_fault(lines, kind)
            if value:
                chunked, after_chunked = _transfer_coding(value, request)
                if request and (framing.chunked or after_chunked != -1):
                    raise _first_fault(lines, kind)
                framing.transfer_encoding = True
                framing.chunked = chunked
                joined = fields.transfer_encoding
                fields.transfer_encoding = stripped if joined is None else joined + b", " + stripped
        elif lower in (b"connection", b"proxy-connection"):
            fields.connection += _connection_tokens(value)
        elif lower == b"upgrade":
            if value and fields.upgrade is None:
                fields.upgrade = stripped
        elif lower == b"expect":  # Node joins repeated Expect lines, as most fields
            joined = fields.expect
            fields.expect = stripped if joined is None else joined + b", " + stripped
    fields.chunked = framing.chunked
    return fields


def _transfer_coding(value: bytes, request: bool) -> tuple[bool, int]:
    """llhttp's reading of a ``Transfer-Encoding`` value (its leading blanks gone, no
    control byte): whether ``chunked`` is the last coding (spaces may follow it, a tab
    may not), and, in a request, where a coding follows ``chunked`` (-1: nowhere)."""
    low = value.lower()
    at, size = 0, len(low)
    while True:
        if low.startswith(b"chunked", at):
            end = at + 7
            while end < size and low[end] == _SP:
                end += 1
            if end == size:
                return True, -1
            if request and low[end] == _COMMA:
                return False, end
            at = end
        # Any other coding: up to the next comma (a byte a token may not hold ends the
        # codings, and the value is then an ordinary one).
        comma = low.find(b",", at)
        if comma == -1:
            return False, -1
        at = comma + 1
        while at < size and low[at] in (_SP, _HT):
            at += 1


def _connection_tokens(value: bytes) -> list[bytes]:
    """The tokens llhttp 9.3.1 acts on in a ``Connection`` value (its leading blanks
    gone): ``close``, ``keep-alive`` or ``upgrade`` followed by spaces and then a comma or
    the end. Anything else, a tab after the token included, makes it an unknown one."""
    low = value.lower()
    if low in _CONNECTION_TOKENS:
        return [low]
    found: list[bytes] = []
    at, size = 0, len(low)
    while at < size:
        while at < size and low[at] in (_SP, _HT):
            at += 1
        token = next((token for token in _CONNECTION_TOKENS if low.startswith(token, at)), None)
        if token is not None:
            end = at + len(token)
            while end < size and low[end] == _SP:
                end += 1
            if end == size:
                found.append(token)
                break
            if low[end] == _COMMA:
                found.append(token)
                at = end + 1
                continue
            at = end
        comma = low.find(b",", at)
        if comma == -1:
            break
        at = comma + 1
    return found


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


# --- the scanners: llhttp's grammar, a part at a time ---------------------------------
#
# Each takes the bytes of one line of a head: the line alone while it is unfinished (it
# may end in the CR of its CRLF), else the line, its CRLF and the first byte of what
# follows, if that is there yet. Each returns the fault at the first bad byte, or None if
# the line is good (or good so far).


def _line_fault(
    data: bytes, index: int, kind: HeadKind, framing: Callable[[], _Framing]
) -> ParseError | None:
    """The fault of line ``index`` of a head; ``framing`` gives the flags the lines
    before it leave (asked only for framing header lines)."""
    if index == 0:
        if kind is HeadKind.REQUEST:
            fault = _request_line_fault(data)
            return fault if isinstance(fault, ParseError) else None
        if kind is HeadKind.RESPONSE:
            return _status_line_fault(data)
        return None  # the empty line before trailers
    first = index == 1 and not kind.trailers
    return _header_line_fault(data, first, kind, framing)


def _first_fault(lines: list[bytes], kind: HeadKind) -> ParseError:
    """The first fault of a whole head that did not parse."""
    framing = _Framing.start(kind)
    last = len(lines) - 1
    for index, line in enumerate(lines):
        after = lines[index + 1][:1] if index < last else b"\r"  # the blank line follows
        fault = _line_fault(line + b"\r\n" + after, index, kind, lambda: framing)
        if fault is not None:
            return fault
        header = _HEADER_LINE.fullmatch(line) if index else None
        if header is not None:
            framing.add(header.group(1).lower(), header.group(2), kind.request)
    raise AssertionError("no fault in a head that did not parse")  # pragma: no cover


def _request_line_fault(data: bytes) -> ParseError | int | None:
    """llhttp's request line: the method (one of llhttp's, then one space), spaces, the
    URL, then the end (HTTP/0.9) or spaces, a protocol that allows the method, ``/``, a
    version llhttp takes and CRLF. For a PRI line whose version is read, where the
    version ends (what follows must be the rest of the HTTP/2 preface)."""
    size = len(data)
    at = 0
    while at < size and data[: at + 1] in _METHOD_PREFIXES:
        at += 1
    if at == size:
        return None
    method = data[:at]
    if method not in _METHODS or data[at] != _SP:
        return _error("HPE_INVALID_METHOD", "Invalid method encountered", data)
    at += 1
    while at < size and data[at] == _SP:
        at += 1
    if at == size:
        return None
    url = _url_end(data, at, connect=method == b"CONNECT")
    if not isinstance(url, int):
        return url
    at = url
    if at == size:
        return None
    if data[at] == _CR:  # HTTP/0.9: the line ends after the URL
        if at + 1 < size and data[at + 1] != _LF:
            return _error("HPE_INVALID_URL", "Expected CRLF", data)
        return _after_url_fault(data, at + 2)
    if data[at] == _LF:
        # llhttp ends an HTTP/0.9 line at a bare LF too. We refuse such a line (see the
        # docs' differences), once llhttp's own faults in what follows are ruled out.
        rest = data[at + 1 :]
        fault = _after_url_fault(data, at + 1) or _header_line_fault(
            rest, True, HeadKind.REQUEST, _Framing
        )
        if fault is None and b"\r\n" in rest:
            fault = _error("HPE_INVALID_URL", "Expected CRLF", data)
        return fault
    if data[at] != _SP:
        return _error("HPE_INVALID_URL", "Invalid characters in url", data)
    fault = _after_url_fault(data, at + 1)
    if fault is not None:
        return fault
    while at < size and data[at] == _SP:
        at += 1
    rest = data[at : at + 4]
    protocol = next((name for name in _PROTOCOLS if rest.startswith(name)), None)
    if protocol is None:
        if at + len(rest) == size and any(name.startswith(rest) for name in _PROTOCOLS):
            return None
        return _error("HPE_INVALID_CONSTANT", "Expected HTTP/, RTSP/ or ICE/", data)
    if method not in _PROTOCOL_METHODS[protocol]:
        return _error("HPE_INVALID_CONSTANT", f"Invalid method for {protocol.decode()}", data)
    at += len(protocol)
    if at == size:
        return None
    if data[at] != ord("/"):
        return _error("HPE_INVALID_CONSTANT", "Expected HTTP/, RTSP/ or ICE/", data)
    version = _version_fault(data, at + 1)
    if not isinstance(version, int):
        return version
    at = version
    if method == b"PRI":
        return at
    if at == size:
        return None
    if data[at] == _CR:
        if at + 1 == size or data[at + 1] == _LF:
            return None
        return _error("HPE_STRICT", "Expected CRLF after version", data)
    return _error("HPE_INVALID_VERSION", "Expected CRLF after version", data)


def _url_end(data: bytes, at: int, *, connect: bool) -> ParseError | int:
    """Where the URL that starts at ``at`` ends (at a byte that is no URL's), or its
    fault (llhttp's url.ts; every fault of a URL is ``HPE_INVALID_URL``)."""
    size = len(data)
    if connect:
        at = _HOST_RUN.match(data, at).end()  # type: ignore[union-attr]
    elif data[at] in b"/*":
        return _PATH_RUN.match(data, at).end()  # type: ignore[union-attr]
    elif data[at : at + 1].isalpha():
        at = _ALPHA_RUN.match(data, at).end()  # type: ignore[union-attr]
        delimiter = data[at : at + 3]
        if not b"://".startswith(delimiter):
            return _error("HPE_INVALID_URL", "Unexpected char in url schema", data)
        if len(delimiter) < 3:
            return size
        at = _HOST_RUN.match(data, at + 3).end()  # type: ignore[union-attr]
    else:
        return _error("HPE_INVALID_URL", "Unexpected start char in url", data)
    if at < size and data[at] in b"/?":
        return _PATH_RUN.match(data, at).end()  # type: ignore[union-attr]
    if at < size and data[at] not in (_SP, _CR):
        return _error("HPE_INVALID_URL", "Unexpected char in url server", data)
    return at


def _after_url_fault(data: bytes, at: int) -> ParseError | None:
    """llhttp still refuses a tab or a form feed as the byte after a URL's end (its
    SP, CRLF or LF), as an ``HPE_INVALID_URL``."""
    if data[at : at + 1] in (b"\t", b"\f"):
        return _error("HPE_INVALID_URL", "Invalid characters in url", data)
    return None


def _version_fault(data: bytes, at: int) -> ParseError | int:
    """Where the version (``D.D``, one llhttp takes) that starts at ``at`` ends (the
    end of ``data`` if it is unfinished), or its fault."""
    version = data[at : at + 3]
    good = bool(re.fullmatch(rb"[0-9](?:\.(?:[0-9])?)?", version))
    if version and not good:
        return _error("HPE_INVALID_VERSION", "Invalid HTTP version", data)
    if len(version) < 3:
        return len(data)
    if version not in ACCEPTED_VERSIONS:
        return _error("HPE_INVALID_VERSION", "Invalid HTTP version", data)
    return at + 3


def _preface_fault(data: bytes) -> ParseError | None:
    """For bytes that start with a PRI request line: once its version is read, the rest
    of the HTTP/2 preface decides (``HPE_PAUSED_H2_UPGRADE``, which Node answers as a
    fault) or any other byte does (``HPE_INVALID_VERSION``). A fault of the line itself
    comes first."""
    end = _request_line_fault(data)
    if not isinstance(end, int):
        return end
    rest = data[end:]
    if rest.startswith(_PREFACE_REST):
        return _error("HPE_PAUSED_H2_UPGRADE", "Pause on PRI/Upgrade", data)
    if _PREFACE_REST.startswith(rest):
        return None
    return _error("HPE_INVALID_VERSION", "Expected HTTP/2 Connection Preface", data)


def _preface_pending(data: bytes) -> bool:
    """Whether ``data`` is a PRI request line waiting for the rest of the preface (or for
    the rest of the line, whose end decides): then no head is framed."""
    return isinstance(_request_line_fault(data), int) or data.find(b"\r\n") == -1


def _status_line_fault(data: bytes) -> ParseError | None:
    """llhttp's status line: a protocol (``HTTP``, ``RTSP``, ``ICE``), ``/``, a version
    llhttp takes, one space, three digits, then a space and any reason phrase (no CR or
    LF) or the end, then CRLF."""
    size = len(data)
    protocol = next((name for name in _PROTOCOLS if data.startswith(name)), None)
    if protocol is None:
        if size < 4 and any(name.startswith(data) for name in _PROTOCOLS):
            return None
        return _error("HPE_INVALID_CONSTANT", "Expected HTTP/, RTSP/ or ICE/", data)
    at = len(protocol)
    if at == size:
        return None
    if data[at] != ord("/"):
        return _error("HPE_INVALID_CONSTANT", "Expected HTTP/, RTSP/ or ICE/", data)
    version = _version_fault(data, at + 1)
    if not isinstance(version, int):
        return version
    at = version
    if at == size:
        return None
    if data[at] != _SP:
        return _error("HPE_INVALID_VERSION", "Expected space after version", data)
    digits = _DIGIT_RUN.match(data, at + 1).end() - at - 1  # type: ignore[union-attr]
    at += 1 + min(digits, 3)
    if at == size:
        return None
    if digits < 3 or data[at] not in (_SP, _CR):
        return _error("HPE_INVALID_STATUS", "Invalid status code", data)
    if data[at] == _SP:
        ends = [found for found in (data.find(b"\r", at), data.find(b"\n", at)) if found != -1]
        if not ends:
            return None
        at = min(ends)
        if data[at] == _LF:
            return _error("HPE_CR_EXPECTED", "Missing expected CR after response line", data)
    if at + 1 < size and data[at + 1] != _LF:
        # llhttp would take a second CR as the end of the line, which a head framed by
        # CRLFs cannot show; it is refused (see the docs' differences).
        return _error("HPE_STRICT", "Expected LF after CR", data)
    return None


def _header_line_fault(
    data: bytes, first: bool, kind: HeadKind, framing: Callable[[], _Framing]
) -> ParseError | None:
    """llhttp's header line: a token, ``:``, blanks, a value by the name's rules, CRLF;
    no blank before the first line (``HPE_UNEXPECTED_SPACE``) or any other (obs-fold is
    refused), and the framing rules at their bytes (the colon, the value's first byte)."""
    size = len(data)
    if not size:
        return None
    byte = data[0]
    if byte == _SP and first:
        return _error("HPE_UNEXPECTED_SPACE", "Unexpected space after start line", data)
    if byte in (_SP, _HT):
        return _error("HPE_INVALID_HEADER_TOKEN", "Unexpected whitespace after header value", data)
    if byte == _CR:  # the blank line
        if size == 1 or data[1] == _LF:
            return None
        return _error("HPE_STRICT", "Expected LF after headers", data)
    at = _TOKEN_RUN.match(data).end()  # type: ignore[union-attr]
    if at == size:
        return None
    if not at or data[at] != ord(":"):
        return _error("HPE_INVALID_HEADER_TOKEN", "Invalid header token", data)
    name = data[:at].lower()
    length = name == b"content-length"
    coding = name == b"transfer-encoding"
    flags = framing() if length or coding else None
    if coding and flags is not None and flags.content_length:
        return _error(
            "HPE_INVALID_TRANSFER_ENCODING",
            "Transfer-Encoding can't be present with Content-Length",
            data,
        )
    if length and flags is not None and flags.transfer_encoding:
        return _error(
            "HPE_INVALID_CONTENT_LENGTH",
            "Content-Length can't be present with Transfer-Encoding",
            data,
        )
    at += 1
    while at < size and data[at] in (_SP, _HT):
        at += 1
    if at == size:
        return None
    byte = data[at]
    if byte == _CR:  # an empty value, or a CR on its own
        if at + 1 == size:
            return None
        if data[at + 1] != _LF:
            return _error("HPE_STRICT", "Expected LF after CR", data)
        if length and at + 2 < size and data[at + 2] not in (_SP, _HT):
            return _error("HPE_INVALID_CONTENT_LENGTH", "Empty Content-Length", data)
        return None
    if byte == _LF:
        return _error("HPE_INVALID_HEADER_TOKEN", "Invalid header value char", data)
    if length:
        if flags is not None and flags.content_length:
            return _error("HPE_UNEXPECTED_CONTENT_LENGTH", "Duplicate Content-Length", data)
        end = _DIGIT_RUN.match(data, at).end()  # type: ignore[union-attr]
        if end > at and int(data[at:end]) >> 64:
            return _error("HPE_INVALID_CONTENT_LENGTH", "Content-Length overflow", data)
        while end < size and data[end] == _SP:
            end += 1
        if end == size:
            return None
        if end == at or data[end] not in (_CR, _LF):
            return _error("HPE_INVALID_CONTENT_LENGTH", "Invalid character in Content-Length", data)
        at = end
    else:
        if coding and kind.request and flags is not None and flags.chunked:
            return _error(
                "HPE_INVALID_TRANSFER_ENCODING", "Invalid `Transfer-Encoding` header value", data
            )
        bad = _NOT_VALUE.search(data, at)
        stop = size if bad is None else bad.start()
        if coding and kind.request and _transfer_coding(data[at:stop], True)[1] != -1:
            return _error(
                "HPE_INVALID_TRANSFER_ENCODING", "Invalid `Transfer-Encoding` header value", data
            )
        if bad is None:
            return None
        at = stop
        if data[at] not in (_CR, _LF):
            return _error("HPE_INVALID_HEADER_TOKEN", "Invalid header value char", data)
    if data[at] == _LF:
        return _error("HPE_CR_EXPECTED", "Missing expected CR after header value", data)
    if at + 1 < size and data[at + 1] != _LF:
        return _error("HPE_LF_EXPECTED", "Missing expected LF after header value", data)
    return None


def _error(code: str, reason: str, raw: bytes | bytearray) -> ParseError:
    return ParseError(reason, code=code, raw_packet=bytes(raw[:2048]))


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
    trailer rules: a request's may hold no ``Transfer-Encoding``, and neither may hold a
    ``Content-Length`` (llhttp's flags of the chunked head still apply).
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
        trailers = _read_fields(lines, self._kind).raw_headers
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
