"""Agent pools, checked from both ends: the agent's own books (statistics, views) and
the server's (tests/node/client_pool_server.js reports the remote port that served each
request and counts the connections it accepted).

Where no real socket is needed, connections are memory stream pairs served by our own
server (or a raw peer) and time is pytest-trio's ``autojump_clock``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import trio_nodehttp as http
from trio_nodehttp import PoolStatistics
from trio_nodehttp._agent import PooledConnection

from .conftest import (
    MemoryAgent,
    RawClient,
    Serve,
    check_books,
    get,
    hello,
    memory_agent,
    monitored,
    raw_client,
)

POOL_SERVER = Path(__file__).parent / "node" / "client_pool_server.js"

# --- helpers ---------------------------------------------------------------------------


@asynccontextmanager
async def node_server(config: dict[str, Any] | None = None) -> AsyncIterator[int]:
    """tests/node/client_pool_server.js on 127.0.0.1; yields its port, stops it after."""
    node = shutil.which("node")
    assert node, "node must be installed"
    process = await trio.lowlevel.open_process(
        [node, str(POOL_SERVER), json.dumps(config or {})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = b""
        with trio.fail_after(15):
            while b"\n" not in line:
                data = await process.stdout.receive_some()
                assert data, "the node server exited before printing its port"
                line += data
        yield int(json.loads(line)["port"])
    finally:
        with trio.CancelScope(shield=True):
            await process.stdin.aclose()
            with trio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdout.aclose()


async def node_stats(port: int, *, reset: bool = False) -> dict[str, int]:
    """The Node server's books, asked on a connection of its own (left out of them)."""
    with trio.fail_after(10):
        async with raw_client(port) as client:
            await client.send(get("/stats?reset=1" if reset else "/stats"))
            return json.loads((await client.read_response()).body)  # type: ignore[no-any-return]


async def fetch(
    url: str, agent: http.Agent | bool | None, **options: Any
) -> tuple[http.ClientRequest, http.IncomingMessage, dict[str, Any]]:
    """One request, its response read whole; the Node server's JSON body decoded."""
    req = http.request(url, agent=agent, **options)
    with trio.fail_after(10):
        res = await req.end()
        body = await res.read()
    return req, res, json.loads(body) if body else {}


async def poll_until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10) -> None:
    """Wait for what happens outside this trio run (a real server's keep-alive timer, a
    close seen by the Node process): checked every 10 ms, for at most ``timeout`` s.
    Only for real sockets; memory streams use events and the autojump clock."""
    with trio.fail_after(timeout):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await trio.sleep(0.01)


def no_open_connections(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await node_stats(port))["open"] == 0

    return check


def pool(agent: http.Agent, name: str) -> PoolStatistics | None:
    return agent.statistics().pools.get(name)


# --- limits, seen from the server ------------------------------------------------------


async def test_A04_max_sockets_two_for_ten_concurrent_requests() -> None:
    async with node_server() as port, http.Agent(keep_alive=True, max_sockets=2) as agent:
        name = agent.get_name("127.0.0.1", port)
        results: list[tuple[int, int]] = []

        async def one() -> None:
            _, res, body = await fetch(f"http://127.0.0.1:{port}/slow?ms=30", agent)
            results.append((res.status_code or 0, body["remotePort"]))
            assert agent.total_socket_count <= 2

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(one)
                await trio.testing.wait_all_tasks_blocked()
                queued = pool(agent, name)
                assert queued is not None
                assert queued.active + queued.connecting == 2
                assert queued.queued == 8
                assert agent.requests == {name: 8}
        stats = await node_stats(port)
        assert agent.statistics().pools[name] == PoolStatistics(0, 2, 0, 0)
    assert [status for status, _ in results] == [200] * 10
    assert len({remote for _, remote in results}) == 2
    assert stats["accepted"] == 2
    assert stats["maxConcurrent"] == 2


async def test_A05_max_total_sockets_two_origins_queued_behind_each_other() -> None:
    # Origin A takes both slots of the total cap; B's requests queue with no connection
    # of their own. When A's queue runs dry, its connections must make room for B (Node:
    # removeSocket() opens a socket for the first other origin with requests), not sit
    # idle in A's free pool until the server closes them (here: after 60 s).
    config = {"keepAliveTimeout": 60000}
    async with (
        node_server(config) as port_a,
        node_server(config) as port_b,
        http.Agent(keep_alive=True, max_sockets=2, max_total_sockets=2) as agent,
    ):
        statuses: list[int] = []

        async def one(port: int) -> None:
            _, res, _ = await fetch(f"http://127.0.0.1:{port}/slow?ms=20", agent)
            statuses.append(res.status_code or 0)
            assert agent.total_socket_count <= 2

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(one, port_a)
                await trio.testing.wait_all_tasks_blocked()
                for _ in range(4):
                    nursery.start_soon(one, port_b)
                await trio.testing.wait_all_tasks_blocked()
                assert agent.total_socket_count == 2
                assert agent.requests == {
                    agent.get_name("127.0.0.1", port_a): 2,
                    agent.get_name("127.0.0.1", port_b): 4,
                }
        stats_a = await node_stats(port_a)
        stats_b = await node_stats(port_b)
    assert statuses == [200] * 8
    assert stats_a["maxConcurrent"] <= 2
    assert stats_b["maxConcurrent"] <= 2
    assert stats_b["accepted"] >= 1


