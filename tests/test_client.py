"""ClientRequest end to end: against Node's own server (tests/node/client_pool_server.js),
our server (socket_server), raw trio peers, and memory streams with the autojump clock
where the test is about time."""

from __future__ import annotations

import functools
import json
import tracemalloc
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_nodehttp as http
from trio_nodehttp import PoolStatistics

from .conftest import RawClient, memory_agent, socket_server
from .test_agent import (
    fetch,
    no_open_connections,
    node_server,
    node_stats,
    poll_until,
)

MiB = 1024 * 1024


# --- helpers ---------------------------------------------------------------------------


@asynccontextmanager
async def raw_server(
    handle: Callable[[trio.SocketStream], Awaitable[None]],
) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 whose connections go to ``handle`` (closed after)."""

    async def run(stream: trio.SocketStream) -> None:
        async with stream:
            await handle(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, run, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    sock = trio.socket.socket()
    with sock:
        await sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Recorder:
    """A request handler for our server that records each request, then echoes its body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str | None, str | None, list[tuple[str, str]], bytes]] = []
        self.trailers: list[dict[str, Any]] = []

    async def __call__(self, req: http.IncomingMessage, res: http.ServerResponse) -> None:
        body = await req.read()
        self.requests.append((req.method, req.url, list(req.raw_headers), body))
        self.trailers.append(dict(req.trailers))
        await res.end(body)


# --- default headers and framing -------------------------------------------------------


async def test_C50_default_headers_against_node() -> None:
    async with node_server() as port:
        url = f"http://127.0.0.1:{port}/"
        host = f"127.0.0.1:{port}"
        _, _, got = await fetch(url, None)  # the global agent
        assert got["rawHeaders"] == ["Host", host, "Connection", "keep-alive"]
        _, _, posted = await fetch(url, None, method="POST")  # end() without data
        assert posted["rawHeaders"] == [
            "Host", host, "Connection", "keep-alive", "Content-Length", "0"
        ]  # fmt: skip
        req = http.request(url, method="PUT")
        with trio.fail_after(10):
            put = json.loads(await (await req.end(b"data")).read())
        assert put["rawHeaders"] == [
            "Host", host, "Connection", "keep-alive", "Content-Length", "4"
        ]  # fmt: skip
        assert put["body"] == "data"


async def test_C50_default_headers_against_our_server() -> None:
    recorder = Recorder()
    async with socket_server(recorder) as (_, port), http.Agent(keep_alive=True) as agent:
        host = f"127.0.0.1:{port}"
        with trio.fail_after(10):
            await (await http.get(f"http://127.0.0.1:{port}/g", agent=agent)).read()
            req = http.request(f"http://127.0.0.1:{port}/p", method="POST", agent=agent)
            assert await (await req.end(b"hello")).read() == b"hello"
    assert recorder.requests == [
        ("GET", "/g", [("Host", host), ("Connection", "keep-alive")], b""),
        (
            "POST",
            "/p",
            [("Host", host), ("Connection", "keep-alive"), ("Content-Length", "5")],
            b"hello",
        ),
    ]


async def test_A37_agent_false_sends_connection_close() -> None:
    async with node_server() as port:
        url = f"http://127.0.0.1:{port}/"
        req, res, got = await fetch(url, False)
        assert req.agent is None
        assert got["rawHeaders"] == ["Host", f"127.0.0.1:{port}", "Connection", "close"]
        assert res.headers["connection"] == "close"
        req, _, again = await fetch(url, False)
        assert not req.reused_socket
        assert again["remotePort"] != got["remotePort"]
        await poll_until(no_open_connections(port))  # Node sees both connections closed
        assert (await node_stats(port))["accepted"] == 2


