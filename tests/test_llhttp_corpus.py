"""llhttp's own test corpus, run through our server and our client.

The markdown files in ``tests/data/llhttp`` are llhttp's ``test/request/*.md`` and
``test/response/*.md`` (see the LICENSE there for where they come from). Each section
holds an ``http`` block, the bytes, and a ``log`` block, the callbacks llhttp made for
them. The files are read at collection time, as llhttp's ``test/md-test.ts`` reads them
(:func:`parse_markdown`, :func:`decode_input`), and every case of llhttp's strict
``request`` and ``response`` types becomes a test; the lenient-flag types are not
collected (Node does not set those flags by default), nor is the one request case that
asks llhttp to skip a request body (Node never does).

A request case sends its bytes to our server over a memory stream and records what the
handler saw (or the ``upgrade``/``connect`` listener), what ``clientError`` reported and
what the server answered; a response case plays the bytes to our client as the answer to
one request. Both are reduced to an outcome (:class:`ServerOutcome`,
:class:`ClientOutcome`), and the outcome llhttp's log implies is worked out the same way
(:func:`expected_server_outcome`, :func:`expected_client_outcome`), as Node's http layer
on llhttp would show it: header values lose trailing whitespace; a request handler runs
once the head is parsed, even if the body then fails; an error ends the connection
without a response (our ``clientError`` listener answers nothing). Where llhttp just
stops, waiting for more bytes, Node keeps the connection open until ``headersTimeout``
(the head is unfinished) or ``requestTimeout`` (the body is) and then reports
``ERR_HTTP_REQUEST_TIMEOUT``; the autojump clock lets these cases run at once, and says
which timeout fired. An unfinished response is simply still being read.

``KNOWN_DIFFERENCES`` lists the cases where we do not do what llhttp's log says, each
with its reason; a listed case must still differ, so a fix shows up as a failure until
its entry is removed. The corpus is that of llhttp 9.3.1, the llhttp inside Node 20;
``NODE_20_DIFFERS`` notes any case where Node's http layer on it does not show what the
log implies (checked with ``tests/node/llhttp_oracle.js``; run
``python -m tests.test_llhttp_corpus`` for its input). Node's behaviour is what we follow.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import trio_nodehttp as http

from .conftest import RawClient, memory_agent

CORPUS = Path(__file__).parent / "data" / "llhttp"

# llhttp's numeric error codes (src/llhttp/constants.ts), by Node's names.
HPE_NAMES = {
    1: "HPE_INTERNAL",
    2: "HPE_STRICT",
    3: "HPE_LF_EXPECTED",
    4: "HPE_UNEXPECTED_CONTENT_LENGTH",
    5: "HPE_CLOSED_CONNECTION",
    6: "HPE_INVALID_METHOD",
    7: "HPE_INVALID_URL",
    8: "HPE_INVALID_CONSTANT",
    9: "HPE_INVALID_VERSION",
    10: "HPE_INVALID_HEADER_TOKEN",
    11: "HPE_INVALID_CONTENT_LENGTH",
    12: "HPE_INVALID_CHUNK_SIZE",
    13: "HPE_INVALID_STATUS",
    14: "HPE_INVALID_EOF_STATE",
    15: "HPE_INVALID_TRANSFER_ENCODING",
    21: "HPE_PAUSED",
    22: "HPE_PAUSED_UPGRADE",
    23: "HPE_PAUSED_H2_UPGRADE",
    25: "HPE_CR_EXPECTED",
    30: "HPE_UNEXPECTED_SPACE",
}
# llhttp_finish()'s verdict (the parser's "finish" field) when the input is followed by
# the end of the stream: safe, safe because the end ends the message, unsafe.
FINISH_SAFE_WITH_CB, FINISH_UNSAFE = 1, 2
# llhttp's flags (of "headers complete") that say how the connection goes on.
F_CONNECTION_KEEP_ALIVE, F_CONNECTION_CLOSE = 1, 2

TIMEOUT = "ERR_HTTP_REQUEST_TIMEOUT"
# How long (virtual time, under the autojump clock) a case may take at most; past every
# timeout our server has by default.
CASE_DEADLINE = 1000.0
# How long a reader waits for more bytes of an unfinished message. Under the autojump
# clock this ends as soon as nothing else can happen: a wait for quiescence.
QUIET = 30.0


# --- the corpus ------------------------------------------------------------------------

_FENCE = re.compile(r"```(\S*)\s*")
_ATX = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*")
_SETEXT = re.compile(r"=+\s*|-+\s*")
_META = re.compile(r"<!--\s+meta=(.*)\s+-->")


@attrs.define
class Section:
    """A heading of a corpus file and the code blocks under it."""

    name: str
    blocks: dict[str, list[str]] = attrs.field(factory=dict)
    meta: dict[str, dict[str, Any]] = attrs.field(factory=dict)


def parse_markdown(text: str) -> list[Section]:
    """The sections of a corpus file that hold code blocks, as llhttp's reader (mdgator
    on markdown-it) finds them: a heading (``#`` or underlined), then fenced blocks by
    language, each taking the ``<!-- meta={...} -->`` comment written before it."""
    lines = text.split("\n")
    sections: list[Section] = []
    current: Section | None = None
    meta: dict[str, Any] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.fullmatch(line)
        if fence is not None:
            end = lines.index("```", index + 1)
            content = "".join(f"{body}\n" for body in lines[index + 1 : end])
            if current is not None:
                current.blocks.setdefault(fence.group(1), []).append(content)
                if meta is not None:
                    current.meta[fence.group(1)] = meta
                    meta = None
            index = end + 1
            continue
        atx = _ATX.fullmatch(line)
        underlined = (
            line.strip() != ""
            and index + 1 < len(lines)
            and _SETEXT.fullmatch(lines[index + 1]) is not None
        )
        if atx is not None or underlined:
            current = Section(atx.group(2) if atx is not None else line.strip())
            sections.append(current)
            meta = None
            index += 1 if atx is not None else 2
            continue
        found = _META.search(line)
        if found is not None:
            meta = json.loads(found.group(1))
        index += 1
    return [section for section in sections if section.blocks]


def decode_input(block: str) -> bytes:
    """The bytes of an ``http`` block, made exactly as llhttp's test/md-test.ts makes
    them: the last newline goes, a backslash before a newline joins two lines, every
    newline becomes CRLF, then ``\\r \\n \\t \\f \\xHH \\OOO`` escapes are expanded. The
    parser gets the string as a UTF-8 command-line argument, so it ends at a NUL."""
    text = block[:-1] if block.endswith("\n") else block
    text = re.sub(r"\\(\r\n|\r|\n)", "", text)
    text = re.sub(r"\r\n|\r|\n", "\r\n", text)
    text = text.replace("\\r", "\r").replace("\\n", "\n")
    text = text.replace("\\t", "\t").replace("\\f", "\f")
    text = re.sub(r"\\x([0-9a-fA-F]+)", lambda m: chr(int(m.group(1), 16) & 0xFFFF), text)
    text = re.sub(r"\\([0-7]{1,3})", lambda m: chr(int(m.group(1), 8)), text)
    assert "${" not in text, "inline JavaScript in a corpus case is not supported"
    return text.encode("utf-8").split(b"\0", 1)[0]


@attrs.define
class Message:
    """One message as llhttp's callbacks describe it (spans joined)."""

    method: bytes = b""
    url: bytes = b""
    status: int | None = None
    reason: bytes = b""
    version: str = ""
    headers: list[tuple[bytes, bytes]] = attrs.field(factory=list)
    trailers: list[tuple[bytes, bytes]] = attrs.field(factory=list)
    body: bytes = b""
    flags: int = 0
    headers_complete: bool = False
    complete: bool = False

    @property
    def keep_alive(self) -> bool:
        """llhttp_should_keep_alive() for a request: HTTP/1.1 unless ``Connection:
        close``, older versions only with ``Connection: keep-alive``."""
        major, _, minor = self.version.partition(".")
        if int(major) > 0 and int(minor) > 0:
            return not self.flags & F_CONNECTION_CLOSE
        return bool(self.flags & F_CONNECTION_KEEP_ALIVE)


@attrs.define
class Log:
    """What llhttp made of a case's bytes: its messages, then how the input ended."""

    messages: list[Message] = attrs.field(factory=list)
    #: Every span, as (offset, bytes): they must be the input's bytes at that offset.
    spans: list[tuple[int, bytes]] = attrs.field(factory=list)
    #: HPE_* name of the error that stopped the parser (pauses on upgrade included).
    error: str | None = None
    #: Where that error is; for a pause on upgrade, where the other protocol starts.
    error_offset: int = 0
    #: llhttp_finish()'s verdict, for the cases whose input is followed by the end.
    finish: int | None = None


_LOG_LINE = re.compile(r"off=(\d+|NULL) (.*)")
_SPAN = re.compile(r'len=(\d+) span\[([a-z_.]+)\]=(?:"(.*)"|(cr|lf))')
_HEADERS_COMPLETE = re.compile(
    r"headers complete (?:method=\d+|status=(\d+)) v=(\d+)/(\d+) flags=([0-9a-f]+) "
    r"content_length=\d+"
)
_ERROR = re.compile(r'error code=(\d+) reason="(.*)"')


def parse_log(log: str) -> Log:
    """Read llhttp's callback log (``\\t`` and ``\\f`` expanded, as md-test.ts does)."""
    log = log.replace("\\t", "\t").replace("\\f", "\f")
    result = Log()
    message = Message()
    field = value = b""
    in_value = False
    for line in log.split("\n"):  # not splitlines(): a value may hold a form feed
        if not line:
            continue
        match = _LOG_LINE.fullmatch(line)
        assert match is not None, f"unknown log line {line!r}"
        offset, event = match.groups()
        span = _SPAN.fullmatch(event)
        if event == "message begin":
            message = Message()
            result.messages.append(message)
            field = value = b""
            in_value = False
        elif span is not None:
            length, name, text, control = span.groups()
            piece = text.encode("utf-8") if control is None else {"cr": b"\r", "lf": b"\n"}[control]
            assert len(piece) == int(length), line
            result.spans.append((int(offset), piece))
            if name == "method":
                message.method += piece
            elif name == "url":
                message.url += piece
            elif name == "status":
                message.reason += piece
            elif name == "header_field":
                if in_value:
                    field = value = b""
                    in_value = False
                field += piece
            elif name == "header_value":
                in_value = True
                value += piece
            elif name == "body":
                message.body += piece
        elif event == "header_field complete":
            in_value = True  # a value without any span is empty
        elif event == "header_value complete":
            (message.trailers if message.headers_complete else message.headers).append(
                (field, value)
            )
            field = value = b""
            in_value = False
        elif (complete := _HEADERS_COMPLETE.fullmatch(event)) is not None:
            status, major, minor, flags = complete.groups()
            message.headers_complete = True
            message.flags = int(flags, 16)
            message.status = None if status is None else int(status)
            message.version = f"{major}.{minor}"
        elif event == "message complete":
            message.complete = True
        elif (error := _ERROR.fullmatch(event)) is not None:
            result.error = HPE_NAMES[int(error.group(1))]
            result.error_offset = int(offset)
        elif event.startswith("finish="):
            result.finish = int(event.removeprefix("finish="))
    return result


@attrs.frozen
class Case:
    id: str
    kind: str  # "request" or "response"
    data: bytes
    log: Log = attrs.field(eq=False)
    #: The peer ends its side after the bytes (llhttp's "-finish" types).
    eof: bool = False
    #: The method of the request a response answers (llhttp's skipBody: HEAD).
    method: str = "GET"


# llhttp's strict parser types: the kind of message, and whether the input is followed
# by the end of the stream (llhttp_finish()).
STRICT_TYPES = {
    "request": ("request", False),
    "response": ("response", False),
    "request-finish": ("request", True),
    "response-finish": ("response", True),
}


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CORPUS.glob("*/*.md")):
        names: Counter[str] = Counter()
        for section in parse_markdown(path.read_text(encoding="utf-8")):
            name = f"{path.parent.name}/{path.name}: {section.name}"
            names[name] += 1
            if names[name] > 1:
                name += f" ({names[name]})"
            meta = section.meta.get("http")
            if meta is None or meta.get("type") not in STRICT_TYPES:
                continue  # a lenient flag (or no http block)
            kind, eof = STRICT_TYPES[meta["type"]]
            if kind == "request" and meta.get("skipBody"):
                continue  # Node never skips a request body
            (block,) = section.blocks["http"]
            (log,) = section.blocks["log"]
            method = "HEAD" if meta.get("skipBody") else "GET"
            cases.append(Case(name, kind, decode_input(block), parse_log(log), eof, method))
    return cases