async def test_A05_max_total_sockets_idle_connections_of_one_origin_make_room() -> None:
    # A's two connections are idle in the free pool and fill the total cap; a request to
    # B must not wait for them to time out. (Node would queue it until the server closes
    # one of A's idle sockets; here that is 60 s away.)
    config = {"keepAliveTimeout": 60000}
    async with (
        node_server(config) as port_a,
        node_server(config) as port_b,
        http.Agent(keep_alive=True, max_total_sockets=2) as agent,
    ):
        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(fetch, f"http://127.0.0.1:{port_a}/slow?ms=20", agent)
        name_a = agent.get_name("127.0.0.1", port_a)
        assert agent.statistics().pools[name_a] == PoolStatistics(0, 2, 0, 0)
        with trio.fail_after(10):
            _, res, _ = await fetch(f"http://127.0.0.1:{port_b}/", agent)
        assert res.status_code == 200
        assert agent.total_socket_count <= 2


@pytest.mark.parametrize("scheduling", ["lifo", "fifo"])
async def test_A17_scheduling_picks_last_or_first_freed(scheduling: str) -> None:
    async with (
        node_server() as port,
        http.Agent(keep_alive=True, scheduling=scheduling) as agent,
    ):
        freed: list[int] = []

        async def one(ms: int) -> None:
            _, _, body = await fetch(f"http://127.0.0.1:{port}/slow?ms={ms}", agent)
            freed.append(body["remotePort"])

        # Three connections, freed in a known order (each response ends 150 ms apart).
        async with trio.open_nursery() as nursery:
            for ms in (50, 200, 350):
                nursery.start_soon(one, ms)
        assert len(set(freed)) == 3
        assert agent.statistics().pools[agent.get_name("127.0.0.1", port)].free == 3
        req, _, body = await fetch(f"http://127.0.0.1:{port}/", agent)
        assert req.reused_socket
        expected = freed[-1] if scheduling == "lifo" else freed[0]
        assert body["remotePort"] == expected
        assert (await node_stats(port))["accepted"] == 3


async def test_A19_A39_keep_alive_false_closes_after_each_response() -> None:
    async with node_server() as port, http.Agent() as agent:
        ports = []
        for _ in range(2):
            req, res, body = await fetch(f"http://127.0.0.1:{port}/", agent)
            assert body["headers"]["connection"] == "close"
            assert res.headers["connection"] == "close"
            assert not req.reused_socket
            assert agent.statistics().total_connections == 0
            assert agent.statistics().pools == {}
            ports.append(body["remotePort"])
        assert ports[0] != ports[1]
        assert (await node_stats(port))["accepted"] == 2


async def test_A19_A39_keep_alive_false_hands_the_connection_to_queued_requests() -> None:
    # keep_alive=False with a finite max_sockets: "Connection: keep-alive" is sent and
    # queued requests reuse the connection, which is closed once nothing waits.
    async with node_server() as port, http.Agent(max_sockets=1) as agent:
        bodies: list[dict[str, Any]] = []

        async def one() -> None:
            _, _, body = await fetch(f"http://127.0.0.1:{port}/slow?ms=20", agent)
            bodies.append(body)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(one)
        assert [body["headers"]["connection"] for body in bodies] == ["keep-alive"] * 3
        assert len({body["remotePort"] for body in bodies}) == 1
        assert agent.statistics().total_connections == 0
        assert agent.statistics().pools == {}
        assert (await node_stats(port))["accepted"] == 1


async def test_A06_max_free_sockets_closes_the_surplus() -> None:
    async with node_server() as port, http.Agent(keep_alive=True, max_free_sockets=1) as agent:
        async with trio.open_nursery() as nursery:
            for ms in (10, 60, 110):
                nursery.start_soon(fetch, f"http://127.0.0.1:{port}/slow?ms={ms}", agent)
        stats = agent.statistics()
        assert stats.total_connections == 1
        assert stats.pools[agent.get_name("127.0.0.1", port)] == PoolStatistics(0, 1, 0, 0)
        assert (await node_stats(port))["accepted"] == 3