async def test_C24_chunked_upload_with_write_and_trailers() -> None:
    async with node_server() as port:
        req = http.request(f"http://127.0.0.1:{port}/", method="POST", agent=False)
        req.set_header("Trailer", "X-Sum")
        with trio.fail_after(10):
            await req.write(b"ab")
            await req.write(b"")  # C27: never a zero-length chunk
            await req.write("cd")
            req.add_trailers({"X-Sum": "abcdef"})
            res = await req.end(b"ef")
            got = json.loads(await res.read())
    assert got["body"] == "abcdef"
    assert got["headers"]["transfer-encoding"] == "chunked"
    assert "content-length" not in got["headers"]
    assert got["trailers"] == {"x-sum": "abcdef"}
    assert req.chunked_encoding
    assert req.writable_finished


async def test_chunked_upload_to_our_server() -> None:
    recorder = Recorder()
    async with socket_server(recorder) as (_, port):
        req = http.request(f"http://127.0.0.1:{port}/up", method="POST", agent=False)
        with trio.fail_after(10):
            for piece in (b"one ", b"two ", b"three"):
                await req.write(piece)
            res = await req.end()
            assert await res.read() == b"one two three"
    (_, _, headers, body) = recorder.requests[0]
    assert ("Transfer-Encoding", "chunked") in headers
    assert body == b"one two three"


# --- responses: trailers, 1xx, HEAD/204/304, streaming ---------------------------------


async def test_trailers_received_from_node() -> None:
    async with node_server() as port:
        with trio.fail_after(10):
            res = await http.get(f"http://127.0.0.1:{port}/chunked")
            assert res.headers["transfer-encoding"] == "chunked"
            assert res.trailers == {}
            assert not res.complete
            assert await res.read() == b"abcdef"
    assert res.complete
    assert res.trailers == {"x-checksum": "abcdef"}
    assert res.raw_trailers == [("X-Checksum", "abcdef")]


async def test_C33_information_events_from_node() -> None:
    async with node_server() as port:
        req = http.request(f"http://127.0.0.1:{port}/info")
        infos: list[tuple[int | None, str | None, dict[str, Any]]] = []
        continues: list[object] = []
        req.on("information", lambda m: infos.append((m.status_code, m.status_message, m.headers)))
        req.on("continue", lambda: continues.append(True))
        with trio.fail_after(10):
            res = await req.end()
            body = await res.read()
    assert infos == [
        (102, "Processing", {}),
        (103, "Early Hints", {"link": "</style.css>; rel=preload; as=style"}),
    ]
    assert continues == []
    assert res.status_code == 200
    assert body == b"done"


async def test_C31_event_order() -> None:
    async with node_server() as port:
        req = http.request(f"http://127.0.0.1:{port}/", agent=False)
        order: list[str] = []
        for event in ("socket", "finish", "response"):
            req.on(event, functools.partial(lambda e, *_: order.append(e), event))
        with trio.fail_after(10):
            res = await req.end()
            res.on("end", lambda: order.append("end"))
            await res.read()
    assert order == ["socket", "finish", "response", "end"]


async def test_C36_head_204_304_have_no_body_and_reuse_the_connection() -> None:
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        url = f"http://127.0.0.1:{port}"
        reused = []
        with trio.fail_after(10):
            req = http.request(f"{url}/head", method="HEAD", agent=agent)
            res = await req.end()
            reused.append(req.reused_socket)
            assert res.status_code == 200
            assert res.headers["content-length"] == "5"
            assert res.complete
            assert await res.read() == b""
            for code in (204, 304):
                req = http.request(f"{url}/status?code={code}", agent=agent)
                res = await req.end()
                reused.append(req.reused_socket)
                assert res.status_code == code
                assert res.complete
                assert await res.read() == b""
            req = http.request(f"{url}/head", agent=agent)
            res = await req.end()
            reused.append(req.reused_socket)
            assert await res.read() == b"hello"
        assert reused == [False, True, True, True]
        assert (await node_stats(port))["accepted"] == 1


async def test_C02_get_honours_an_explicit_method() -> None:
    async with node_server() as port:
        with trio.fail_after(10):
            res = await http.get(f"http://127.0.0.1:{port}/head", method="HEAD", agent=False)
            assert res.headers["content-length"] == "5"
            assert await res.read() == b""


