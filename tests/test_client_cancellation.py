"""A client request cancelled at any of its awaits (waiting for a connection, connecting,
sending, waiting for the head, reading the body): a connection cut mid-exchange is
closed, a queued request leaves the queue, the next waiter goes on, and the agent's
books stay right.

The tests run on memory stream pairs served by our own server, with pytest-trio's
``autojump_clock``, so that where a cancel lands is chosen (or drawn from a seeded plan),
never left to the machine's speed. The books are read by ``check_books`` (tests/conftest.py):
per pool ``active + free + connecting``, summed over pools, is ``total_connections``;
nothing negative; no pool kept empty (Node deletes empty keys); every free connection
open and watched; the open connections exactly those counted; at rest, nothing active,
connecting or queued.
"""

from __future__ import annotations

import itertools
import random
import urllib.parse
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import trio_nodehttp as http

from .conftest import (
    MemoryAgent,
    TrackedStream,
    check_books,
    memory_agent,
    monitored,
    socket_server,
)

URL = "http://t"  # memory connections: the agent's create_connection ignores the host
NAME = "t:80:"
SLOW_BODY = b"abc|one,two,three"  # what slow_exchange() reads back
PHASES = ("acquire", "send", "head", "body")  # where a request can be cancelled
DEADLOCK = 1000  # seconds of the autojump clock: far more than any test needs


def free_streams(agent: http.Agent) -> list[trio.abc.Stream]:
    return [pooled.stream for pool in agent._pools.values() for pooled in pool.free]


# --- connections on memory streams --------------------------------------------------------


async def phased_handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
    """``/slow`` makes the client wait at every phase: for the head, between the pieces
    of the body. ``/hold`` answers after a second."""
    body = await req.read()
    if req.url == "/slow":
        await trio.sleep(1)
        for part in (b"a", b"b", b"c"):
            await res.write(part)
            await trio.sleep(0.5)
        await res.end(b"|" + body)
    elif req.url == "/hold":
        await trio.sleep(1)
        await res.end(b"held")
    elif req.url == "/empty":
        await res.end()
    else:
        await res.end(b"ok")


@asynccontextmanager
async def memory_setup(
    *, connect_delay: float = 0.0, **agent_options: Any
) -> AsyncIterator[tuple[MemoryAgent, http.Server]]:
    # No server timeouts: the autojump clock must never close a connection by itself.
    server = http.create_server(
        phased_handler, keep_alive_timeout=0, headers_timeout=0, request_timeout=0
    )
    # With nothing left to wait for, the autojump clock spins instead of sleeping: this
    # deadline turns a deadlock into a TooSlowError (at once, on that clock).
    with trio.fail_after(DEADLOCK):
        async with memory_agent(
            server.serve_stream, connect_delay=connect_delay, keep_alive=True, **agent_options
        ) as agent:
            yield agent, server


async def assert_fresh_request_works(agent: http.Agent, url: str = URL) -> None:
    # On the autojump clock a request that can never get a connection fails at once.
    with trio.fail_after(60):
        res = await http.get(f"{url}/fast", agent=agent)
        assert await res.read() in (b"ok", b"fast")


async def assert_memory_settled(agent: MemoryAgent, server: http.Server) -> None:
    """Let every handler finish (5 s of the autojump clock), then: books at rest, the
    only open connections are the free ones, and the server holds just those."""
    await trio.sleep(5)
    await trio.testing.wait_all_tasks_blocked()
    check_books(agent, settled=True)  # so the open connections are the free ones
    assert server.statistics().connections_open == len(free_streams(agent))


async def slow_exchange(agent: http.Agent, box: list[http.ClientRequest]) -> bytes:
    """A POST whose body is streamed in three pieces, to ``/slow``; its body read."""
    req = http.request(f"{URL}/slow", method="POST", agent=agent)
    box.append(req)
    await req.write(b"one,")
    await req.write(b"two,")
    res = await req.end(b"three")
    return await res.read()


def describe(exc: BaseException) -> str:
    """The first leaf of an exception group, briefly."""
    while leaves := getattr(exc, "exceptions", None):  # a group (duck-typed for 3.10)
        exc = leaves[0]
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first_line}"