# --- names, options, statistics --------------------------------------------------------


def test_A14_A15_get_name() -> None:
    agent = http.Agent()
    assert agent.get_name() == "localhost::"
    assert agent.get_name(port=80, local_address="192.168.1.1") == "localhost:80:192.168.1.1"
    assert (
        agent.get_name(host="0.0.0.0", port=80, local_address="192.168.1.1")
        == "0.0.0.0:80:192.168.1.1"
    )
    assert agent.get_name(family=4) == "localhost:::4"
    assert agent.get_name(family=6) == "localhost:::6"
    assert agent.get_name(socket_path="/s") == "localhost:::/s"
    assert agent.get_name(family=6, socket_path="/s") == "localhost:::6:/s"
    for family in (0, None, "bogus"):
        assert agent.get_name(family=family) == "localhost::"  # type: ignore[arg-type]
    assert agent.get_name("example.com", 8080) == "example.com:8080:"


async def test_A14_pool_key_of_a_request() -> None:
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        await fetch(f"http://127.0.0.1:{port}/", agent)
        assert list(agent.statistics().pools) == [f"127.0.0.1:{port}:"]
        assert list(agent.free_sockets) == [f"127.0.0.1:{port}:"]


def test_A07_scheduling_must_be_fifo_or_lifo() -> None:
    with pytest.raises(http.InvalidArgValueError) as info:
        http.Agent(scheduling="filo")
    assert info.value.code == "ERR_INVALID_ARG_VALUE"
    assert isinstance(info.value, (TypeError, ValueError))
    assert info.value.args[0] == (
        "The argument 'scheduling' must be one of: 'fifo', 'lifo'. Received 'filo'"
    )
    assert http.Agent().scheduling == "lifo"
    assert http.Agent(scheduling="fifo").scheduling == "fifo"


@pytest.mark.parametrize("value", [0, -1, 0.5, math.nan])
def test_A05_max_total_sockets_below_one_is_out_of_range(value: float) -> None:
    with pytest.raises(http.OutOfRangeError) as info:
        http.Agent(max_total_sockets=value)
    assert info.value.code == "ERR_OUT_OF_RANGE"


@pytest.mark.parametrize("value", ["3", None, True])
def test_A05_max_total_sockets_must_be_a_number(value: Any) -> None:
    with pytest.raises(http.InvalidArgTypeError) as info:
        http.Agent(max_total_sockets=value)
    assert info.value.code == "ERR_INVALID_ARG_TYPE"


def test_A02_A04_A06_A09_defaults_and_zero_values() -> None:
    agent = http.Agent()
    assert agent.keep_alive is False
    assert agent.max_sockets == math.inf
    assert agent.max_total_sockets == math.inf
    assert agent.max_free_sockets == 256
    assert agent.timeout is None
    assert agent.agent_keep_alive_timeout_buffer == 1.0
    assert http.Agent(max_total_sockets=math.inf).max_total_sockets == math.inf
    assert http.Agent(max_sockets=0).max_sockets == math.inf
    assert http.Agent(max_free_sockets=0).max_free_sockets == 256
    for buffer in (-1, math.inf, math.nan, "2", None):
        agent = http.Agent(agent_keep_alive_timeout_buffer=buffer)  # type: ignore[arg-type]
        assert agent.agent_keep_alive_timeout_buffer == 1.0
    assert http.Agent(agent_keep_alive_timeout_buffer=0).agent_keep_alive_timeout_buffer == 0


def test_A35_global_agent() -> None:
    agent = http.global_agent
    assert agent.keep_alive is True
    assert agent.scheduling == "lifo"
    assert agent.timeout == 5.0


async def test_statistics_and_views_through_a_request_life() -> None:
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        empty = agent.statistics()
        assert empty.total_connections == 0
        assert dict(empty.pools) == {}
        assert (agent.sockets, agent.free_sockets, agent.requests) == ({}, {}, {})

        name = agent.get_name("127.0.0.1", port)
        req = http.request(f"http://127.0.0.1:{port}/", agent=agent)
        with trio.fail_after(10):
            res = await req.end()
        busy = agent.statistics()
        assert busy.total_connections == 1
        assert busy.pools[name] == PoolStatistics(active=1, free=0, connecting=0, queued=0)
        assert agent.sockets == {name: (req.socket,)}
        assert agent.free_sockets == {}
        assert "1 active" in str(busy) and name in str(busy)

        await res.read()
        idle = agent.statistics()
        assert idle.pools[name] == PoolStatistics(active=0, free=1, connecting=0, queued=0)
        assert agent.sockets == {}
        assert agent.free_sockets == {name: (req.socket,)}
        assert str(idle).startswith("1 connections")
        assert "1 free" in str(idle)
        # A snapshot does not change afterwards.
        assert busy.pools[name].active == 1
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            idle.total_connections = 5  # type: ignore[misc]

        # A34: destroy() closes everything; the agent stays usable.
        agent.destroy()
        assert agent.statistics().total_connections == 0
        assert dict(agent.statistics().pools) == {}
        req, res, _ = await fetch(f"http://127.0.0.1:{port}/", agent)
        assert res.status_code == 200
        assert not req.reused_socket
        assert (await node_stats(port))["accepted"] == 2