async def test_64_mib_response_streams_in_bounded_memory() -> None:
    size = 64 * MiB
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        tracemalloc.start()
        try:
            with trio.fail_after(120):
                res = await http.get(f"http://127.0.0.1:{port}/big?mb=64", agent=agent)
                assert res.headers["content-length"] == str(size)
                base = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                total = 0
                async for chunk in res:
                    total += len(chunk)
                peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert total == size
        assert res.complete
        assert peak - base < 8 * MiB
        # The connection went back to the pool.
        assert agent.statistics().pools[agent.get_name("127.0.0.1", port)] == PoolStatistics(
            0, 1, 0, 0
        )


# --- Expect: 100-continue --------------------------------------------------------------


async def test_C28_expect_continue_against_our_server() -> None:
    recorder = Recorder()
    async with socket_server(recorder) as (_, port):
        req = http.request(
            f"http://127.0.0.1:{port}/up",
            method="POST",
            headers={"Expect": "100-continue"},
            agent=False,
        )
        events: list[object] = []
        req.on("continue", lambda: events.append("continue"))
        req.on("information", lambda m: events.append(m.status_code))
        with trio.fail_after(10):
            res = await req.end(b"the body")
            assert await res.read() == b"the body"
    assert events == ["continue", 100]  # C29
    assert res.status_code == 200
    assert recorder.requests[0][3] == b"the body"


async def test_C28_body_waits_for_100_continue(autojump_clock: trio.testing.MockClock) -> None:
    seen: dict[str, bytes] = {}

    async def peer(stream: trio.abc.Stream) -> None:
        client = RawClient(stream)
        seen["head"] = await client.read_head_bytes()
        early: bytes | bytearray = b""
        with trio.move_on_after(0.5):
            early = await stream.receive_some()
        seen["before 100"] = bytes(client.buffer) + early
        await client.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        while len(client.buffer) < 8:
            assert await client._fill()
        seen["body"] = bytes(client.buffer)
        await client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await trio.sleep_forever()

    async with memory_agent(peer, keep_alive=True) as agent:
        req = http.request(
            "http://mem/", method="POST", headers={"Expect": "100-continue"}, agent=agent
        )
        res = await req.end(b"the body")
        assert await res.read() == b"ok"
    assert b"Content-Length: 8\r\n" in seen["head"]
    assert seen["before 100"] == b""
    assert seen["body"] == b"the body"


async def test_C28_final_answer_instead_of_100_means_no_body() -> None:
    seen: dict[str, bytes] = {}

    async def peer(stream: trio.abc.Stream) -> None:
        client = RawClient(stream)
        await client.read_head_bytes()
        await client.send(
            b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n"
            b"Connection: keep-alive\r\n\r\n"
        )
        # Everything that comes afterwards, up to the client's close.
        seen["after"] = await client.read_until_closed()

    async with memory_agent(peer, keep_alive=True) as agent:
        req = http.request(
            "http://mem/", method="POST", headers={"Expect": "100-continue"}, agent=agent
        )
        with trio.fail_after(10):
            res = await req.end(b"the body")
            assert res.status_code == 417
            assert await res.read() == b""
            # The body was announced but not sent: the connection cannot carry more.
            assert agent.statistics().total_connections == 0
            await trio.testing.wait_all_tasks_blocked()
    assert seen["after"] == b""


# --- upgrade and CONNECT ---------------------------------------------------------------