def phase_of(req: http.ClientRequest | None) -> str:
    if req is None or req.socket is None:
        return "acquire"
    if not req.writable_finished:
        return "send"
    if req.res is None:
        return "head"
    return "body"


# --- 1. a cancel at each checkpoint of one request -----------------------------------------


class CancelAtStep(trio.abc.Instrument):
    """Cancels ``scope`` as its task is about to take its ``step``-th step inside it, so
    the Cancelled lands at the task's first checkpoint after that step (``step == 0``:
    at its first checkpoint)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.steps = 0
        self.task: trio.lowlevel.Task | None = None
        self.scope: trio.CancelScope | None = None

    def watch(self, scope: trio.CancelScope) -> None:
        self.task = trio.lowlevel.current_task()
        self.scope = scope
        if self.step == 0:
            scope.cancel()

    def stop(self) -> None:
        self.task = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task and self.scope is not None:
            self.steps += 1
            if self.steps == self.step:
                self.scope.cancel()


@attrs.define
class Run:
    cancelled: bool | None = None
    phase: str = "?"
    body: bytes | None = None


async def hold_connection(
    agent: http.Agent, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Take the (only) connection; started once it has it; answered after a second."""
    req = http.request(f"{URL}/hold", agent=agent)
    req.once("socket", lambda _stream: task_status.started())
    res = await req.end()
    assert await res.read() == b"held"


async def run_cancelled_at(scenario: str, step: int, run: Run) -> None:
    options: dict[str, Any] = {"connect_delay": 0.5}
    if scenario == "queued":
        options["max_sockets"] = 1
    async with memory_setup(**options) as (agent, server):
        if scenario == "reused":
            await assert_fresh_request_works(agent)  # leaves one free connection
            # Its watcher settles in receive_some first: the race of a watcher that has
            # not yet started has a test of its own (it is drawn, not chosen).
            await trio.testing.wait_all_tasks_blocked()
        box: list[http.ClientRequest] = []
        async with monitored(agent), trio.open_nursery() as nursery:
            if scenario == "queued":
                await nursery.start(hold_connection, agent)
            instrument = CancelAtStep(step)
            trio.lowlevel.add_instrument(instrument)
            try:
                with trio.CancelScope() as scope:
                    instrument.watch(scope)
                    run.body = await slow_exchange(agent, box)
                instrument.stop()
            finally:
                trio.lowlevel.remove_instrument(instrument)
            run.cancelled = scope.cancelled_caught
            run.phase = phase_of(box[0] if box else None) if run.cancelled else "done"
        if not run.cancelled:
            assert run.body == SLOW_BODY
        await assert_memory_settled(agent, server)
        expected_streams = 0 if scenario == "connect" and run.phase == "acquire" else 1
        assert len(agent.streams) == expected_streams, "a connection too many was opened"
        if run.phase in ("send", "head", "body"):
            stream = box[0].socket
            assert isinstance(stream, TrackedStream)
            connection = box[0]._connection
            assert connection is not None
            # Cancelled before the first send began, the connection is clean and may go
            # back to the pool; once a send began (even if it was then cut), it is closed.
            if connection.bytes_sent != box[0]._sent_before or not connection.broken:
                assert stream.closed != (not connection.broken), "books and stream disagree"
            assert stream.closed or connection.bytes_sent == box[0]._sent_before, (
                "a connection cut mid-exchange was not closed"
            )
        await assert_fresh_request_works(agent)
        await assert_memory_settled(agent, server)


