"""The parser (trio_nodehttp._parse): every HPE_* code it raises, on the request and the
response side, and properties that hold for any bytes and any split of them."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import hypothesis
import pytest
import trio
import trio.testing
from hypothesis import strategies as st

import trio_nodehttp as http
from trio_nodehttp._connection import HTTPConnection
from trio_nodehttp._parse import (
    ChunkedReader,
    EndOfBody,
    HeadKind,
    find_head,
    parse_request_head,
    parse_response_head,
    scan_chunk_line,
)

from .conftest import memory_server

CHUNKED_POST = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
NODE_REFUSED_CHUNK_LINES = [b"-6", b"-1", b"a ", b"a\t", b"2;", b"0;", b"1;\x7f", b"0x1", b"+1"]


@contextmanager
def cpu_deadline(seconds: float) -> Iterator[None]:
    """Turn a busy loop (which no trio timeout can interrupt) into a test failure."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise AssertionError(f"still running after {seconds} s of real time: a busy loop")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def request_error(data: bytes) -> str:
    end = find_head(bytearray(data), 0, 16384, HeadKind.REQUEST)
    assert end != -1, "the head is whole"
    with pytest.raises(http.ParseError) as caught:
        parse_request_head(data[:end])
    return caught.value.code


def response_error(data: bytes) -> str:
    with pytest.raises(http.ParseError) as caught:
        parse_response_head(data)
    return caught.value.code


def unfinished_error(data: bytes, kind: HeadKind = HeadKind.REQUEST) -> str:
    with pytest.raises(http.ParseError) as caught:
        find_head(bytearray(data), 0, 16384, kind)
    return caught.value.code


def read_chunked(data: bytes, *, request: bool = True) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    reader = ChunkedReader(16384, request=request)
    buffer = bytearray(data)
    body = bytearray()
    for _ in range(len(data) + 2):
        item = reader.read(buffer)
        if item is None:
            raise EOFError("the body is unfinished")
        if isinstance(item, EndOfBody):
            return bytes(body), item.trailers
        body += item
    raise AssertionError("the reader made no progress")


def chunked_error(data: bytes, *, request: bool = True) -> str:
    with pytest.raises(http.ParseError) as caught:
        read_chunked(data, request=request)
    return caught.value.code