async def receive_exactly(stream: trio.abc.Stream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = await stream.receive_some()
        assert piece, f"EOF after {data!r}"
        data += piece
    return data


async def test_C34_upgrade_bidirectional_with_bytes_sent_along_the_101() -> None:
    async def on_upgrade(req: http.IncomingMessage, stream: trio.abc.Stream, head: bytes) -> None:
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n"
            b"welcome"
        )
        while data := await stream.receive_some():
            await stream.send_all(data.upper())

    server = http.create_server()
    server.on("upgrade", on_upgrade)
    async with socket_server(server=server) as (_, port), http.Agent(keep_alive=True) as agent:
        req = http.request(
            f"http://127.0.0.1:{port}/ws",
            headers={"Connection": "Upgrade", "Upgrade": "shout"},
            agent=agent,
        )
        events: list[tuple[int | None, bytes]] = []
        req.on("upgrade", lambda res, sock, head: events.append((res.status_code, head)))
        with trio.fail_after(10):
            res = await req.end()
            assert res.status_code == 101
            assert res.headers["upgrade"] == "shout"
            assert res.socket is not None
            assert agent.statistics().total_connections == 0  # detached from the pool
            assert await receive_exactly(res.socket, 7) == b"welcome"
            for word in (b"ping", b"pong"):
                await res.socket.send_all(word)
                assert await receive_exactly(res.socket, 4) == word.upper()
            await res.socket.aclose()
    assert len(events) == 1
    assert events[0][0] == 101
    assert b"welcome".startswith(events[0][1])


async def test_C35_connect_tunnel_to_an_echo_server() -> None:
    async def echo(stream: trio.SocketStream) -> None:
        while data := await stream.receive_some():
            await stream.send_all(data)

    async def on_connect(req: http.IncomingMessage, stream: trio.abc.Stream, head: bytes) -> None:
        host, _, port = (req.url or "").rpartition(":")
        upstream = await trio.open_tcp_stream(host, int(port))
        async with upstream:
            await stream.send_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            if head:
                await upstream.send_all(head)

            async def pump(
                source: trio.abc.Stream, sink: trio.abc.Stream, scope: trio.CancelScope
            ) -> None:
                try:
                    while data := await source.receive_some():
                        await sink.send_all(data)
                except trio.BrokenResourceError:
                    pass
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, stream, upstream, nursery.cancel_scope)
                nursery.start_soon(pump, upstream, stream, nursery.cancel_scope)

    proxy = http.create_server()
    proxy.on("connect", on_connect)
    async with raw_server(echo) as echo_port, socket_server(server=proxy) as (_, proxy_port):
        req = http.request(
            f"http://127.0.0.1:{proxy_port}", method="CONNECT", path=f"127.0.0.1:{echo_port}"
        )
        connects: list[int | None] = []
        req.on("connect", lambda res, sock, head: connects.append(res.status_code))
        with trio.fail_after(10):
            res = await req.end()
            assert res.status_code == 200
            tunnel = res.socket
            assert tunnel is not None
            for word in (b"hello", b"through the tunnel"):
                await tunnel.send_all(word)
                assert await receive_exactly(tunnel, len(word)) == word
            await tunnel.aclose()
    assert connects == [200]


async def test_C41_destroy_before_a_connection_is_assigned() -> None:
    async with http.Agent(keep_alive=True) as agent:
        req = http.request(f"http://127.0.0.1:{await free_port()}/", agent=agent)
        sockets: list[object] = []
        req.on("socket", sockets.append)
        assert req.destroy() is req
        assert req.destroyed
        with pytest.raises(http.ConnectionResetError) as info:
            await req.end()
        assert info.value.args[0] == "socket hang up"
        assert sockets == []
        assert agent.statistics().total_connections == 0


async def test_C30_socket_event_for_new_and_reused_connections() -> None:
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        streams: list[trio.abc.Stream] = []
        for _ in range(2):
            req = http.request(f"http://127.0.0.1:{port}/", agent=agent)
            req.on("socket", streams.append)
            with trio.fail_after(10):
                await (await req.end()).read()
        assert len(streams) == 2
        assert streams[0] is streams[1]


# --- Unix socket -----------------------------------------------------------------------