async def test_A19_response_with_connection_close_is_not_pooled() -> None:
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        req, res, first = await fetch(f"http://127.0.0.1:{port}/close", agent)
        assert res.headers["connection"] == "close"
        assert agent.statistics().total_connections == 0
        req, _, second = await fetch(f"http://127.0.0.1:{port}/", agent)
        assert not req.reused_socket
        assert second["remotePort"] != first["remotePort"]


async def test_A35_replacing_the_global_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        monkeypatch.setattr(http, "global_agent", agent)
        req, _, _ = await fetch(f"http://127.0.0.1:{port}/", None)
        assert req.agent is agent
        assert agent.statistics().pools[agent.get_name("127.0.0.1", port)].free == 1


async def test_response_destroy_mid_body_closes_the_connection() -> None:
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        with trio.fail_after(10):
            res = await http.get(f"http://127.0.0.1:{port}/big?mb=4", agent=agent)
            assert await res.__anext__()
            res.destroy()
            assert res.aborted
            assert agent.statistics().total_connections == 0
            with pytest.raises(http.ConnectionResetError):
                await res.read()
        req, res, _ = await fetch(f"http://127.0.0.1:{port}/", agent)
        assert res.status_code == 200
        assert not req.reused_socket


async def test_A34_destroy_closes_a_connection_in_use() -> None:
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        with trio.fail_after(10):
            res = await http.get(f"http://127.0.0.1:{port}/big?mb=4", agent=agent)
            first = await res.__anext__()
            assert first
            agent.destroy()
            assert agent.statistics().total_connections == 0
            with pytest.raises(http.HTTPError):
                await res.read()
            assert res.aborted
            assert not res.complete


# --- connections ending while idle -----------------------------------------------------


async def test_A22_free_connection_leaves_the_pool_when_the_server_closes_it() -> None:
    async with (
        node_server({"keepAliveTimeout": 200}) as port,
        http.Agent(keep_alive=True) as agent,
    ):
        name = agent.get_name("127.0.0.1", port)
        _, _, first = await fetch(f"http://127.0.0.1:{port}/ka", agent)
        assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
        await poll_until(lambda: pool(agent, name) is None)  # the server's 200 ms timer
        assert agent.statistics().total_connections == 0
        req, res, second = await fetch(f"http://127.0.0.1:{port}/ka", agent)
        assert res.status_code == 200
        assert not req.reused_socket
        assert second["remotePort"] != first["remotePort"]
        assert (await node_stats(port))["accepted"] == 2


async def test_A27_keep_alive_hint_not_above_the_buffer_stops_pooling() -> None:
    async with node_server() as port, http.Agent(keep_alive=True) as agent:
        name = agent.get_name("127.0.0.1", port)
        _, res, _ = await fetch(f"http://127.0.0.1:{port}/ka?timeout=1", agent)
        assert res.headers["keep-alive"] == "timeout=1"
        assert pool(agent, name) is None
        assert agent.statistics().total_connections == 0
        # A longer hint: pooled.
        _, _, body = await fetch(f"http://127.0.0.1:{port}/ka?timeout=3", agent)
        assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
        req, _, again = await fetch(f"http://127.0.0.1:{port}/", agent)
        assert req.reused_socket
        assert again["remotePort"] == body["remotePort"]


async def test_A27_smaller_buffer_lets_a_short_hint_pool() -> None:
    async with (
        node_server() as port,
        http.Agent(keep_alive=True, agent_keep_alive_timeout_buffer=0.5) as agent,
    ):
        await fetch(f"http://127.0.0.1:{port}/ka?timeout=1", agent)
        assert pool(agent, agent.get_name("127.0.0.1", port)) == PoolStatistics(0, 1, 0, 0)


async def test_A08_agent_timeout_closes_a_free_connection_real_socket() -> None:
    async with node_server() as port, http.Agent(keep_alive=True, timeout=0.3) as agent:
        name = agent.get_name("127.0.0.1", port)
        await fetch(f"http://127.0.0.1:{port}/ka", agent)
        freed_at = trio.current_time()
        assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
        await poll_until(lambda: pool(agent, name) is None)  # the agent's 0.3 s timer
        assert trio.current_time() - freed_at >= 0.29
        assert agent.statistics().total_connections == 0
        await poll_until(no_open_connections(port))  # Node sees the close