# --- request heads -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "HPE_INVALID_METHOD"),
        (b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", "HPE_INVALID_METHOD"),
        (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", "HPE_INVALID_VERSION"),
        (b"GET / HTTP/11\r\nHost: a\r\n\r\n", "HPE_INVALID_VERSION"),
        (b"GET / FTP/1.1\r\nHost: a\r\n\r\n", "HPE_INVALID_CONSTANT"),
        (b"GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", "HPE_INVALID_URL"),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"),
        (b"GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"),
        (b"GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n", "HPE_CR_EXPECTED"),
        (b"GET / HTTP/1.1\r\nX: a\rY: b\r\n\r\n", "HPE_LF_EXPECTED"),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "HPE_UNEXPECTED_CONTENT_LENGTH",
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HPE_INVALID_TRANSFER_ENCODING",
        ),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            "HPE_INVALID_CONTENT_LENGTH",
        ),
        (b"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "HPE_INVALID_CONTENT_LENGTH"),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HPE_INVALID_CONTENT_LENGTH",
        ),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HPE_INVALID_TRANSFER_ENCODING",
        ),
    ],
)
def test_request_head_faults(data: bytes, code: str) -> None:
    assert request_error(data) == code


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        (b"GET /\n\n", "HPE_INVALID_HEADER_TOKEN"),
        (b"GET /\nHost: a\n\n", "HPE_CR_EXPECTED"),
        (b"GET /\r\n\r\n", "ok"),
        (b"GET http://a.b/c HTTP/1.1\r\nHost: a\r\n\r\n", "ok"),
        (b"GET http:/a HTTP/1.1\r\n\r\n", "HPE_INVALID_URL"),
        (b"GET h1 HTTP/1.1\r\n\r\n", "HPE_INVALID_URL"),
        (b"GET http://a\x01 HTTP/1.1\r\n\r\n", "HPE_INVALID_URL"),
        (b"GET http://a:80 HTTP/1.1\r\nHost: a\r\n\r\n", "ok"),
        (b"GET \x01 HTTP/1.1\r\n\r\n", "HPE_INVALID_URL"),
        (b"CONNECT a.b:443 HTTP/1.1\r\nHost: a\r\n\r\n", "ok"),
        (b"CONNECT a.b:443\x01 HTTP/1.1\r\n\r\n", "HPE_INVALID_URL"),
        (b"GET /\t HTTP/1.1\r\n\r\n", "HPE_INVALID_URL"),
        (b"GET / \tHTTP/1.1\r\n\r\n", "HPE_INVALID_URL"),
        (b"GET /\r\tX", "HPE_INVALID_URL"),
        (b"GET /\rX", "HPE_INVALID_URL"),
        (b"GET / HTTP/1.1\rX", "HPE_STRICT"),
        (b"GET / HTTP/1.1X", "HPE_INVALID_VERSION"),
        (b"GET / HTTX/1.1\r\n\r\n", "HPE_INVALID_CONSTANT"),
        (b"GET / HTTP-1.1\r\n\r\n", "HPE_INVALID_CONSTANT"),
        (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", "ok"),
        (b"GET / RTSP/1.0\r\n\r\n", "ok"),
        (b"SETUP / HTTP/1.1\r\n\r\n", "HPE_INVALID_CONSTANT"),
        (b"GET / HTTP/1.1 \r\n\r\n", "HPE_INVALID_VERSION"),
    ],
)
def test_request_lines_as_node_20_reads_them(data: bytes, answer: str) -> None:
    # Each answer is the code of Node 20's clientError for these bytes ("ok": its
    # handler ran): URL forms, the bytes llhttp refuses after a URL, HTTP/0.9 lines,
    # protocols and the methods each allows.
    if answer == "ok":
        end = find_head(bytearray(data), 0, 16384, HeadKind.REQUEST)
        assert parse_request_head(data[:end]).body_fault is None
        return
    with pytest.raises(http.ParseError) as caught:
        end = find_head(bytearray(data), 0, 16384, HeadKind.REQUEST)
        parse_request_head(data[:end])
    assert caught.value.code == answer


@pytest.mark.parametrize("data", [b"GET /\nHost: a\r\n\r\n", b"GET /\n\r\n"])
def test_a_request_line_ended_by_a_bare_lf_is_refused(data: bytes) -> None:
    # Node 20 takes these as HTTP/0.9 requests; we differ on purpose (docs: "Where we
    # differ from Node", Parsing): a bare LF is refused everywhere else.
    with pytest.raises(http.ParseError) as caught:
        end = find_head(bytearray(data), 0, 16384, HeadKind.REQUEST)
        parse_request_head(data[:end])
    assert caught.value.code == "HPE_INVALID_URL"


def test_a_framing_fault_is_refused_at_its_line_before_a_later_bad_line() -> None:
    # As llhttp: the second Content-Length is refused as it is read, so the bad line
    # after it is never reached, however the bytes are split.
    data = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\nBad Line\r\n\r\n"
    assert request_error(data) == "HPE_UNEXPECTED_CONTENT_LENGTH"
    assert unfinished_error(data[:-12]) == "HPE_UNEXPECTED_CONTENT_LENGTH"