async def test_C13_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    recorder = Recorder()
    server = http.create_server(recorder)
    async with trio.open_nursery() as nursery, http.Agent(keep_alive=True) as agent:
        await nursery.start(functools.partial(server.listen, path=path))
        with trio.fail_after(10):
            for _ in range(2):
                req = http.request("http://localhost/unix", socket_path=path, agent=agent)
                res = await req.end(b"")
                assert res.status_code == 200
                await res.read()
        assert req.reused_socket
        name = agent.get_name("localhost", 80, socket_path=path)
        assert name == f"localhost:80::{path}"
        assert agent.statistics().pools[name] == PoolStatistics(0, 1, 0, 0)
        agent.destroy()
        await server.close()
    assert [(m, u) for m, u, _, _ in recorder.requests] == [("GET", "/unix")] * 2
    assert recorder.requests[0][2][0] == ("Host", "localhost")


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["global", "agent", "no agent"])
async def test_C38_connection_refused(which: str) -> None:
    port = await free_port()
    async with http.Agent(keep_alive=True) as own:
        agent: Any = {"global": None, "agent": own, "no agent": False}[which]
        with trio.fail_after(10), pytest.raises(http.HTTPError) as info:
            await http.get(f"http://127.0.0.1:{port}/", agent=agent)
        assert info.value.code == "ECONNREFUSED"
        assert own.statistics().total_connections == 0
        assert dict(own.statistics().pools) == {}


async def _close_after_head(stream: trio.SocketStream) -> None:
    await RawClient(stream).read_head_bytes()


async def _close_unread(stream: trio.SocketStream) -> None:
    await trio.lowlevel.wait_readable(stream.socket)
    stream.socket.close()  # unread bytes: the kernel resets the connection


async def _close_mid_head(stream: trio.SocketStream) -> None:
    await RawClient(stream).read_head_bytes()
    await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-")


@pytest.mark.parametrize("close", [_close_after_head, _close_unread, _close_mid_head])
@pytest.mark.parametrize("keep_alive", [True, False])
async def test_C39_server_closes_before_responding(
    close: Callable[[trio.SocketStream], Awaitable[None]], keep_alive: bool
) -> None:
    async with raw_server(close) as port, http.Agent(keep_alive=keep_alive) as agent:
        req = http.request(f"http://127.0.0.1:{port}/", agent=agent)
        with trio.fail_after(10), pytest.raises(http.ConnectionResetError) as info:
            await req.end()
        assert info.value.code == "ECONNRESET"
        assert info.value.args[0] == "socket hang up"
        assert isinstance(info.value, ConnectionResetError)  # the builtin one too
        assert not req.reused_socket
        assert agent.statistics().total_connections == 0


@pytest.mark.parametrize(
    "partial",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n",
    ],
    ids=["content-length", "chunked"],
)
async def test_C40_body_cut_short_raises_and_marks_aborted(partial: bytes) -> None:
    async def handle(stream: trio.SocketStream) -> None:
        await RawClient(stream).read_head_bytes()
        await stream.send_all(partial)

    async with raw_server(handle) as port, http.Agent(keep_alive=True) as agent:
        aborted: list[bool] = []
        with trio.fail_after(10):
            res = await http.get(f"http://127.0.0.1:{port}/", agent=agent)
            res.on("aborted", lambda: aborted.append(True))
            received = b""
            with pytest.raises(http.ConnectionResetError) as info:
                async for chunk in res:
                    received += chunk
        assert received == b"partial"
        assert info.value.args[0] == "aborted"
        assert info.value.code == "ECONNRESET"
        assert res.aborted
        assert not res.complete
        assert aborted == [True]
        assert agent.statistics().total_connections == 0
        # Reading again raises again.
        with pytest.raises(http.ConnectionResetError):
            await res.read()


async def test_body_until_close_is_complete() -> None:
    async def handle(stream: trio.SocketStream) -> None:
        await RawClient(stream).read_head_bytes()
        await stream.send_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")

    async with raw_server(handle) as port, http.Agent(keep_alive=True) as agent:
        with trio.fail_after(10):
            res = await http.get(f"http://127.0.0.1:{port}/", agent=agent)
            assert await res.read() == b"all of it"
        assert res.complete
        assert not res.aborted
        assert agent.statistics().total_connections == 0


