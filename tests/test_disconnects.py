"""Disconnects reach the handler: ``"close"`` on both sides with Node's timing,
``wait_closed()``/``cancel_on_close()``, and ``ERR_STREAM_DESTROYED`` for a write after
the client left (never a trio exception)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

import pytest
import trio
import trio.testing

import trio_nodehttp as http

from .conftest import get, memory_server, socket_server

Handler = Callable[[http.IncomingMessage, http.ServerResponse], Awaitable[None]]


def post(body: bytes, path: str = "/") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (
        path.encode(),
        len(body),
        body,
    )


# --- the server: "close" on a finished response ---------------------------------------


async def test_close_follows_finish_on_a_finished_response() -> None:
    events: list[str] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        req.on("close", lambda: events.append("req close"))
        res.on("finish", lambda: events.append("finish"))
        res.on("close", lambda: events.append(f"res close finished={res.writable_finished}"))
        await res.end(b"ok")
        events.append("end returned")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get() + get())
        assert (await client.read_response()).body == b"ok"
        assert (await client.read_response()).body == b"ok"
    one = ["finish", "req close", "res close finished=True", "end returned"]
    assert events == one + one


async def test_request_close_comes_after_its_body_is_read() -> None:
    events: list[str] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        req.on("end", lambda: events.append("req end"))
        req.on("close", lambda: events.append("req close"))
        res.on("close", lambda: events.append("res close"))
        if req.url == "/read":
            assert await req.read() == b"body"
        await res.end(b"ok")

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(post(b"body", "/read") + post(b"body", "/unread") + get())
        for _ in range(3):
            assert (await client.read_response()).body == b"ok"
    assert events == [
        *("req end", "req close", "res close"),  # read by the handler
        *("res close", "req end", "req close"),  # answered first, then drained
        *("req end", "req close", "res close"),  # no body: "end" when it is finished
    ]


# --- the server: the client leaves ------------------------------------------------------


async def test_waiting_handler_learns_of_the_disconnect_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Regression: a client that went away was noticed only at a later write.
    seen: list[object] = []
    done = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.on("close", lambda: seen.append(("res close", res.writable_finished)))
        req.on("close", lambda: seen.append(("req close", req.aborted)))
        assert await req.read() == b"body"
        await res.write(b"waiting")
        await res.wait_closed()
        seen.append(("woke", trio.current_time()))
        with pytest.raises(http.HTTPError) as info:
            await res.write(b"too late")
        seen.append(info.value.code)
        assert isinstance(info.value, http.StreamDestroyedError)
        assert res.destroyed and not res.writable_finished
        done.set()

    async with memory_server(handler) as (server, connect):
        client = connect()
        await client.send(post(b"body"))
        await client.read_head_bytes()
        gone_at = trio.current_time()
        await client.stream.aclose()
        with trio.fail_after(300):
            await done.wait()
        with trio.fail_after(300):
            await server.close()  # returns once every connection is gone
        assert server.statistics().connections_open == 0
    assert seen[:2] == [("req close", False), ("res close", False)]
    woke = seen[2]
    assert isinstance(woke, tuple) and woke[0] == "woke"
    assert woke[1] - gone_at < 0.1  # virtual time: no timer is involved
    assert seen[3] == "ERR_STREAM_DESTROYED"


async def test_cancel_on_close_ends_the_work_when_the_client_leaves(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcome: list[str] = []
    ended = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        if req.url == "/other":
            await res.end()
            return
        await res.write(b"streaming")
        with res.cancel_on_close() as scope:
            await trio.sleep_forever()
        outcome.append(f"cancelled={scope.cancelled_caught}")
        ended.set()

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        await client.read_head_bytes()
        await client.stream.aclose()
        with trio.fail_after(300):
            await ended.wait()
        other = connect()
        await other.send(get("/other"))  # the server goes on
        with trio.fail_after(300):
            await other.read_head_bytes()
    assert outcome == ["cancelled=True"]


async def test_write_after_the_client_left_raises_stream_destroyed_not_trio() -> None:
    # Nobody listens for "close": no watching; the write itself finds the stream gone.
    outcome: list[BaseException] = []
    left, failed = trio.Event(), trio.Event()
    watched: list[bool] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write(b"first")
        await left.wait()
        try:
            await res.write(b"second")
        except BaseException as exc:
            outcome.append(exc)
            watched.append(res._watch_done is not None)
            failed.set()
            raise

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        await client.read_head_bytes()
        await client.stream.aclose()
        left.set()
        with trio.fail_after(10):
            await failed.wait()
    (error,) = outcome
    assert watched == [False]  # nobody listened: no watcher task was started
    assert isinstance(error, http.StreamDestroyedError)
    assert error.code == "ERR_STREAM_DESTROYED"


async def test_watching_keeps_pipelined_requests() -> None:
    # The watcher reads the connection while the handler runs: a pipelined request it
    # reads meanwhile is served next, byte for byte.
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        body = await req.read()
        res.on("close", lambda: None)
        if req.url == "/first":
            await trio.sleep(1)  # the second request arrives meanwhile
        await res.end(req.url.encode() + b" " + body)  # type: ignore[union-attr]

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(post(b"one", "/first"))
        await client.send(post(b"two", "/second"))
        with trio.fail_after(10):
            assert (await client.read_response()).body == b"/first one"
            assert (await client.read_response()).body == b"/second two"


async def test_disconnect_with_real_sockets_reaches_wait_closed() -> None:
    woke = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write(b"event: hello\n\n")
        await res.wait_closed()
        woke.set()

    async with socket_server(handler) as (_, port):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(get())
        with trio.fail_after(10):
            assert await stream.receive_some(1000)
        await stream.aclose()
        with trio.fail_after(10):
            await woke.wait()


# --- the SSE example of the server guide ------------------------------------------------


def load_example(name: str) -> ModuleType:
    path = Path(__file__).parent.parent / "docs" / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_sse_example_streams_and_stops_when_the_client_leaves(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sse = load_example("sse")
    finished = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await sse.clock(req, res)
        finished.set()

    async with memory_server(handler) as (_, connect):
        client = connect()
        await client.send(get())
        head = await client.read_head_bytes()
        assert b"text/event-stream" in head
        with trio.fail_after(30):
            while client.buffer.count(b"\n\n") < 3:  # bounded by fail_after
                assert await client._fill()
        assert bytes(client.buffer).startswith(b"14\r\nid: 0\ndata: tick 0\n\n\r\n")
        await client.stream.aclose()
        with trio.fail_after(300):
            await finished.wait()


# --- the client: "close" -----------------------------------------------------------------


async def test_client_close_events_follow_the_response_end() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.end(b"body")

    events: list[str] = []
    async with socket_server(handler) as (_, port), http.Agent(keep_alive=True) as agent:
        req = http.request(f"http://127.0.0.1:{port}/", agent=agent)
        req.on("close", lambda: events.append("req close"))
        res = await req.end()
        res.on("end", lambda: events.append("res end"))
        res.on("close", lambda: events.append("res close"))
        assert await res.read() == b"body"
    assert events == ["res end", "req close", "res close"]


async def test_client_close_events_when_the_server_cuts_the_response() -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write(b"partial")
        res.destroy()

    events: list[str] = []
    async with socket_server(handler) as (_, port):
        req = http.request(f"http://127.0.0.1:{port}/")
        req.on("close", lambda: events.append("req close"))
        res = await req.end()
        res.on("aborted", lambda: events.append("res aborted"))
        res.on("close", lambda: events.append("res close"))
        with trio.fail_after(10), pytest.raises(http.ConnectionResetError):
            await res.read()
    assert events == ["res aborted", "req close", "res close"]
    assert res.aborted and not res.complete


async def test_client_request_close_after_a_failed_request() -> None:
    events: list[str] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.destroy()

    async with socket_server(handler) as (_, port):
        req = http.request(f"http://127.0.0.1:{port}/")
        req.on("close", lambda: events.append("req close"))
        with trio.fail_after(10), pytest.raises(http.ConnectionResetError):
            await req.end()
    assert events == ["req close"]


async def test_cancelled_wait_closed_leaves_the_connection_usable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The await that watches is cancelled; the response then finishes normally: the
    # watcher stops, and the same connection carries the next request.
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        with trio.move_on_after(5) as scope:
            await res.wait_closed()
        assert scope.cancelled_caught
        await res.end(b"after " + (req.url or "").encode())
        await res.wait_closed()  # finished: returns at once

    async with memory_server(handler) as (server, connect):
        client = connect()
        await client.send(get("/one"))
        assert (await client.read_response()).body == b"after /one"
        await client.send(get("/two"))
        assert (await client.read_response()).body == b"after /two"
        stats = server.statistics()
        assert (stats.connections_open, stats.requests_served) == (1, 2)


async def test_server_shutdown_cancels_a_handler_waiting_for_close() -> None:
    waiting = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write(b"streaming")
        waiting.set()
        await res.wait_closed()

    async with socket_server(handler) as (server, port):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(get())
            with trio.fail_after(10):
                await waiting.wait()
                server.close_all_connections()
                while await stream.receive_some(1000):  # bounded: the server closes it
                    pass
        assert server.statistics().connections_open == 0