def test_a_request_coding_other_than_chunked_is_refused_after_its_head() -> None:
    # Node emits "request" first, then refuses the body it cannot frame.
    head = parse_request_head(b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert head.body_fault is not None
    assert head.body_fault.code == "HPE_INVALID_TRANSFER_ENCODING"


def test_request_head_fields() -> None:
    head = parse_request_head(
        b"POST /a?b HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: ws\r\n"
        b"Expect: 100-continue\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    )
    assert (head.method, head.target, head.http_version) == (b"POST", b"/a?b", b"1.1")
    assert head.chunked and head.connection == [b"upgrade"] and head.upgrade == b"ws"
    assert head.expect == b"100-continue" and not head.missing_host
    assert parse_request_head(b"GET /\r\n\r\n").http_version == b"0.9"
    assert parse_request_head(b"GET / HTTP/1.1\r\n\r\n").missing_host


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"GET / HTTP/1.1\r\nX: a\x01", "HPE_INVALID_HEADER_TOKEN"),
        (b"GET / HTTP/1.1\r\nX: a\nY", "HPE_CR_EXPECTED"),
        (b"GET / HTTP/1.1\r\nX: a\rY", "HPE_LF_EXPECTED"),
        (b"G(", "HPE_INVALID_METHOD"),
        (b"GET /\x80", "HPE_INVALID_URL"),
        (b"GET / HTX", "HPE_INVALID_CONSTANT"),
        # The HTTP/2 preface is refused once it is read whole (as Node's clientError).
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HPE_PAUSED_H2_UPGRADE"),
        (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", "HPE_INVALID_VERSION"),
        (b"GET / HTTP/1.1\r\nBad Name", "HPE_INVALID_HEADER_TOKEN"),
        (b"GET / HTTP/1.1\r\n folded", "HPE_UNEXPECTED_SPACE"),
        (b"GET / HTTP/1.1\r\nX: 1\r\nBad Line\r\nY", "HPE_INVALID_HEADER_TOKEN"),
    ],
)
def test_an_unfinished_request_head_is_refused_at_the_bad_byte(data: bytes, code: str) -> None:
    assert unfinished_error(data) == code


@pytest.mark.parametrize(
    "data",
    [
        b"G",
        b"GET",
        b"GET ",
        b"GET /",
        b"GET / ",
        b"GET / HTTP/1",
        b"GET / HTTP/1.1\r",
        b"GET / HTTP/1.1\r\nX: 1\r\nHo",
        b"PRI * HTTP/2.0\r\n\r\nS",
    ],
)
def test_an_unfinished_good_request_head_waits(data: bytes) -> None:
    assert find_head(bytearray(data), 0, 16384, HeadKind.REQUEST) == -1


def test_a_head_over_the_budget_is_refused_whole_or_unfinished() -> None:
    pad = b"x" * 20000
    assert unfinished_error(b"GET / HTTP/1.1\r\nX: " + pad) == "HPE_HEADER_OVERFLOW"
    with pytest.raises(http.ParseError) as caught:
        find_head(
            bytearray(b"GET / HTTP/1.1\r\nX: " + pad + b"\r\n\r\n"), 0, 16384, HeadKind.REQUEST
        )
    assert caught.value.code == "HPE_HEADER_OVERFLOW"


async def test_a_request_cut_off_by_eof_gets_400() -> None:
    async with memory_server(server=http.create_server()) as (_, connect):
        client = connect()
        await client.send(b"GET / HTTP/1.1\r\nHost: a\r\n")
        await client.stream.send_eof()  # type: ignore[attr-defined]
        with trio.fail_after(5):
            data = await client.read_until_closed()
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


# --- response heads ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"HTTX/1.1 200 OK\r\n\r\n", "HPE_INVALID_CONSTANT"),
        (b"ICY 200 OK\r\n\r\n", "HPE_INVALID_CONSTANT"),
        (b"HTTP/11 200 OK\r\n\r\n", "HPE_INVALID_VERSION"),
        (b"HTTP/5.6 200 OK\r\n\r\n", "HPE_INVALID_VERSION"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "HPE_INVALID_STATUS"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "HPE_INVALID_STATUS"),
        (b"HTTP/1.1 200 OK\r\nX : 1\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"),
        (b"HTTP/1.1 200 OK\r\n folded-first\r\n\r\n", "HPE_UNEXPECTED_SPACE"),
        (b"HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n", "HPE_CR_EXPECTED"),
        (b"HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HPE_UNEXPECTED_CONTENT_LENGTH",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HPE_INVALID_TRANSFER_ENCODING",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HPE_INVALID_CONTENT_LENGTH"),
    ],
)
def test_response_head_faults(data: bytes, code: str) -> None:
    assert response_error(data) == code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"HTX", "HPE_INVALID_CONSTANT"),
        (b"HTTP/x", "HPE_INVALID_VERSION"),
        (b"HTTP/1.1 2x", "HPE_INVALID_STATUS"),
        (b"HTTP/1.1 200 OK\r\nX\x00", "HPE_INVALID_HEADER_TOKEN"),
    ],
)
def test_an_unfinished_response_head_is_refused_at_the_bad_byte(data: bytes, code: str) -> None:
    assert unfinished_error(data, HeadKind.RESPONSE) == code


