"""Server timeouts as cancel-scope deadlines, driven by trio's autojump clock: a 300 s
timeout takes milliseconds, and the moment each one fires is asserted exactly."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_nodehttp as http

from .conftest import get, hello, memory_server

CANNED_408 = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"


async def test_S16_headers_timeout_from_first_byte(autojump_clock: trio.abc.Clock) -> None:
    called: list[str] = []
    async with memory_server(lambda req, res: called.append("request"), headers_timeout=10) as (
        _,
        connect,
    ):
        client = connect()
        start = trio.current_time()
        await client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        raw = await client.read_until_closed()
        elapsed = trio.current_time() - start
    assert raw == CANNED_408
    assert elapsed == pytest.approx(10)
    assert called == []


async def test_headers_timeout_counts_from_connection_start_when_silent(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with memory_server(hello, headers_timeout=7, request_timeout=8) as (_, connect):
        client = connect()
        start = trio.current_time()
        raw = await client.read_until_closed()
    assert raw == CANNED_408
    assert trio.current_time() - start == pytest.approx(7)


async def test_S12_request_timeout_on_slow_body(autojump_clock: trio.abc.Clock) -> None:
    seen: list[str] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        try:
            await req.read()
        except trio.Cancelled:
            seen.append("cancelled")
            raise

    async with memory_server(handler) as (_, connect):  # Node's defaults: 60 s and 300 s
        client = connect()
        start = trio.current_time()
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        raw = await client.read_until_closed()
    assert raw == CANNED_408
    assert trio.current_time() - start == pytest.approx(300)
    assert seen == ["cancelled"]


async def test_request_timeout_is_lifted_once_the_body_is_complete(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await req.read()
        await trio.sleep(1000)  # a slow handler is not a slow client
        await res.end(b"late")

    async with memory_server(handler, request_timeout=30, headers_timeout=10) as (_, connect):
        client = connect()
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx")
        assert (await client.read_response()).body == b"late"


async def test_S18_keep_alive_idle_closes_quietly_after_timeout_plus_buffer(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with memory_server(hello, keep_alive_timeout=5) as (server, connect):
        client = connect()
        await client.send(get())
        response = await client.read_response()
        idle_from = trio.current_time()
        rest = await client.read_until_closed()
        assert rest == b""
        assert trio.current_time() - idle_from == pytest.approx(6)
        assert response.header("Keep-Alive") == "timeout=5"
        await trio.testing.wait_all_tasks_blocked()
        assert server.statistics().connections_open == 0


async def test_S17_keep_alive_timeout_zero_never_closes_and_sends_no_hint(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with memory_server(hello, keep_alive_timeout=0) as (server, connect):
        client = connect()
        await client.send(get())
        response = await client.read_response()
        await trio.sleep(10_000)
        assert server.statistics().connections_idle == 1
        await client.send(get())
        assert (await client.read_response()).body == b"hello"
    assert response.header("Keep-Alive") is None
    assert response.header("Connection") == "keep-alive"


async def test_keep_alive_timeout_restarts_after_each_request(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with memory_server(hello, keep_alive_timeout=2, keep_alive_timeout_buffer=0) as (
        _,
        connect,
    ):
        client = connect()
        for _ in range(5):
            await client.send(get())
            await client.read_response()
            await trio.sleep(1.5)  # less than the keep-alive timeout each time
        start = trio.current_time()
        assert await client.read_until_closed() == b""
        assert trio.current_time() - start == pytest.approx(0.5)


async def test_S21_socket_timeout_without_listener_closes(autojump_clock: trio.abc.Clock) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write(b"partial")
        await trio.sleep_forever()

    async with memory_server(handler, timeout=3) as (_, connect):
        client = connect()
        await client.send(get())
        start = trio.current_time()
        raw = await client.read_until_closed()
    assert raw.endswith(b"partial\r\n")
    assert trio.current_time() - start == pytest.approx(3)


async def test_S21_socket_timeout_with_listener_only_notifies(
    autojump_clock: trio.abc.Clock,
) -> None:
    fired: list[float] = []
    release = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await release.wait()
        await res.end(b"done")

    server = http.create_server(handler, timeout=3)

    def on_timeout(stream: trio.abc.Stream) -> None:
        fired.append(trio.current_time())
        release.set()

    server.on("timeout", on_timeout)
    async with memory_server(server=server) as (_, connect):
        client = connect()
        start = trio.current_time()
        await client.send(get())
        assert (await client.read_response()).body == b"done"
    assert [t - start for t in fired] == [pytest.approx(3)]


async def test_M11_request_set_timeout_callback(autojump_clock: trio.abc.Clock) -> None:
    fired: list[str] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        req.set_timeout(2, lambda: fired.append("req"))
        body = await req.read()
        await res.end(body)

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\na")
        await trio.sleep(5)
        await client.send(b"b")
        assert (await client.read_response()).body == b"ab"
    assert fired == ["req"]


def test_S13_timeout_validation() -> None:
    assert http.create_server(request_timeout=20).headers_timeout == 20
    assert http.create_server(request_timeout=100).headers_timeout == 60
    assert http.create_server(request_timeout=0).headers_timeout == 60
    with pytest.raises(http.OutOfRangeError) as info:
        http.create_server(headers_timeout=10, request_timeout=5)
    assert info.value.code == "ERR_OUT_OF_RANGE"
    with pytest.raises(http.OutOfRangeError):
        http.create_server(keep_alive_timeout=-1)
    with pytest.raises(http.InvalidArgTypeError) as type_info:
        http.create_server(timeout="5")
    assert type_info.value.code == "ERR_INVALID_ARG_TYPE"