async def test_A08_agent_timeout_closes_a_free_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = http.create_server(hello)
    async with memory_agent(server.serve_stream, keep_alive=True, timeout=0.3) as agent:
        name = agent.get_name("mem", 80)
        res = await http.get("http://mem/", agent=agent)
        assert await res.read() == b"hello"
        assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
        await trio.sleep(0.29)
        assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
        await trio.sleep(0.02)
        assert pool(agent, name) is None
        assert agent.statistics().total_connections == 0
        # The next request opens a new connection.
        req = http.request("http://mem/", agent=agent)
        assert await (await req.end()).read() == b"hello"
        assert not req.reused_socket
        assert agent.opened == 2


async def test_A27_hint_shortens_a_finite_agent_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = http.create_server(hello, keep_alive_timeout=3)  # "Keep-Alive: timeout=3"
    async with memory_agent(server.serve_stream, keep_alive=True, timeout=10) as agent:
        name = agent.get_name("mem", 80)
        res = await http.get("http://mem/", agent=agent)
        assert res.headers["keep-alive"] == "timeout=3"
        await res.read()
        await trio.sleep(1.99)  # 3 s less the 1 s buffer
        assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
        await trio.sleep(0.02)
        assert pool(agent, name) is None


async def test_A28_hint_ignored_without_agent_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # No agent timeout: the hint does not shorten anything; the connection stays until
    # the server itself closes it (keep_alive_timeout 3 s + its 1 s buffer).
    server = http.create_server(hello, keep_alive_timeout=3)
    async with memory_agent(server.serve_stream, keep_alive=True) as agent:
        name = agent.get_name("mem", 80)
        await (await http.get("http://mem/", agent=agent)).read()
        await trio.sleep(3.5)
        assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
        await trio.sleep(1)
        assert pool(agent, name) is None


@pytest.mark.parametrize(
    ("hint", "pooled"),
    [("timeout=1", False), ("timeout=1, max=5", False), ("max=5, timeout=1", True)],
)
async def test_A29_hint_must_start_with_timeout(hint: str, pooled: bool) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        res.set_header("Keep-Alive", hint)
        await res.end(b"ok")

    server = http.create_server(handler)
    async with memory_agent(server.serve_stream, keep_alive=True) as agent:
        res = await http.get("http://mem/", agent=agent)
        assert res.headers["keep-alive"] == hint
        await res.read()
        assert (pool(agent, agent.get_name("mem", 80)) is not None) is pooled


async def test_A24_bytes_on_an_idle_connection_drop_it() -> None:
    answered = trio.Event()
    spoke = trio.Event()

    async def peer(stream: trio.abc.Stream) -> None:
        client = RawClient(stream)
        await client.read_head_bytes()
        await client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        answered.set()
        await spoke.wait()
        await client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra")
        await trio.sleep_forever()

    async with memory_agent(peer, keep_alive=True) as agent:
        name = agent.get_name("mem", 80)
        res = await http.get("http://mem/", agent=agent)
        assert await res.read() == b"ok"
        assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
        spoke.set()
        await trio.testing.wait_all_tasks_blocked()
        assert pool(agent, name) is None
        assert agent.statistics().total_connections == 0


# --- stale connections -----------------------------------------------------------------


@asynccontextmanager
async def stale_server() -> AsyncIterator[tuple[int, list[tuple[int, str, bytes]]]]:
    """A raw server that answers the first request of each connection (keep-alive,
    body ``connection N``), then closes that connection as soon as the next request
    arrives, without reading it: the unread bytes make the kernel reset it.

    Yields the port and, per answered request, (connection number, request line, body).
    """
    answered: list[tuple[int, str, bytes]] = []
    count = 0

    async def handle(stream: trio.SocketStream) -> None:
        nonlocal count
        count += 1
        number = count
        async with stream:
            client = RawClient(stream)
            try:
                head = await client.read_head_bytes()
            except EOFError:
                return
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(client.buffer) < length:
                assert await client._fill()
            received = bytes(client.buffer[:length])
            del client.buffer[:length]
            body = f"connection {number}".encode()
            # Recorded before answering: the client may act on the answer before this
            # task runs again.
            answered.append((number, head.split(b"\r\n")[0].decode(), received))
            await client.send(
                b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            if not client.buffer:
                await trio.lowlevel.wait_readable(stream.socket)
            stream.socket.close()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
        )
        yield listeners[0].socket.getsockname()[1], answered
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("PUT", b"data"), ("DELETE", None)])
async def test_A41_retry_stale_retries_an_idempotent_request_on_a_new_connection(
    method: str, body: bytes | None
) -> None:
    async with stale_server() as (port, answered), http.Agent(keep_alive=True) as agent:
        assert agent.retry_stale
        url = f"http://127.0.0.1:{port}/"
        with trio.fail_after(10):
            assert await (await http.get(url, agent=agent)).read() == b"connection 1"
            req = http.request(url, method=method, agent=agent)
            res = await req.end(body)
            assert await res.read() == b"connection 2"
        assert not req.reused_socket  # it ended on a fresh connection
        assert answered == [
            (1, "GET / HTTP/1.1", b""),
            (2, f"{method} / HTTP/1.1", body or b""),
        ]
        assert agent.statistics().pools[agent.get_name("127.0.0.1", port)] == PoolStatistics(
            0, 1, 0, 0
        )