def test_response_head_fields_and_no_obs_fold() -> None:
    head = parse_response_head(
        b"HTTP/1.0 404 Not Found\r\nX: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert (head.status_code, head.reason, head.http_version) == (404, b"Not Found", b"1.0")
    assert head.raw_headers == [(b"X", b"a"), (b"Transfer-Encoding", b"chunked")]
    # Node v20's client refuses a folded line too (llhttp without lenient flags).
    assert response_error(b"HTTP/1.0 200 OK\r\nX: a\r\n  b\r\n\r\n") == "HPE_INVALID_HEADER_TOKEN"
    assert head.transfer_encoding == b"chunked" and head.content_length is None
    assert parse_response_head(b"HTTP/1.1 204\r\n\r\n").reason == b""


# --- chunked bodies ------------------------------------------------------------------


def test_chunked_body_with_extensions_and_trailers() -> None:
    body, trailers = read_chunked(
        b'3;a=1;b="x y"\r\nabc\r\n000A\r\n0123456789\r\n0\r\nT: 1\r\nU:  2 \r\n\r\n'
    )
    assert body == b"abc0123456789"
    assert trailers == [(b"T", b"1"), (b"U", b"2")]


def test_trailers_refuse_obs_fold_on_both_sides() -> None:
    data = b"1\r\na\r\n0\r\nT: 1\r\n 2\r\n\r\n"
    assert chunked_error(data, request=False) == "HPE_INVALID_HEADER_TOKEN"
    assert chunked_error(data) == "HPE_INVALID_HEADER_TOKEN"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"-6", "HPE_INVALID_CHUNK_SIZE"),
        (b"a ", "HPE_INVALID_CHUNK_SIZE"),
        (b"a\t", "HPE_INVALID_CHUNK_SIZE"),
        (b" a", "HPE_INVALID_CHUNK_SIZE"),
        (b"0x1", "HPE_INVALID_CHUNK_SIZE"),
        (b"10000000000000000", "HPE_INVALID_CHUNK_SIZE"),
        (b"2;", "HPE_STRICT"),
        (b"2; a", "HPE_STRICT"),
        (b"1;\x7f", "HPE_STRICT"),
        (b"1;a=\x01", "HPE_STRICT"),
        (b'1;a="\x01"', "HPE_STRICT"),
        (b'1;a="b"c', "HPE_STRICT"),
        (b'1;a="\\\x01"', "HPE_STRICT"),
        (b"1\n", "HPE_CR_EXPECTED"),
        (b"1;a\n", "HPE_CR_EXPECTED"),
        (b"1\rx", "HPE_STRICT"),
    ],
)
def test_chunk_size_line_faults(line: bytes, code: str) -> None:
    assert chunked_error(line + b"\r\nab\r\n0\r\n\r\n") == code


def test_chunk_data_must_end_in_crlf() -> None:
    assert chunked_error(b"1\r\nab\r\n0\r\n\r\n") == "HPE_STRICT"
    assert chunked_error(b"1\r\na\n0\r\n\r\n") == "HPE_CR_EXPECTED"


def test_chunk_extensions_and_trailers_are_bounded() -> None:
    assert chunked_error(b"1;" + b"e" * 16385 + b"\r\na\r\n0\r\n\r\n") == (
        "HPE_CHUNK_EXTENSIONS_OVERFLOW"
    )
    assert chunked_error(b'1;e="' + b"q" * 16385) == "HPE_CHUNK_EXTENSIONS_OVERFLOW"
    assert chunked_error(b"0\r\nT: " + b"t" * 16385) == "HPE_HEADER_OVERFLOW"