@pytest.mark.parametrize("scenario", ["connect", "reused", "queued"])
async def test_cancel_at_each_checkpoint(scenario: str, autojump_clock: trio.abc.Clock) -> None:
    """Run the same request again and again, the k-th time cancelled at its k-th
    checkpoint, until a run completes. ``connect``: it opens its connection (slowly);
    ``reused``: it takes a free one from its watcher; ``queued``: it waits in the queue
    (``max_sockets=1``) until another request hands it the connection. Then in every
    case it streams its body in three writes, waits for the head, reads the body in
    pieces."""
    failures: dict[tuple[str, str], list[int]] = defaultdict(list)
    phases: set[str] = set()
    for step in itertools.count():
        assert step < 500, "the request never completed"
        run = Run()
        try:
            await run_cancelled_at(scenario, step, run)
        except Exception as exc:
            failures[run.phase, describe(exc)].append(step)
        if run.cancelled is None:
            break  # failed before the request was even made: nothing more to learn
        if not run.cancelled:
            break
        phases.add(run.phase)
    report = "\n".join(
        f"cancelled while {phase} (steps {ks}): {message}"
        for (phase, message), ks in failures.items()
    )
    assert not failures, f"{scenario}: {sum(map(len, failures.values()))} bad runs\n{report}"
    assert phases == set(PHASES)


# --- 2. the cancel at each kind of await, one at a time -----------------------------------


async def test_cancel_during_a_streamed_write_closes_the_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A cancel lands in ``req.write()`` after the head went out: the exchange is cut
    short, so the connection must be closed and leave the books, not stay active."""
    async with memory_setup() as (agent, server):
        req = http.request(f"{URL}/slow", method="POST", agent=agent)
        await req.write(b"one,")
        with trio.CancelScope() as scope:
            scope.cancel()
            await req.write(b"two,")
        assert scope.cancelled_caught
        await assert_memory_settled(agent, server)
        await assert_fresh_request_works(agent)


async def test_a_body_that_came_with_the_head_is_read_without_a_checkpoint(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The whole body came with the head: reading it needs no I/O and has no checkpoint,
    so even under a cancelled scope it is read to its end, and the connection goes back
    to the pool with the books settled."""
    async with memory_setup(max_sockets=1) as (agent, server):
        res = await http.get(f"{URL}/fast", agent=agent)
        with trio.CancelScope() as scope:
            scope.cancel()
            body = await res.read()
        assert body and res.complete
        assert not scope.cancelled_caught
        await assert_memory_settled(agent, server)
        await assert_fresh_request_works(agent)


@pytest.mark.parametrize("where", ["connecting", "waiting for the head", "reading the body"])
async def test_the_next_waiter_after_a_cancelled_exchange_keeps_the_books(
    where: str, autojump_clock: trio.abc.Clock
) -> None:
    """``max_sockets=1``: A has the connection (or is opening it), B waits. A is
    cancelled: its slot goes to B, which connects and completes, and afterwards the
    books hold B's connection (free), nothing else."""
    async with memory_setup(max_sockets=1, connect_delay=1) as (agent, server):
        a_scope = trio.CancelScope()
        bodies: list[bytes] = []

        async def first() -> None:
            with a_scope:
                res = await http.get(f"{URL}/slow", agent=agent)
                await res.read()

        async def second() -> None:
            res = await http.get(f"{URL}/fast", agent=agent)
            bodies.append(await res.read())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            await trio.sleep(0.1)
            nursery.start_soon(second)
            # A connects during [0, 1), its head comes at 2, its body's pieces at 2, 2.5, 3.
            await trio.sleep({"connecting": 0.4, "waiting for the head": 1.4}.get(where, 2.1))
            assert agent.statistics().pools[NAME].queued == 1
            a_scope.cancel()
        assert a_scope.cancelled_caught and bodies == [b"ok"]
        check_books(agent)
        await assert_memory_settled(agent, server)
        assert len(free_streams(agent)) == 1
        await assert_fresh_request_works(agent)
        await assert_memory_settled(agent, server)