async def _post_in_one_piece(req: http.ClientRequest) -> None:
    await req.end(b"all of it")


async def _post_streamed(req: http.ClientRequest) -> None:
    await req.write(b"part one, ")
    await req.end(b"part two")


async def _put_streamed(req: http.ClientRequest) -> None:
    await req.write(b"part one, ")
    await req.end(b"part two")


@pytest.mark.parametrize(
    ("method", "send"),
    [("POST", _post_in_one_piece), ("POST", _post_streamed), ("PUT", _put_streamed)],
)
async def test_A41_stale_connection_not_retried_for_unsafe_or_streamed_requests(
    method: str, send: Callable[[http.ClientRequest], Awaitable[None]]
) -> None:
    async with stale_server() as (port, answered), http.Agent(keep_alive=True) as agent:
        url = f"http://127.0.0.1:{port}/"
        with trio.fail_after(10):
            await (await http.get(url, agent=agent)).read()
            req = http.request(url, method=method, agent=agent)
            with pytest.raises(http.ConnectionResetError) as info:
                await send(req)
        assert req.reused_socket
        assert info.value.code == "ECONNRESET"
        assert info.value.args[0] == "socket hang up"
        assert [number for number, _, _ in answered] == [1]
        assert agent.statistics().total_connections == 0


async def test_A41_retry_stale_false_raises_econnreset() -> None:
    async with (
        stale_server() as (port, answered),
        http.Agent(keep_alive=True, retry_stale=False) as agent,
    ):
        url = f"http://127.0.0.1:{port}/"
        with trio.fail_after(10):
            await (await http.get(url, agent=agent)).read()
            req = http.request(url, agent=agent)
            with pytest.raises(http.ConnectionResetError) as info:
                await req.end()
        assert req.reused_socket
        assert info.value.code == "ECONNRESET"
        assert info.value.args[0] == "socket hang up"
        assert [number for number, _, _ in answered] == [1]
        assert agent.statistics().total_connections == 0


# --- a connection that closes as it is handed over --------------------------------------


class TakeRecordingAgent(MemoryAgent):
    """Counts the takes of a free connection from its watcher, and records whether each
    that ended (not cancelled) got the connection alive."""

    def __init__(self, nursery: trio.Nursery, serve: Serve, **options: Any) -> None:
        super().__init__(nursery, serve, **options)
        self.tries = 0
        self.taken: list[bool] = []

    async def _take_from_watcher(self, pooled: PooledConnection) -> bool:
        self.tries += 1
        alive = await super()._take_from_watcher(pooled)
        self.taken.append(alive)
        return alive


def ok_peer(far_ends: list[trio.abc.Stream], answered: list[int]) -> Serve:
    """A peer answering ``ok`` to each request; notes its far ends, and which of them
    (by number) answered each request."""

    async def peer(stream: trio.abc.Stream) -> None:
        number = len(far_ends)
        far_ends.append(stream)
        client = RawClient(stream)
        while True:
            try:
                await client.read_head_bytes()
            except EOFError:
                return
            answered.append(number)
            await client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    return peer


def close_as_it_is_taken(far_end: trio.abc.Stream) -> None:
    """Close the peer's side of a free connection whose watcher is in ``receive_some``:
    the EOF reaches the watcher at once, before a take-over in this step can cancel it."""
    assert isinstance(far_end, trio.StapledStream)
    far_end.send_stream.close()