async def test_C37_extra_response_means_the_connection_is_not_reused() -> None:
    connections = 0

    async def handle(stream: trio.SocketStream) -> None:
        nonlocal connections
        connections += 1
        client = RawClient(stream)
        while True:
            try:
                await client.read_head_bytes()
            except EOFError:
                return
            response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            await stream.send_all(response + response)

    async with raw_server(handle) as port, http.Agent(keep_alive=True) as agent:
        with trio.fail_after(10):
            for _ in range(2):
                req = http.request(f"http://127.0.0.1:{port}/", agent=agent)
                assert await (await req.end()).read() == b"ok"
                assert not req.reused_socket
    assert connections == 2


# --- construction and validation -------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: http.request("https://127.0.0.1/"),
        lambda: http.request(host="127.0.0.1", protocol="https:"),
        lambda: http.request("http://127.0.0.1/", protocol="https:"),
    ],
)
def test_C03_protocol_must_match_the_agent(make: Callable[[], object]) -> None:
    with pytest.raises(http.InvalidProtocolError) as info:
        make()
    assert info.value.code == "ERR_INVALID_PROTOCOL"
    assert info.value.args[0] == 'Protocol "https:" not supported. Expected "http:"'


@pytest.mark.parametrize(
    "path", ["/a b", "/a\tb", "/a\rb", "/a\nb", "/\x00", "/\x1f", "/\u0100", "/\u4e2d"]
)
def test_C06_unescaped_characters_in_the_path(path: str) -> None:
    with pytest.raises(http.UnescapedCharactersError) as info:
        http.request(host="127.0.0.1", path=path)
    assert info.value.code == "ERR_UNESCAPED_CHARACTERS"
    assert info.value.args[0] == "Request path contains unescaped characters"
    assert isinstance(info.value, TypeError)


def test_C06_accepted_paths() -> None:
    for path in ("/\x7f", "/\u00e9", "/%20", "/a?b=c#d", "*"):
        assert http.request(host="127.0.0.1", path=path).path == path
    assert http.request(host="127.0.0.1").path == "/"
    with pytest.raises(http.UnescapedCharactersError):
        http.request("http://127.0.0.1/a b")


def test_C07_method_validation() -> None:
    with pytest.raises(http.InvalidHTTPTokenError) as info:
        http.request(host="127.0.0.1", method="GE T")
    assert info.value.code == "ERR_INVALID_HTTP_TOKEN"
    assert info.value.args[0] == 'Method must be a valid HTTP token ["GE T"]'
    with pytest.raises(http.InvalidArgTypeError):
        http.request(host="127.0.0.1", method=5)
    assert http.request(host="127.0.0.1", method="patch").method == "PATCH"
    assert http.request(host="127.0.0.1", method="").method == "GET"
    assert http.request(host="127.0.0.1").method == "GET"


def test_C04_host_must_be_a_string() -> None:
    with pytest.raises(http.InvalidArgTypeError):
        http.request(host=123)
    with pytest.raises(http.InvalidArgTypeError):
        http.request(hostname=["a"])
    assert http.request(host="a", hostname="b").host == "b"
    assert http.request().host == "localhost"


def test_C05_C10_automatic_host_header() -> None:
    assert http.request(host="127.0.0.1").get_header("host") == "127.0.0.1"
    assert http.request(host="127.0.0.1").port == 80
    assert http.request(host="127.0.0.1", port=8080).get_header("host") == "127.0.0.1:8080"
    assert http.request(host="::1", port=8080).get_header("host") == "[::1]:8080"
    assert http.request(host="::1").get_header("host") == "[::1]"
    assert http.request(host="[::1]", port=81).get_header("host") == "[::1]:81"
    user = http.request(host="127.0.0.1", headers={"host": "example.com"})
    assert user.get_header("host") == "example.com"
    assert user.get_raw_header_names() == ["host"]
    assert not http.request(host="127.0.0.1", set_host=False).has_header("host")