def test_chunk_lines_llhttp_accepts() -> None:
    for line, size in [
        (b"0000000000000000000000001\r\n", 1),
        (b"FFFFFFFFFFFFFFFF\r\n", (1 << 64) - 1),
        (b"1;a=;b\r\n", 1),
        (b"1;;a\r\n", 1),
        (b'1;a="b\\"c";d\r\n', 1),
    ]:
        assert scan_chunk_line(line, 16384) == size
    assert scan_chunk_line(b"1;a", 16384) is None


async def test_chunk_size_minus_6_is_refused_not_a_busy_loop() -> None:
    """Regression: ``-6`` once sent the chunk framing's position backwards, exactly onto
    the same line, for ever: the whole server froze. Now it is a 400 and a close, and
    another connection is served meanwhile."""

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await req.read()
        await res.end(b"ok")

    with cpu_deadline(10):
        async with memory_server(handler) as (_, connect):
            bad, good = connect(), connect()
            await bad.send(CHUNKED_POST + b"-6\r\nab\r\n")
            with trio.fail_after(5):
                await good.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert (await good.read_response()).body == b"ok"
                answer = await bad.read_until_closed()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


@pytest.mark.parametrize("line", NODE_REFUSED_CHUNK_LINES)
async def test_the_client_refuses_chunk_lines_node_refuses(line: bytes) -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + line + b"\r\nab\r\n0\r\n\r\n"
    )
    client_side, server_side = trio.testing.memory_stream_pair()

    class OneStream(http.Agent):
        async def create_connection(self, options: http.ConnectOptions) -> trio.abc.Stream:
            return client_side

    async def serve() -> None:
        await server_side.receive_some(65536)
        await server_side.send_all(response)

    async with OneStream() as agent, trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with trio.fail_after(5), pytest.raises(http.ParseError) as caught:
            # The whole body comes with the head, so the fault may be seen before the
            # response is returned.
            res = await http.get("http://t/", agent=agent)
            await res.read()
        assert agent.statistics().total_connections == 0
    assert caught.value.code.startswith("HPE_")


# --- properties ----------------------------------------------------------------------

chunk_line_bytes = st.lists(
    st.one_of(
        st.sampled_from(
            [b"-", b"+", b" ", b"\t", b";", b"=", b'"', b"\\", b"0x", b"0", b"f", b"F", b"9"]
        ),
        st.sampled_from([b"1" * 17, b"ffffffffffffffff", b"a", b"name", b"\r", b"\n"]),
        st.binary(min_size=1, max_size=2),
    ),
    max_size=12,
).map(b"".join)


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def chunked_outcome(segments: list[bytes]) -> tuple[object, ...]:
    reader = ChunkedReader(16384, request=True)
    buffer = bytearray()
    body = bytearray()
    try:
        for segment in segments:
            buffer += segment
            for _ in range(len(buffer) + 2):  # each call consumes bytes or waits
                before = len(buffer)
                item = reader.read(buffer)
                if item is None:
                    break
                assert len(buffer) < before or isinstance(item, EndOfBody)
                if isinstance(item, EndOfBody):
                    return ("end", bytes(body), item.trailers, bytes(buffer))
                body += item
            else:
                raise AssertionError("the reader made no progress")
    except http.ParseError as exc:
        return ("error", exc.code)
    return ("waiting", bytes(body))


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(line=chunk_line_bytes, cuts=st.lists(st.integers(0, 64), max_size=5))
def test_any_chunk_line_is_answered_the_same_however_split(line: bytes, cuts: list[int]) -> None:
    data = line + b"\r\nab\r\n0\r\n\r\n"
    with cpu_deadline(5):
        whole = chunked_outcome([data])
        assert chunked_outcome(splits(data, cuts)) == whole
        assert chunked_outcome([bytes([b]) for b in data]) == whole
    # Waiting is for chunk data only: the first LF ends a size line, after its CR.
    first_lf = data.find(b"\n")
    assert whole[0] != "waiting" or data[first_lf - 1 : first_lf] == b"\r"