async def test_a_cancelled_waiter_leaves_the_queue_and_the_others_keep_their_turn(
    autojump_clock: trio.abc.Clock,
) -> None:
    """``max_sockets=1``: A has the connection; B, C and D wait in that order. C is
    cancelled while queued: it leaves the queue at once, and the connection then goes
    to B, then to D, one connection in all."""
    async with memory_setup(max_sockets=1) as (agent, server):
        a = await http.get(f"{URL}/fast", agent=agent)  # holds the connection: body unread
        served: list[str] = []
        scopes = {label: trio.CancelScope() for label in "bcd"}

        async def waiter(label: str) -> None:
            with scopes[label]:
                res = await http.get(f"{URL}/fast", agent=agent)
                served.append(label)
                assert await res.read() == b"ok"

        async with trio.open_nursery() as nursery:
            for label in "bcd":
                nursery.start_soon(waiter, label)
                await trio.testing.wait_all_tasks_blocked()
            assert agent.statistics().pools[NAME].queued == 3
            scopes["c"].cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert agent.statistics().pools[NAME] == http.PoolStatistics(1, 0, 0, 2)
            check_books(agent)
            assert await a.read() == b"ok"
        assert scopes["c"].cancelled_caught
        assert served == ["b", "d"]
        await assert_memory_settled(agent, server)
        assert len(agent.streams) == 1


# --- 3. a waiter cancelled as it is handed a connection --------------------------------------


@pytest.mark.parametrize("order", ["cancel then release", "release then cancel"])
async def test_connection_handed_to_a_cancelled_waiter_goes_to_the_next(
    order: str, autojump_clock: trio.abc.Clock
) -> None:
    """``max_sockets=1``: A has the connection, B and C wait. In one step A releases it
    and B is cancelled. ``cancel then release``: B's wait is already cancelled when the
    connection is handed to it, so B passes it on to C: one connection in all.
    ``release then cancel``: B was woken with the connection and is cancelled before
    sending a byte. Either way C is served and nothing leaks."""
    async with memory_setup(max_sockets=1) as (agent, server):
        a = await http.get(f"{URL}/fast", agent=agent)  # holds the connection: body unread
        b_scope = trio.CancelScope()
        bodies: dict[str, bytes] = {}

        async def waiter(label: str, scope: trio.CancelScope) -> None:
            with scope:
                res = await http.get(f"{URL}/fast", agent=agent)
                bodies[label] = await res.read()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter, "b", b_scope)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(waiter, "c", trio.CancelScope())
            await trio.testing.wait_all_tasks_blocked()
            pool = agent._pools[NAME]
            assert len(pool.waiters) == 2
            b_waiter = pool.waiters[0]
            assert await a.__anext__() == b"ok"
            # A's body is now read to its end without a checkpoint: the release and the
            # cancel happen in the same step, before B runs again.
            if order == "cancel then release":
                b_scope.cancel()
                assert await a.read() == b""
            else:
                assert await a.read() == b""
                b_scope.cancel()
            assert b_waiter.connection is not None, "the race was not set up"
        assert b_scope.cancelled_caught
        assert bodies == {"c": b"ok"}
        await assert_memory_settled(agent, server)
        if order == "cancel then release":
            assert len(agent.streams) == 1, "C should have been given A's connection"
        assert len(free_streams(agent)) == 1
        await assert_fresh_request_works(agent)
        await assert_memory_settled(agent, server)


@pytest.mark.parametrize("path", ["cancelled waiter", "cancelled take from the watcher"])
async def test_connection_put_back_by_a_cancel_keeps_the_idle_timeout(
    path: str, autojump_clock: trio.abc.Clock
) -> None:
    """``timeout=5``: a free connection is closed after 5 idle seconds, including one that
    went back to the free list because the request that was to use it was cancelled."""
    async with memory_setup(max_sockets=1, timeout=5) as (agent, server):
        if path == "cancelled waiter":
            a = await http.get(f"{URL}/fast", agent=agent)
            b_scope = trio.CancelScope()

            async def b() -> None:
                with b_scope:
                    await http.get(f"{URL}/fast", agent=agent)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(b)
                await trio.testing.wait_all_tasks_blocked()
                assert await a.__anext__() == b"ok"
                b_scope.cancel()
                assert await a.read() == b""  # handed to B, whose cancel hands it back
        else:
            await assert_fresh_request_works(agent)
            # Let the new watcher settle in receive_some first (see the next test).
            await trio.testing.wait_all_tasks_blocked()
            with trio.CancelScope() as scope:
                scope.cancel()
                await http.get(f"{URL}/fast", agent=agent)  # cancelled taking it
            assert scope.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert agent.statistics().pools[NAME].free == 1
        await trio.sleep(6)
        await trio.testing.wait_all_tasks_blocked()
        assert NAME not in agent.statistics().pools, "the idle timeout was lost"
        await assert_memory_settled(agent, server)


