"""Listeners that raise from a background task: the one policy (``emit_in_background``).

A ``"timeout"`` listener runs from an inactivity watcher, not from an await of the
user's. Its exception must end only the request (client) or connection (server) it
belongs to: it surfaces from that request's await, or is logged on the ``trio_nodehttp``
logger when nothing awaits it. The run, the agent and the next request go on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
import trio

import trio_nodehttp as http

from .conftest import get, memory_server, socket_server


class ListenerBoom(Exception):
    pass


def boom() -> None:
    raise ListenerBoom("from a timeout listener")


def stalling_until(
    release: trio.Event, *, head_first: bool = False, arrived: trio.Event | None = None
) -> Callable[[http.IncomingMessage, http.ServerResponse], Awaitable[None]]:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        if req.url == "/stall":
            if arrived is not None:
                arrived.set()
            if head_first:
                await res.write(b"start")
            await release.wait()
        await res.end(b"done")

    return handler


async def test_raising_timeout_listener_on_the_global_agent_fails_only_its_request() -> None:
    # Regression: the listener ran in the global agent's system task, so its exception
    # ended the whole run with TrioInternalError.
    release = trio.Event()
    async with socket_server(stalling_until(release)) as (_, port):
        req = http.request(f"http://127.0.0.1:{port}/stall", timeout=0.2)
        req.on("timeout", boom)
        with trio.fail_after(10), pytest.raises(ListenerBoom):
            await req.end()
        assert req.destroyed
        with pytest.raises(ListenerBoom):
            await req.end()  # every later await says the same
        release.set()
        res = await http.get(f"http://127.0.0.1:{port}/next")
        assert await res.read() == b"done"


async def test_raising_timeout_listener_on_an_own_agent_stays_inside_the_block() -> None:
    # Regression: the exception escaped the agent's `async with` block.
    release = trio.Event()
    async with (
        socket_server(stalling_until(release)) as (_, port),
        http.Agent(keep_alive=True) as agent,
    ):
        req = http.request(f"http://127.0.0.1:{port}/stall", agent=agent, timeout=0.2)
        req.on("timeout", boom)
        with trio.fail_after(10), pytest.raises(ListenerBoom):
            await req.end()
        release.set()
        res = await http.get(f"http://127.0.0.1:{port}/next", agent=agent)
        assert await res.read() == b"done"
        stats = agent.statistics()
        assert stats.total_connections == 1  # the destroyed one is gone
        (pool,) = stats.pools.values()
        assert (pool.active, pool.free, pool.queued) == (0, 1, 0)


async def test_raising_timeout_listener_on_the_response_fails_its_read() -> None:
    release = trio.Event()
    async with (
        socket_server(stalling_until(release, head_first=True)) as (_, port),
        http.Agent(keep_alive=True) as agent,
    ):
        req = http.request(f"http://127.0.0.1:{port}/stall", agent=agent, timeout=0.2)
        res = await req.end()
        res.on("timeout", boom)
        with trio.fail_after(10), pytest.raises(ListenerBoom):
            await res.read()
        assert res.aborted and not res.complete
        release.set()
        res = await http.get(f"http://127.0.0.1:{port}/next", agent=agent)
        assert await res.read() == b"done"


async def test_destroy_with_an_error_is_raised_by_the_pending_await() -> None:
    release, arrived = trio.Event(), trio.Event()
    async with (
        socket_server(stalling_until(release, arrived=arrived)) as (_, port),
        http.Agent() as agent,
    ):
        req = http.request(f"http://127.0.0.1:{port}/stall", agent=agent)
        outcome: list[BaseException] = []

        async def end() -> None:
            try:
                await req.end()
            except ListenerBoom as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(end)
            with trio.fail_after(10):
                await arrived.wait()
            req.destroy(ListenerBoom("destroyed"))
        release.set()
    assert [str(exc) for exc in outcome] == ["destroyed"]


async def test_raising_server_timeout_listener_is_logged_and_ends_only_its_connection(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    release = trio.Event()
    server = http.create_server(stalling_until(release), timeout=3)
    server.on("timeout", lambda stream: boom())
    with caplog.at_level(logging.ERROR, logger="trio_nodehttp"):
        async with memory_server(server=server) as (_, connect):
            stalled = connect()
            await stalled.send(get("/stall"))
            assert await stalled.read_until_closed() == b""
            other = connect()
            await other.send(get("/next"))
            assert (await other.read_response()).body == b"done"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is ListenerBoom
    assert "timeout" in errors[0].getMessage()