@pytest.mark.parametrize("max_total_sockets", [math.inf, 1])
async def test_free_connection_closed_as_it_is_taken_keeps_the_books(
    max_total_sockets: float, autojump_clock: trio.testing.MockClock
) -> None:
    """The peer closes a free connection in the very step a request takes it: the EOF
    wakes the watcher before the take-over's cancel can reach it, so the watcher sees the
    close and drops the connection, emptying the pool, while the request waits for it.
    The request must then connect in the pool the agent holds, not in the emptied one
    (forgotten, it would count the new connection for good and never release it: with
    ``max_total_sockets=1``, the next request would wait for ever)."""
    far_ends: list[trio.abc.Stream] = []
    answered: list[int] = []
    peer = ok_peer(far_ends, answered)
    with trio.fail_after(100):  # a stall fails at once on the autojump clock
        async with trio.open_nursery() as nursery:
            agent = TakeRecordingAgent(
                nursery, peer, keep_alive=True, max_sockets=10, max_total_sockets=max_total_sockets
            )
            async with agent, monitored(agent):
                name = agent.get_name("mem", 80)
                assert await (await http.get("http://mem/", agent=agent)).read() == b"ok"
                await trio.testing.wait_all_tasks_blocked()  # the watcher is in receive_some
                close_as_it_is_taken(far_ends[0])
                req = http.request("http://mem/", agent=agent)
                assert await (await req.end()).read() == b"ok"
                assert agent.taken == [False], "the race was not set up"
                assert not req.reused_socket
                assert answered == [0, 1]
                assert agent.statistics().pools == {name: PoolStatistics(0, 1, 0, 0)}
                assert agent.total_socket_count == 1
                check_books(agent, settled=True)
                # The books still work: the free connection is reused.
                req = http.request("http://mem/", agent=agent)
                assert await (await req.end()).read() == b"ok"
                assert req.reused_socket
                assert answered == [0, 1, 1]
            nursery.cancel_scope.cancel()