async def test_cancelled_take_of_a_just_freed_connection_runs_one_watcher_at_a_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A response read to its end frees its connection and starts a watcher for it; in
    the same step an already-cancelled request takes that connection, stops the watcher
    and, cancelled, puts the connection back, which starts a second watcher while the
    first is still inside ``receive_some`` (a stream may take more than one scheduling
    round to leave a cancelled ``receive_some``; memory streams and ``SSLStream`` do).
    The two must never read the stream at once: ``BusyResourceError`` would crash the
    agent's nursery. Each round has even odds of the bad order; 20 rounds."""
    async with memory_setup() as (agent, server):
        for _ in range(20):
            res = await http.get(f"{URL}/fast", agent=agent)
            assert await res.read() == b"ok"  # ends without a checkpoint after the release
            with trio.CancelScope() as scope:
                scope.cancel()
                await http.get(f"{URL}/fast", agent=agent)
            assert scope.cancelled_caught
            await trio.testing.wait_all_tasks_blocked()
            check_books(agent, settled=True)
            assert len(free_streams(agent)) == 1
        await assert_memory_settled(agent, server)
        assert len(agent.streams) == 1


# --- 4. destroying a response that has ended ---------------------------------------------------


async def test_destroying_an_ended_response_leaves_its_connection_alone() -> None:
    """``finally: res.destroy()`` after a response ended (and its connection went back to
    the agent) must not touch that connection, which may already serve the next request
    (Node: destroying an ended message does not destroy its socket)."""
    with trio.fail_after(10):
        async with (
            socket_server(phased_handler, keep_alive_timeout=60) as (server, port),
            http.Agent(keep_alive=True, max_sockets=1) as agent,
        ):
            url = f"http://127.0.0.1:{port}"
            connections: list[object] = []
            server.on("connection", connections.append)
            res = await http.get(f"{url}/empty", agent=agent)
            assert res.complete  # ended with its head: the connection is free again
            res.destroy()
            second = await http.get(f"{url}/empty", agent=agent)  # reuses it, or should
            assert second.complete

            # Now while another request waits: the connection is handed to it at once.
            outcome: list[object] = []

            async def waiter() -> None:
                try:
                    res = await http.get(f"{url}/fast", agent=agent)
                    outcome.append(await res.read())
                except Exception as exc:
                    outcome.append(exc)

            holder = await http.get(f"{url}/fast", agent=agent)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                assert await holder.read() == b"ok"  # handed to the waiter here
                holder.destroy()
            assert outcome == [b"ok"]
            assert len(connections) == 1, f"{len(connections)} connections for one at a time"
            check_books(agent, settled=True)


# --- 5. the storm -------------------------------------------------------------------------------


@attrs.frozen
class Plan:
    path: str
    post: bool
    #: Seconds the client waits between the two pieces of a POST's body.
    pause: float
    read: bool
    timeout: float
    expected: bytes
    start: float
    narrow: bool


def make_plans(rng: random.Random, count: int) -> list[Plan]:
    plans = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.6:
            path, expected = "/fast", b"fast"
        elif kind < 0.7:
            path, expected = "/empty", b""
        else:
            chunks = rng.randint(2, 5)
            path = f"/slow?delay={rng.uniform(0, 0.02):.4f}&chunks={chunks}"
            expected = b"x" * 100 * chunks + b"end"
        post, pause, read = rng.random() < 0.3, rng.uniform(0, 0.005), rng.random() < 0.7
        timeout, start = rng.uniform(0, 0.02), rng.uniform(0, 0.02)
        plans.append(Plan(path, post, pause, read, timeout, expected, start, rng.random() < 0.2))
    return plans


async def storm_handler(req: http.IncomingMessage, res: http.ServerResponse) -> None:
    await req.read()
    assert req.url is not None
    parts = urllib.parse.urlsplit(req.url)
    if parts.path == "/slow":
        query = urllib.parse.parse_qs(parts.query)
        await trio.sleep(float(query["delay"][0]))
        for _ in range(int(query["chunks"][0])):
            await res.write(b"x" * 100)
            await trio.sleep(0.005)  # for cancels to land mid-body
        await res.end(b"end")
    elif parts.path == "/empty":
        await res.end()
    else:
        await res.end(b"fast")


