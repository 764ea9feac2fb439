"""A cancel at each await of the server that touches a stream: afterwards the books are
right (no connection counted that is gone) and the next request is served."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_nodehttp as http

from .conftest import RawClient, get, hello, memory_server


def lockstep_server(server: http.Server, nursery: trio.Nursery) -> RawClient:
    """A connection where every send blocks until the peer receives (no buffering), so
    a cancel can land in the middle of a write."""
    client_side, server_side = trio.testing.lockstep_stream_pair()
    nursery.start_soon(server.serve_stream, server_side)
    return RawClient(client_side)


async def assert_serves(server: http.Server) -> None:
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(get("/next"))
        assert (await client.read_response()).status == 200


async def test_handler_cancelled_mid_write_closes_only_that_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    outcomes: list[str] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        if req.url != "/big":
            await res.end(b"ok")
            return
        with trio.move_on_after(5) as scope:
            await res.write(b"x" * 1_000_000)  # the client never reads
        outcomes.append("cancelled" if scope.cancelled_caught else "sent")

    server = http.create_server(handler)
    async with trio.open_nursery() as nursery:
        client = lockstep_server(server, nursery)
        await client.send(get("/big"))
        await trio.sleep(10)
        assert outcomes == ["cancelled"]
        assert server.statistics().connections_open == 0
        raw = await client.read_until_closed()  # whatever got out before the cancel, then EOF
        assert len(raw) < 1_000_000 and not raw.endswith(b"0\r\n\r\n")
    await assert_serves(server)


async def test_handler_cancels_its_own_body_read_then_answers(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        got = b""
        with trio.move_on_after(1):
            async for chunk in req:
                got += chunk
        await res.end(b"got " + got)

    async with memory_server(handler) as (server, connect):
        client = connect()
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nabc")
        first = await client.read_response()
        # The rest of the body arrives late: the server drains it and reuses the connection.
        await client.send(b"def" + get("/after"))
        second = await client.read_response()
        assert (first.body, second.status) == (b"got abc", 200)
        assert server.statistics().connections_open == 1


@pytest.mark.parametrize("phase", ["idle", "head", "body", "handler", "write"])
async def test_close_all_connections_at_each_phase(
    phase: str, autojump_clock: trio.abc.Clock
) -> None:
    in_handler = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        if req.url == "/next":
            await res.end()
            return
        in_handler.set()
        if phase == "body":
            await req.read()
        elif phase == "handler":
            await trio.sleep_forever()
        elif phase == "write":
            await res.write(b"y" * 1_000_000)
        await res.end()

    server = http.create_server(handler)
    async with trio.open_nursery() as nursery:
        client = lockstep_server(server, nursery)
        if phase == "head":
            await client.send(b"GET / HTTP/1.1\r\nHo")
        elif phase == "body":
            await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nab")
        elif phase != "idle":
            await client.send(get())
        if phase in ("body", "handler", "write"):
            await in_handler.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert server.statistics().connections_open == 1
        server.close_all_connections()
        await trio.testing.wait_all_tasks_blocked()
        assert server.statistics().connections_open == 0
    await assert_serves(server)


async def test_cancelling_the_servers_scope_mid_request_closes_the_stream(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write(b"part")
        await trio.sleep_forever()

    server = http.create_server(handler)
    client_side, server_side = trio.testing.memory_stream_pair()
    client = RawClient(client_side)
    with trio.move_on_after(3):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_stream, server_side)
            await client.send(get())
            await trio.sleep_forever()
    assert (await client.read_until_closed()).endswith(b"4\r\npart\r\n")
    assert server.statistics().connections_open == 0


async def test_close_waits_for_active_then_emits_close_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    events: list[str] = []

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await trio.sleep(30)
        await res.end(b"finished")

    server = http.create_server(handler)
    server.on("close", lambda: events.append("close"))
    async with memory_server(server=server) as (_, connect):
        client = connect()
        await client.send(get())
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.close)
            response = await client.read_response()
        assert trio.current_time() - start == pytest.approx(30)
        await server.close()
    assert response.body == b"finished" and response.header("Connection") == "close"
    assert events == ["close"]


async def test_hello_unaffected(autojump_clock: trio.abc.Clock) -> None:
    server = http.create_server(hello)
    await assert_serves(server)