CASES = load_cases()
REQUEST_CASES = [case for case in CASES if case.kind == "request"]
RESPONSE_CASES = [case for case in CASES if case.kind == "response"]
CASE_IDS = {case.id for case in CASES}

Headers = tuple[tuple[bytes, bytes], ...]


def _header_pairs(pairs: list[tuple[bytes, bytes]]) -> Headers:
    # Node strips trailing whitespace from values (llhttp's spans keep it).
    return tuple((name, value.rstrip(b" \t")) for name, value in pairs)


def _latin1_pairs(pairs: list[tuple[str, str]]) -> Headers:
    return tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs)


# --- the server side -------------------------------------------------------------------


@attrs.frozen
class Call:
    """A request as a listener saw it."""

    event: str  # "request", "upgrade" or "connect"
    method: bytes
    url: bytes
    version: str
    headers: Headers
    body: bytes | None  # None: the body never ended
    trailers: Headers = ()
    tunnel: bytes | None = None  # upgrade, connect: the bytes of the other protocol


@attrs.frozen
class ServerOutcome:
    calls: tuple[Call, ...]
    #: What "clientError" got: HPE_* codes, or the timeout and which one it was.
    errors: tuple[str, ...]
    #: Each response we wrote: its status and its Connection header.
    responses: tuple[tuple[int, bytes], ...]