async def test_cancellation_storm(autojump_clock: trio.abc.Clock) -> None:
    """3,000 requests, 100 at a time, each cancelled after a random 0-20 ms; fast, empty
    and slow endpoints; GETs and POSTs whose body comes in two pieces a moment apart;
    bodies read or the response destroyed. Most go through an agent with
    ``max_sockets=8``, a fifth through one with ``max_sockets=1`` (whose pool empties and
    refills all the time); connections take 1 ms to open. The books are checked after
    every task step and after every batch, and at the end: a fresh request works, the
    server holds exactly the free connections, and once the agents are closed no
    connection is open. Memory connections and the autojump clock: where each cancel
    lands follows from the seeded plans, whatever the machine's speed (trio's scheduler
    still draws the order of tasks woken together, which the assertions allow)."""
    rng = random.Random(20240607)
    plans = make_plans(rng, 3000)
    outcomes: dict[str, int] = defaultdict(int)
    errors: list[str] = []

    async def one(agent: http.Agent, plan: Plan) -> None:
        req = http.request(URL + plan.path, method="POST" if plan.post else "GET", agent=agent)
        res: http.IncomingMessage | None = None
        await trio.sleep(plan.start)  # spread the batch out a little
        pausing = False
        try:
            with trio.move_on_after(plan.timeout) as scope:
                if plan.post:
                    await req.write(b"p" * 50)
                    pausing = True
                    await trio.sleep(plan.pause)
                    pausing = False
                    res = await req.end(b"q")
                else:
                    res = await req.end()
                if plan.read:
                    body = await res.read()
                    assert body == plan.expected, (plan.path, body[:40])
        except Exception as exc:
            errors.append(f"{plan}: {describe(exc)}")
            return
        if pausing:
            req.destroy()  # cancelled between its own writes: the client gives up
        if res is not None and not plan.read:
            res.destroy()
        outcomes[f"cancelled while {phase_of(req)}" if scope.cancelled_caught else "completed"] += 1

    servers = [
        http.create_server(
            storm_handler, keep_alive_timeout=0, headers_timeout=0, request_timeout=0
        )
        for _ in range(2)
    ]
    with trio.fail_after(DEADLOCK):
        async with (
            memory_agent(
                servers[0].serve_stream, connect_delay=0.001, keep_alive=True, max_sockets=8
            ) as wide,
            memory_agent(
                servers[1].serve_stream, connect_delay=0.001, keep_alive=True, max_sockets=1
            ) as narrow,
        ):
            async with monitored(wide, narrow) as monitor:
                for start in range(0, len(plans), 100):
                    async with trio.open_nursery() as nursery:
                        for plan in plans[start : start + 100]:
                            nursery.start_soon(one, narrow if plan.narrow else wide, plan)
                    check_books(wide, settled=True)
                    check_books(narrow, settled=True)
            assert not errors, f"{len(errors)} requests failed, e.g.\n" + "\n".join(errors[:10])
            # Each phase is hit by the hundred (the counts follow from the seeded plans and
            # the virtual clock, so they are the same at any machine speed, under coverage
            # too); the floor of 10 leaves room for the order of tasks woken together.
            kinds = ["completed"] + [f"cancelled while {p}" for p in PHASES]
            assert all(outcomes[kind] >= 10 for kind in kinds), f"a thin storm: {outcomes}"
            assert sum(outcomes.values()) == len(plans)
            assert monitor.steps > 10_000
            for agent, server in zip((wide, narrow), servers, strict=True):
                await assert_fresh_request_works(agent)
                await assert_memory_settled(agent, server)
            assert 2 <= len(free_streams(wide)) + len(free_streams(narrow)) <= 9
        await trio.testing.wait_all_tasks_blocked()
        for agent, server in zip((wide, narrow), servers, strict=True):
            assert agent.open_streams() == []
            assert server.statistics().connections_open == 0