async def test_cancelled_take_of_a_connection_closed_under_it_keeps_the_books(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """As above, but the request is cancelled while it waits for the watcher that is
    dropping the connection: it puts nothing back (the connection is dead), the pool it
    held is forgotten once it leaves, and the next request connects afresh."""
    far_ends: list[trio.abc.Stream] = []
    answered: list[int] = []
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            agent = TakeRecordingAgent(
                nursery, ok_peer(far_ends, answered), keep_alive=True, max_total_sockets=1
            )
            async with agent, monitored(agent):
                assert await (await http.get("http://mem/", agent=agent)).read() == b"ok"
                await trio.testing.wait_all_tasks_blocked()
                close_as_it_is_taken(far_ends[0])
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await http.get("http://mem/", agent=agent)
                assert scope.cancelled_caught
                assert (agent.tries, agent.taken) == (1, []), "not cancelled in the take-over"
                assert agent.statistics().pools == {}
                check_books(agent, settled=True)
                assert agent.open_streams() == []
                assert await (await http.get("http://mem/", agent=agent)).read() == b"ok"
                assert answered == [0, 1]
                check_books(agent, settled=True)
            nursery.cancel_scope.cancel()


async def test_destroy_between_hand_over_and_waiter_keeps_the_books(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``max_sockets=1``: A's response ends and hands its connection to the waiting B;
    in the same step, before B runs, ``destroy()`` closes that connection, emptying the
    pool. B's pool must stay held while B is inside the agent, and B, which never used
    the closed connection, is served on a new one as if it had stayed queued."""
    release = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await req.read()
        await res.write(b"part")
        if req.url == "/a":
            await release.wait()
        await res.end(b"|rest")

    server = http.create_server(handler)
    with trio.fail_after(100):  # a stall fails at once on the autojump clock
        async with (
            memory_agent(server.serve_stream, keep_alive=True, max_sockets=1) as agent,
            monitored(agent),
        ):
            name = agent.get_name("mem", 80)
            a = await http.get("http://mem/a", agent=agent)
            assert await a.__anext__() == b"part"
            bodies: list[bytes] = []

            async def b() -> None:
                bodies.append(await (await http.get("http://mem/b", agent=agent)).read())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(b)
                await trio.testing.wait_all_tasks_blocked()
                assert agent.requests == {name: 1}
                release.set()
                assert await a.read() == b"|rest"  # ends without a checkpoint: handed to B
                assert agent.requests == {}
                agent.destroy()
                assert agent.total_socket_count == 0
            assert bodies == [b"part|rest"]
            assert agent.opened == 2
            assert agent.statistics().pools == {name: PoolStatistics(0, 1, 0, 0)}
            check_books(agent, settled=True)


# --- cancellation keeps the books right ------------------------------------------------


async def test_cancelled_queued_request_leaves_the_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()

    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await req.read()
        if req.url == "/slow":
            await release.wait()
        await res.end(b"done")

    server = http.create_server(handler)
    async with memory_agent(server.serve_stream, keep_alive=True, max_sockets=1) as agent:
        name = agent.get_name("mem", 80)
        bodies: list[bytes] = []

        async def slow() -> None:
            bodies.append(await (await http.get("http://mem/slow", agent=agent)).read())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(1) as scope:
                await http.get("http://mem/queued", agent=agent)
            assert scope.cancelled_caught
            assert pool(agent, name) == PoolStatistics(1, 0, 0, 0)
            release.set()
        assert bodies == [b"done"]
        assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
        req = http.request("http://mem/", agent=agent)
        assert await (await req.end()).read() == b"done"
        assert req.reused_socket
        assert agent.opened == 1


async def test_cancel_mid_body_closes_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await res.write(b"part")
        await trio.sleep(10)
        await res.end(b"rest")

    server = http.create_server(handler)
    async with memory_agent(server.serve_stream, keep_alive=True) as agent:
        with trio.move_on_after(1) as scope:
            res = await http.get("http://mem/", agent=agent)
            await res.read()
        assert scope.cancelled_caught
        assert res.aborted
        assert agent.statistics().total_connections == 0
        assert dict(agent.statistics().pools) == {}
        req = http.request("http://mem/", agent=agent)
        assert await (await req.end()).read() == b"partrest"
        assert not req.reused_socket
        assert agent.opened == 2


async def test_cancelled_connect_gives_its_slot_to_the_next_waiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class SlowFirstConnect(MemoryAgent):
        stalled = False

        async def create_connection(self, options: http.ConnectOptions) -> trio.abc.Stream:
            if not self.stalled:
                self.stalled = True
                await trio.sleep_forever()
            return await super().create_connection(options)

    server = http.create_server(hello)
    async with trio.open_nursery() as nursery:
        async with SlowFirstConnect(
            nursery, server.serve_stream, keep_alive=True, max_sockets=1
        ) as agent:
            name = agent.get_name("mem", 80)
            bodies: list[bytes] = []
            async with trio.open_nursery() as requests:
                first = trio.CancelScope()

                async def connecting() -> None:
                    with first:
                        await http.get("http://mem/first", agent=agent)

                async def queued() -> None:
                    bodies.append(await (await http.get("http://mem/second", agent=agent)).read())

                requests.start_soon(connecting)
                await trio.testing.wait_all_tasks_blocked()
                requests.start_soon(queued)
                await trio.testing.wait_all_tasks_blocked()
                assert pool(agent, name) == PoolStatistics(0, 0, 1, 1)
                first.cancel()
            assert bodies == [b"hello"]
            assert pool(agent, name) == PoolStatistics(0, 1, 0, 0)
            assert agent.total_socket_count == 1
        nursery.cancel_scope.cancel()


def test_global_agent_is_supervised_per_trio_run() -> None:
    """The global agent lives with the trio run that uses it: its watcher tasks end with
    the run and its pooled sockets are closed, leaving no file descriptor (and no
    ResourceWarning, which the test configuration turns into an error); the next run
    starts with empty books."""

    async def one_run() -> tuple[int, int]:
        server = http.create_server(hello)
        async with trio.open_nursery() as nursery:
            _, port = await nursery.start(server.listen, 0, "127.0.0.1")
            for _ in range(3):
                res = await http.get(f"http://127.0.0.1:{port}/")
                assert await res.read() == b"hello"
            pooled = http.global_agent.statistics().total_connections
            nursery.cancel_scope.cancel()
        return pooled, port

    before = len(os.listdir("/proc/self/fd"))
    pooled, _ = trio.run(one_run)
    assert pooled == 1  # three requests, one keep-alive connection
    assert len(os.listdir("/proc/self/fd")) == before
    pooled, _ = trio.run(one_run)  # a new run: the agent re-attaches with fresh books
    assert pooled == 1
    assert len(os.listdir("/proc/self/fd")) == before


def test_an_unentered_agent_closes_wrapped_streams_when_the_run_ends() -> None:
    """An agent used without ``async with`` is destroyed when its trio run ends, while its
    supervising nursery can still take closing work, whatever the streams are (here a
    socket wrapped in a StapledStream, as TLS would wrap it)."""

    class WrappingAgent(http.Agent):
        async def create_connection(self, options: http.ConnectOptions) -> trio.abc.Stream:
            stream = await super().create_connection(options)
            return trio.StapledStream(stream, stream)

    agent = WrappingAgent(keep_alive=True)

    async def run() -> None:
        server = http.create_server(hello)
        async with trio.open_nursery() as nursery:
            _, port = await nursery.start(server.listen, 0, "127.0.0.1")
            res = await http.get(f"http://127.0.0.1:{port}/", agent=agent)
            assert await res.read() == b"hello"
            assert agent.statistics().total_connections == 1
            nursery.cancel_scope.cancel()

    before = len(os.listdir("/proc/self/fd"))
    trio.run(run)
    assert len(os.listdir("/proc/self/fd")) == before