def expected_server_outcome(case: Case) -> ServerOutcome:
    log = case.log
    calls = []
    answered = []
    for index, message in enumerate(log.messages):
        if not message.headers_complete:
            continue
        answered.append(message)
        last = index == len(log.messages) - 1
        event = "request"
        if message.method == b"CONNECT":
            event = "connect"
        elif last and log.error == "HPE_PAUSED_UPGRADE":
            event = "upgrade"
        calls.append(
            Call(
                event,
                message.method,
                message.url,
                message.version,
                _header_pairs(message.headers),
                message.body if message.complete else None,
                _header_pairs(message.trailers),
                case.data[log.error_offset :] if event != "request" else None,
            )
        )
    errors: tuple[str, ...] = ()
    if log.error is not None and log.error != "HPE_PAUSED_UPGRADE":
        errors = (log.error,)
    elif case.eof and log.finish == FINISH_UNSAFE:
        errors = ("HPE_INVALID_EOF_STATE",)
    elif log.error is None and log.messages and not log.messages[-1].complete:
        # llhttp waits for the rest; Node, until one of its timeouts.
        stage = "requestTimeout" if log.messages[-1].headers_complete else "headersTimeout"
        errors = (f"{TIMEOUT} ({stage})",)
    responses = tuple(
        (200, b"keep-alive" if message.keep_alive else b"close")
        for message, call in zip(answered, calls, strict=True)
        if call.event == "request" and call.body is not None
    )
    return ServerOutcome(tuple(calls), errors, responses)


