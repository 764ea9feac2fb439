"""Node is the oracle: the same raw bytes go to Node's own http server
(tests/node/echo_server.js) and to ours, and both must answer the same way.

For each case the status line and the header lines are compared (the values of Date and
Content-Length aside), and for every answer but the echo's 200 the body too.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import trio_nodehttp as http

from .conftest import RawClient, RawResponse, socket_server

NODE_SERVER = Path(__file__).parent / "node" / "echo_server.js"
PAD_LIMIT = 16376  # with "GET / ...Host: a\r\nX: <pad>", the largest pad Node accepts


@pytest.fixture(scope="module")
def node_port(node_bin_path: str) -> Iterator[int]:
    with subprocess.Popen(
        [node_bin_path, str(NODE_SERVER), "{}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stdin is not None
        line = process.stdout.readline()
        yield int(json.loads(line)["port"])
        process.stdin.close()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def node_bin_path() -> str:
    import shutil

    path = shutil.which("node")
    assert path, "node must be installed"
    return path


async def echo(req: http.IncomingMessage, res: http.ServerResponse) -> None:
    body = await req.read()
    payload = {"method": req.method, "url": req.url, "body": body.decode("latin-1")}
    res.set_header("Content-Type", "application/json")
    await res.end(json.dumps(payload))


async def ask(port: int, data: bytes, dribble: int = 0) -> RawResponse:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            client = RawClient(stream)
            try:
                if dribble:
                    for start in range(0, len(data), dribble):
                        await client.send(data[start : start + dribble])
                else:
                    await client.send(data)
            except trio.BrokenResourceError:
                pass  # the server answered and closed before taking everything
            return await client.read_response()


def shape(response: RawResponse) -> tuple[object, ...]:
    headers = [
        (name, "*" if name.lower() in ("date", "content-length") else value)
        for name, value in response.headers
    ]
    body = response.body if response.status != 200 else b"*"
    return response.status, response.reason, headers, body


async def assert_same(node_port: int, data: bytes, status: int, dribble: int = 0) -> None:
    node = await ask(node_port, data, dribble)
    async with socket_server(echo) as (_, port):
        ours = await ask(port, data, dribble)
    assert shape(ours) == shape(node)
    assert node.status == status


def request(*lines: str, body: bytes = b"", start: str = "GET / HTTP/1.1") -> bytes:
    return ("\r\n".join([start, *lines]) + "\r\n\r\n").encode("latin-1") + body


CASES = {
    "valid": (request("Host: a"), 200),
    "connection-close": (request("Host: a", "Connection: close"), 200),
    "http10": (request("Host: a", start="GET / HTTP/1.0"), 200),
    "http10-keep-alive": (
        request("Host: a", "Connection: keep-alive", start="GET / HTTP/1.0"),
        200,
    ),
    "http20-served-as-10": (request("Host: a", start="GET / HTTP/2.0"), 200),
    "http12": (request("Host: a", start="GET / HTTP/1.2"), 400),
    "no-version-served-as-09": (request("Host: a", start="GET /"), 200),
    "missing-host": (request("X: 1"), 400),
    "leading-crlf": (b"\r\n\r\n" + request("Host: a"), 200),
    "cl-and-te": (request("Host: a", "Content-Length: 3", "Transfer-Encoding: chunked"), 400),
    "two-cl-different": (request("Host: a", "Content-Length: 1", "Content-Length: 2"), 400),
    "two-cl-equal": (request("Host: a", "Content-Length: 1", "Content-Length: 1", body=b"x"), 400),
    "cl-not-a-number": (request("Host: a", "Content-Length: abc"), 400),
    "cl-plus": (request("Host: a", "Content-Length: +5"), 400),
    "cl-list": (request("Host: a", "Content-Length: 5, 5"), 400),
    "cl-over-64-bits": (request("Host: a", "Content-Length: 18446744073709551616"), 400),
    "cl-leading-zeros": (request("Host: a", "Content-Length: 005", body=b"hello"), 200),
    "te-gzip": (request("Host: a", "Transfer-Encoding: gzip"), 400),
    "te-chunked-gzip": (request("Host: a", "Transfer-Encoding: chunked, gzip"), 400),
    "te-chunkedchunked": (request("Host: a", "Transfer-Encoding: chunkedchunked"), 400),
    "bare-lf-everywhere": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "bare-lf-in-header": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\nX-B: 2\r\n\r\n", 400),
    "bare-cr-in-value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", 400),
    "backspace-in-value": (request("Host: a", "X: a\x08b"), 400),
    "del-in-value": (request("Host: a", "X: a\x7fb"), 400),
    "nul-in-value": (request("Host: a", "X: a\x00b"), 400),
    "obs-text-in-value": (request("Host: a", "X: caf\xe9"), 200),
    "space-before-colon": (request("Host : a"), 400),
    "bad-name-char": (request("Host: a", "X(A): 1"), 400),
    "obs-fold": (request("Host: a", "X: 1", " continued"), 400),
    "unknown-method": (request("Host: a", start="FOO / HTTP/1.1"), 400),
    "lowercase-method": (request("Host: a", start="get / HTTP/1.1"), 400),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    "query-method": (request("Host: a", start="QUERY / HTTP/1.1"), 200),
    "space-in-target": (request("Host: a", start="GET /a b HTTP/1.1"), 400),
    "expect-unknown": (request("Host: a", "Expect: meoww"), 417),
    "duplicate-host": (request("Host: a", "Host: b"), 200),
    "te-gzip-then-chunked": (
        request("Host: a", "Transfer-Encoding: gzip, chunked", start="POST / HTTP/1.1")
        + b"3\r\nabc\r\n0\r\n\r\n",
        200,
    ),
    "te-twice": (
        request("Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
        400,
    ),
    "empty-host-accepted": (request("Host:"), 200),
    "two-spaces-in-request-line": (request("Host: a", start="GET  /  HTTP/1.1"), 200),
    "chunked-body": (
        request("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1")
        + b"3\r\nabc\r\n0\r\n\r\n",
        200,
    ),
    "bad-chunk-size": (
        request("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1") + b"zz\r\n",
        400,
    ),
    **{
        f"chunk-size-{name}": (
            request("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1")
            + line
            + b"\r\nab\r\n0\r\n\r\n",
            status,
        )
        for name, line, status in [
            ("minus-1", b"-1", 400),
            ("minus-6", b"-6", 400),  # once a busy loop that froze the server
            ("plus-2", b"+2", 400),
            ("hex-prefix", b"0x2", 400),
            ("trailing-space", b"2 ", 400),
            ("trailing-tab", b"2\t", 400),
            ("leading-space", b" 2", 400),
            ("empty-extension", b"2;", 400),
            ("space-after-semicolon", b"2; a", 400),
            ("del-extension", b"2;\x7f", 400),
            ("extension", b"2;name", 200),
            ("extension-value", b"2;name=value", 200),
            ("extension-empty-value", b"2;name=", 200),
            ("extension-quoted", b'2;name="a \\" b"', 200),
            ("two-extensions", b"2;a=1;b", 200),
            ("space-before-semicolon", b"2 ;a", 400),
            ("leading-zeros", b"00000000000000000000002", 200),
            ("uppercase", b"2", 200),
            ("overflow", b"10000000000000002", 400),
            ("nul", b"2\x00", 400),
        ]
    },
    "chunk-last-empty-extension": (
        request("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1")
        + b"2\r\nab\r\n0;\r\n\r\n",
        400,
    ),
    "chunk-data-too-long": (
        request("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1")
        + b"2\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    "chunked-trailer": (
        request("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1")
        + b"2\r\nab\r\n0\r\nX-T: 1\r\n\r\n",
        200,
    ),
    "chunked-bad-trailer": (
        request("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1")
        + b"2\r\nab\r\n0\r\nX T: 1\r\n\r\n",
        400,
    ),
    "header-at-limit": (request("Host: a", "X: " + "p" * PAD_LIMIT), 200),
    "header-over-limit": (request("Host: a", "X: " + "p" * (PAD_LIMIT + 1)), 431),
    "long-target-over-limit": (request("Host: a", start=f"GET /{'t' * 16400} HTTP/1.1"), 431),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_same_answer_as_node(case: str, node_port: int) -> None:
    data, status = CASES[case]
    await assert_same(node_port, data, status)


@pytest.mark.parametrize("case", ["header-at-limit", "header-over-limit", "valid"])
async def test_same_answer_as_node_when_dribbled(case: str, node_port: int) -> None:
    data, status = CASES[case]
    await assert_same(node_port, data, status, dribble=100)


async def test_chunk_extensions_overflow_gets_413(node_port: int) -> None:
    head = request("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1")
    data = head + b"5;" + b"e" * 20000 + b"\r\nhello\r\n0\r\n\r\n"
    node = await ask(node_port, data)
    async with socket_server(echo) as (_, port):
        ours = await ask(port, data)
    assert shape(ours) == shape(node)
    assert node.status == 413