def test_C10_array_host_header_is_refused() -> None:
    with pytest.raises(http.InvalidArgTypeError) as info:
        http.request(host="127.0.0.1", headers={"Host": ["a", "b"]})
    assert info.value.code == "ERR_INVALID_ARG_TYPE"


def test_C08_object_headers_are_validated() -> None:
    with pytest.raises(http.InvalidHTTPTokenError):
        http.request(host="127.0.0.1", headers={"Bad Name": "x"})
    with pytest.raises(http.InvalidCharError):
        http.request(host="127.0.0.1", headers={"X-A": "a\r\nb"})


def test_C09_array_headers_are_fixed_at_construction() -> None:
    req = http.request(
        "http://user:pw@127.0.0.1:8080/", headers=[("X-A", "1"), ("X-B", "2"), ("X-A", "3")]
    )
    assert not req.has_header("host")
    assert not req.has_header("authorization")  # C12: only with object headers
    assert req.headers_sent
    with pytest.raises(http.HeadersSentError) as info:
        req.set_header("X-C", "4")
    assert info.value.code == "ERR_HTTP_HEADERS_SENT"
    flat = http.request(host="127.0.0.1", headers=["X-A", "1", "X-B", "2"])
    assert not flat.has_header("host")
    with pytest.raises(http.HeadersSentError):
        flat.set_header("Host", "x")


async def test_C09_array_headers_sent_in_order_with_duplicates() -> None:
    recorder = Recorder()
    async with socket_server(recorder, require_host_header=False) as (_, port):
        req = http.request(
            f"http://127.0.0.1:{port}/",
            headers=[("X-A", "1"), ("X-B", "2"), ("X-A", "3")],
            agent=False,
        )
        with trio.fail_after(10):
            await (await req.end()).read()
        req = http.request(
            f"http://127.0.0.1:{port}/post",
            method="POST",
            headers=["Host", "h", "X-A", "1"],
            agent=False,
        )
        with trio.fail_after(10):
            assert await (await req.end(b"data")).read() == b"data"
    headers = recorder.requests[0][2]
    assert headers[:3] == [("X-A", "1"), ("X-B", "2"), ("X-A", "3")]
    assert not any(name.lower() == "host" for name, _ in headers)
    posted = recorder.requests[1][2]
    assert posted[:2] == [("Host", "h"), ("X-A", "1")]
    assert recorder.requests[1][3] == b"data"


def test_C12_auth_from_url_and_option() -> None:
    req = http.request("http://us%20er:p%40ss@127.0.0.1/")
    assert req.get_header("authorization") == "Basic dXMgZXI6cEBzcw=="  # "us er:p@ss"
    req = http.request(host="127.0.0.1", auth="a:b")
    assert req.get_header("authorization") == "Basic YTpi"
    req = http.request(host="127.0.0.1", auth="a:b", headers={"Authorization": "Bearer t"})
    assert req.get_header("authorization") == "Bearer t"


@pytest.mark.parametrize("url", ["http://", "not a url", "http://127.0.0.1:99999/"])
def test_C01_invalid_url(url: str) -> None:
    with pytest.raises(http.InvalidURLError) as info:
        http.request(url)
    assert info.value.code == "ERR_INVALID_URL"
    assert isinstance(info.value, TypeError)


def test_C01_url_of_another_type() -> None:
    with pytest.raises(http.InvalidArgTypeError):
        http.request(12)  # type: ignore[arg-type]