@attrs.define
class _Seen:
    event: str
    req: http.IncomingMessage
    body: bytes | None = None
    tunnel: bytes | None = None

    def call(self) -> Call:
        req = self.req
        assert req.method is not None and req.url is not None
        return Call(
            self.event,
            req.method.encode("latin-1"),
            req.url.encode("latin-1"),
            req.http_version,
            _latin1_pairs(list(req.raw_headers)),
            self.body,
            _latin1_pairs(list(req.raw_trailers)) if self.body is not None else (),
            self.tunnel,
        )


def _responses(answer: bytes) -> tuple[tuple[int, bytes], ...]:
    """The status and Connection header of each response in ``answer`` (the responses
    our handler writes have no body)."""
    found = []
    for head in re.findall(rb"HTTP/1\.1 [^\r\n]*(?:\r\n[^\r\n]+)*\r\n\r\n", answer):
        lines = head.split(b"\r\n")
        connection = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"connection":
                connection = value.strip()
        found.append((int(lines[0].split(b" ")[1]), connection))
    return tuple(found)


async def _drain(stream: trio.abc.Stream, data: bytes) -> bytes:
    """``data`` and whatever else ``stream`` brings until it ends or goes quiet."""
    with trio.move_on_after(QUIET):
        while chunk := await stream.receive_some():
            data += chunk
    return data