@hypothesis.settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(line=chunk_line_bytes)
async def test_no_chunk_line_leaves_the_server_without_an_answer(
    line: bytes, autojump_clock: trio.testing.MockClock
) -> None:
    """Whatever the chunk-size line, the sender gets an answer or a close within the
    request timeout, and another connection is served meanwhile."""

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await req.read()
        await res.end(b"ok")

    with cpu_deadline(10):
        async with memory_server(handler, request_timeout=30.0) as (_, connect):
            bad, good = connect(), connect()
            await bad.send(CHUNKED_POST + line + b"\r\nab\r\n")
            with trio.fail_after(1):
                await good.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert (await good.read_response()).body == b"ok"
            with trio.fail_after(31):
                answer = await bad.read_until_closed()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 ")


class SegmentStream(trio.abc.Stream):
    """Gives the bytes in the segments given, then EOF; takes any writes."""

    def __init__(self, segments: list[bytes]) -> None:
        self.segments = list(segments)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        return self.segments.pop(0) if self.segments else b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def message_outcome(segments: list[bytes], *, request: bool) -> object:
    connection = HTTPConnection(SegmentStream(segments))
    try:
        if request:
            head: object = await connection.receive_request_head()
        else:
            connection.start_response(b"GET")
            head = await connection.receive_response_head()
        body = bytearray()
        for _ in range(sum(map(len, segments)) + 2):
            item = await connection.receive_body()
            if isinstance(item, EndOfBody):
                return ("message", head, bytes(body), item.trailers)
            body += item
        raise AssertionError("the body never ended")
    except http.ParseError as exc:
        return ("error", exc.code)
    except (EOFError, http.ConnectionResetError) as exc:
        return ("closed", type(exc).__name__)


request_bytes = st.one_of(
    st.binary(max_size=80),
    st.lists(
        st.sampled_from(
            [
                b"GET / HTTP/1.1\r\n",
                b"POST /p HTTP/1.0\r\n",
                b"Host: a\r\n",
                b"Content-Length: 3\r\n",
                b"Transfer-Encoding: chunked\r\n",
                b"X: \x01\r\n",
                b" fold\r\n",
                b"\r\n",
                b"\n",
                b"\r",
                b"abc",
                b"3\r\nabc\r\n0\r\n\r\n",
                b"1;x=y\r\nz\r\n",
            ]
        ),
        max_size=8,
    ).map(b"".join),
)
response_bytes = st.one_of(
    st.binary(max_size=80),
    st.lists(
        st.sampled_from(
            [
                b"HTTP/1.1 200 OK\r\n",
                b"HTTP/1.0 404\r\n",
                b"X: 1\r\n",
                b"  folded\r\n",
                b"Content-Length: 3\r\n",
                b"Transfer-Encoding: chunked\r\n",
                b"\r\n",
                b"\n",
                b"abc",
                b"3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            ]
        ),
        max_size=8,
    ).map(b"".join),
)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(data=request_bytes, cuts=st.lists(st.integers(0, 100), max_size=6))
async def test_any_request_bytes_parse_or_fail_the_same_however_split(
    data: bytes, cuts: list[int]
) -> None:
    with cpu_deadline(5):
        whole = await message_outcome([data], request=True)
        assert await message_outcome(splits(data, cuts), request=True) == whole
        assert await message_outcome([bytes([b]) for b in data], request=True) == whole


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(data=response_bytes, cuts=st.lists(st.integers(0, 100), max_size=6))
async def test_any_response_bytes_parse_or_fail_the_same_however_split(
    data: bytes, cuts: list[int]
) -> None:
    with cpu_deadline(5):
        whole = await message_outcome([data], request=False)
        assert await message_outcome(splits(data, cuts), request=False) == whole
        assert await message_outcome([bytes([b]) for b in data], request=False) == whole