async def test_C01_url_forms_and_option_overrides() -> None:
    async with node_server() as port, node_server() as other:
        base = f"http://127.0.0.1:{port}/a?b=1"
        seen = []
        for url in (base, urllib.parse.urlsplit(base), urllib.parse.urlparse(base)):
            _, _, got = await fetch(url, False)  # type: ignore[arg-type]
            seen.append((got["method"], got["url"], got["headers"]["host"]))
        assert seen == [("GET", "/a?b=1", f"127.0.0.1:{port}")] * 3
        # Options override the URL's fields (C01), as a mapping or as keywords.
        wrong = f"http://127.0.0.1:{other}/ignored"
        req = http.request(wrong, {"port": port, "path": "/b", "method": "POST"}, agent=False)
        with trio.fail_after(10):
            got = json.loads(await (await req.end(b"x")).read())
        assert (got["method"], got["url"], got["body"]) == ("POST", "/b", "x")
        assert got["headers"]["host"] == f"127.0.0.1:{port}"
        _, _, got = await fetch(wrong, False, port=port, path="/c")
        assert got["url"] == "/c"
        assert (await node_stats(other))["accepted"] == 0


# --- timeouts --------------------------------------------------------------------------


def stalling_peer(head_delay: float, body_delay: float = 0.0) -> Callable[..., Awaitable[None]]:
    """A raw peer that answers after ``head_delay`` and sends the second half of the body
    ``body_delay`` later."""

    async def peer(stream: trio.abc.Stream) -> None:
        client = RawClient(stream)
        await client.read_head_bytes()
        await trio.sleep(head_delay)
        await client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok")
        await trio.sleep(body_delay)
        await client.send(b"ok")
        await trio.sleep_forever()

    return peer


async def test_C47_set_timeout_emits_timeout_and_does_not_abort(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_agent(stalling_peer(2.0), keep_alive=True) as agent:
        req = http.request("http://mem/", agent=agent)
        fired: list[float] = []
        assert req.set_timeout(0.5, lambda: fired.append(trio.current_time())) is req
        start = trio.current_time()
        res = await req.end()
        assert res.status_code == 200
        assert await res.read() == b"okok"
        assert trio.current_time() - start == pytest.approx(2.0, abs=0.01)
    assert len(fired) == 1
    assert fired[0] - start == pytest.approx(0.5, abs=0.01)
    assert not req.destroyed


async def test_C14_timeout_option_and_C46_timeout_on_the_response(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_agent(stalling_peer(0.0, 2.0), keep_alive=True) as agent:
        req = http.request("http://mem/", agent=agent, timeout=0.5)
        events: list[str] = []
        req.on("timeout", lambda: events.append("req"))
        res = await req.end()
        res.on("timeout", lambda: events.append("res"))
        assert await res.read() == b"okok"
        assert res.complete
    assert events == ["req", "res"]


async def test_agent_timeout_is_only_the_free_connection_idle_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Where we differ from Node (A08/A36, documented): the agent's timeout closes idle
    # pooled connections; it does not start an inactivity timer on every request (that
    # would cost a task per request on the global agent). req.set_timeout() does that.
    async with memory_agent(stalling_peer(2.0), keep_alive=True, timeout=0.5) as agent:
        req = http.request("http://mem/", agent=agent)
        fired: list[float] = []
        req.on("timeout", lambda: fired.append(trio.current_time()))
        res = await req.end()
        assert await res.read() == b"okok"
    assert fired == []
    async with memory_agent(stalling_peer(2.0), keep_alive=True, timeout=0.5) as agent:
        req = http.request("http://mem/", agent=agent, timeout=0.5)
        req.on("timeout", lambda: fired.append(trio.current_time()))
        start = trio.current_time()
        assert await (await req.end()).read() == b"okok"
    assert [round(t - start, 2) for t in fired] == [0.5]


async def test_C47_set_timeout_zero_disables(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_agent(stalling_peer(2.0), keep_alive=True) as agent:
        req = http.request("http://mem/", agent=agent)
        fired: list[float] = []
        req.set_timeout(0.5, lambda: fired.append(trio.current_time()))
        req.set_timeout(0)
        assert await (await req.end()).read() == b"okok"
    assert fired == []