async def serve(case: Case) -> ServerOutcome:
    """Send the case's bytes to our server and note what it did with them."""
    seen: list[_Seen] = []
    errors: list[str] = []
    server = http.create_server(require_host_header=False)
    start = trio.current_time()

    async def on_request(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        record = _Seen("request", req)
        seen.append(record)
        record.body = await req.read()
        await res.end()

    async def on_tunnel(
        event: str, req: http.IncomingMessage, stream: trio.abc.Stream, head: bytes
    ) -> None:
        record = _Seen(event, req)
        seen.append(record)
        record.body = await req.read()
        record.tunnel = await _drain(stream, head)

    def on_client_error(error: http.HTTPError, stream: trio.abc.Stream) -> None:
        code = str(error.code)
        if code == TIMEOUT:
            elapsed = trio.current_time() - start
            for name, limit in (
                ("headersTimeout", server.headers_timeout),
                ("requestTimeout", server.request_timeout),
            ):
                if abs(elapsed - limit) < 1:
                    code = f"{code} ({name})"
                    break
            else:
                code = f"{code} (after {elapsed:.1f} s)"
        errors.append(code)

    server.on("request", on_request)
    server.on("upgrade", functools.partial(on_tunnel, "upgrade"))
    server.on("connect", functools.partial(on_tunnel, "connect"))
    server.on("clientError", on_client_error)
    client_side, server_side = trio.testing.memory_stream_pair()
    client = RawClient(client_side)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        with trio.fail_after(CASE_DEADLINE):
            await client.send(case.data)
            if case.eof:
                await client_side.send_eof()
            answer = await client.read_until_closed()
        nursery.cancel_scope.cancel()
    return ServerOutcome(tuple(record.call() for record in seen), tuple(errors), _responses(answer))


# --- the client side -------------------------------------------------------------------


@attrs.frozen
class ClientOutcome:
    #: The 1xx responses before the final one (101 aside): status, reason, headers.
    informational: tuple[tuple[int, bytes, Headers], ...]
    status: int | None  # None: no final response (yet)
    reason: bytes = b""
    version: str = ""
    headers: Headers = ()
    body: bytes = b""
    complete: bool = False
    #: The error code, if reading the response failed.
    error: str | None = None
    #: After a 101: the bytes of the other protocol.
    tunnel: bytes | None = None


def expected_client_outcome(case: Case) -> ClientOutcome:
    log = case.log
    informational = []
    for index, message in enumerate(log.messages):
        if not message.headers_complete:
            break
        assert message.status is not None
        if 100 <= message.status < 200 and message.status != 101:
            informational.append((message.status, message.reason, _header_pairs(message.headers)))
            continue
        last = index == len(log.messages) - 1
        error = log.error if log.error != "HPE_PAUSED_UPGRADE" else None
        complete = message.complete
        if not last:
            error = None  # later messages are not this request's
        elif log.error is None and case.eof and not complete:
            if log.finish == FINISH_SAFE_WITH_CB:
                complete = True  # the end of the stream ends the body
            else:
                error = "ECONNRESET"  # "aborted": the body was cut short
        tunnel = None
        if log.error == "HPE_PAUSED_UPGRADE" and last:
            tunnel = case.data[log.error_offset :]
        return ClientOutcome(
            tuple(informational),
            message.status,
            message.reason,
            message.version,
            _header_pairs(message.headers),
            message.body,
            complete,
            error,
            tunnel,
        )
    error = log.error
    if error is None and case.eof:
        error = "ECONNRESET"  # "socket hang up"
    return ClientOutcome(tuple(informational), None, error=error)


async def fetch(case: Case) -> ClientOutcome:
    """Make one request to a peer that answers with the case's bytes; note what our
    client made of them."""

    async def peer(stream: trio.abc.Stream) -> None:
        await RawClient(stream).read_head_bytes()
        await stream.send_all(case.data)
        if case.eof:
            assert isinstance(stream, trio.abc.HalfCloseableStream)
            await stream.send_eof()
        await trio.sleep_forever()

    informational: list[tuple[int, bytes, Headers]] = []
    upgraded: list[tuple[trio.abc.Stream, bytes]] = []

    def on_information(message: http.IncomingMessage) -> None:
        assert message.status_code is not None and message.status_message is not None
        informational.append(
            (
                message.status_code,
                message.status_message.encode("latin-1"),
                _latin1_pairs(list(message.raw_headers)),
            )
        )

    def on_upgrade(res: http.IncomingMessage, stream: trio.abc.Stream, head: bytes) -> None:
        upgraded.append((stream, head))

    res: http.IncomingMessage | None = None
    body = b""
    tunnel: bytes | None = None
    error: str | None = None
    async with memory_agent(peer, keep_alive=False) as agent:
        req = http.request("http://mem/", method=case.method, agent=agent)
        req.on("information", on_information)
        req.on("upgrade", on_upgrade)
        with trio.fail_after(CASE_DEADLINE):
            try:
                with trio.move_on_after(QUIET):
                    res = await req.end()
                if upgraded:
                    # Our upgraded socket gives the head's bytes again, first.
                    stream, head = upgraded[0]
                    tunnel = await _drain(stream, b"")
                    assert tunnel.startswith(head)
                elif res is not None:
                    with trio.move_on_after(QUIET):
                        async for chunk in res:
                            body += chunk
            except http.HTTPError as exc:
                error = str(exc.code)
    if res is None:
        return ClientOutcome(tuple(informational), None, error=error)
    assert res.status_code is not None and res.status_message is not None
    return ClientOutcome(
        tuple(informational),
        res.status_code,
        res.status_message.encode("latin-1"),
        res.http_version,
        _latin1_pairs(list(res.raw_headers)),
        body,
        res.complete,
        error,
        tunnel,
    )


# --- what differs ----------------------------------------------------------------------

# Case id -> why we do not do what llhttp's log says. A listed case must still differ.
# Where we do not do what llhttp does, on purpose (docs/differences.rst, "Parsing").
_CLOSED_REQUEST = (
    "data after a request that closes the connection: llhttp reports "
    "HPE_CLOSED_CONNECTION (Node: clientError after the request is served); we serve "
    "the request, close, and discard what follows without an error (RFC 9112, 9.6)"
)
_CLOSED_RESPONSE = (
    "data after a response that closes the connection: llhttp reports "
    "HPE_CLOSED_CONNECTION (Node: a request 'error' after the response is delivered); "
    "we deliver the response whole and discard what follows without an error"
)
KNOWN_DIFFERENCES: dict[str, str] = {
    "request/connection.md: No restart when keep-alive is off (1.0)": _CLOSED_REQUEST,
    "request/connection.md: CRLF between requests, explicit `close`": _CLOSED_REQUEST,
    "response/connection.md: HTTP/1.1 with keep-alive disabled and 204 status": _CLOSED_RESPONSE,
    "response/connection.md: HTTP/1.1 with keep-alive disabled, content-length": _CLOSED_RESPONSE,
}

# Where Node 20's http layer does not show what the corpus's log implies; seen with
# tests/node/llhttp_oracle.js.
NODE_20_DIFFERS: dict[str, str] = {}


Outcome = ServerOutcome | ClientOutcome


def _explain(case: Case, ours: Outcome, expected: Outcome) -> str:
    lines = [f"{case.id}: we differ from llhttp", f"  input: {case.data!r}"]
    for field in attrs.fields(type(ours)):
        mine, theirs = getattr(ours, field.name), getattr(expected, field.name)
        if mine != theirs:
            lines.append(f"  {field.name}: ours {mine!r}")
            lines.append(f"  {' ' * len(field.name)}  llhttp {theirs!r}")
    return "\n".join(lines)


def _check(case: Case, ours: Outcome, expected: Outcome) -> None:
    if case.id in KNOWN_DIFFERENCES:
        assert ours != expected, (
            f"{case.id} now does what llhttp does: remove it from KNOWN_DIFFERENCES"
        )
    else:
        assert ours == expected, _explain(case, ours, expected)


# --- the tests -------------------------------------------------------------------------


def _id(case: Case) -> str:
    return case.id


def test_corpus_is_read_as_llhttp_reads_it() -> None:
    # Every span of every log (strict or not) is the input's bytes at its offset.
    checked = 0
    for path in sorted(CORPUS.glob("*/*.md")):
        for section in parse_markdown(path.read_text(encoding="utf-8")):
            if "http" not in section.blocks:
                continue
            data = decode_input(section.blocks["http"][0])
            for offset, piece in parse_log(section.blocks["log"][0]).spans:
                assert data[offset : offset + len(piece)] == piece, (path.name, section.name)
                checked += 1
    assert checked > 1500
    assert len(REQUEST_CASES) > 100
    assert len(RESPONSE_CASES) > 50
    assert len(CASE_IDS) == len(CASES)


def test_difference_lists_name_corpus_cases() -> None:
    assert set(KNOWN_DIFFERENCES) <= CASE_IDS
    assert set(NODE_20_DIFFERS) <= CASE_IDS


@pytest.mark.parametrize("case", REQUEST_CASES, ids=_id)
async def test_request(case: Case, autojump_clock: trio.testing.MockClock) -> None:
    _check(case, await serve(case), expected_server_outcome(case))


@pytest.mark.parametrize("case", RESPONSE_CASES, ids=_id)
async def test_response(case: Case, autojump_clock: trio.testing.MockClock) -> None:
    _check(case, await fetch(case), expected_client_outcome(case))


if __name__ == "__main__":
    # The input of tests/node/llhttp_oracle.js: python -m tests.test_llhttp_corpus
    json.dump(
        [
            {
                "id": case.id,
                "kind": case.kind,
                "data": base64.b64encode(case.data).decode("ascii"),
                "eof": case.eof,
                "method": case.method,
            }
            for case in CASES
        ],
        sys.stdout,
    )
