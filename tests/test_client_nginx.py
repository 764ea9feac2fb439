"""nginx as the origin: our agent's pools against a server that closes connections by
itself, after three requests (``keepalive_requests 3``) and after a second idle
(``keepalive_timeout 1s``), as in the report of books that drifted (11 connections under
``max_sockets=10``, one counted in no pool).

Each test starts its own nginx (single process, in the foreground) with a config of its
own under ``tmp_path``, listening on 127.0.0.1 only, and stops it at the end. nginx's
access log names the connection that served each request, so keep-alive reuse is seen
from the server's side as well as from the agent's. The books are checked after every
task step (:class:`~tests.conftest.BooksMonitor`) and at rest (``check_books``).
"""

from __future__ import annotations

import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

import trio_nodehttp as http

from .conftest import RecordingAgent, check_books, monitored

HELLO = b"hello from nginx\n"
STATIC = b"a small static file\n" * 8
DEADLINE = 30  # seconds; every test here takes well under a tenth of that

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
lock_file {prefix}/nginx.lock;
events {{
    worker_connections 256;
}}
http {{
    log_format connections '$connection $connection_requests $request_uri $status';
    access_log {prefix}/access.log connections;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 3;
    keepalive_timeout 1s;
    root {prefix}/html;
{servers}}}
"""

SERVER = """\
    server {{
        listen 127.0.0.1:{port};
        location = /hello {{
            default_type text/plain;
            return 200 "{hello}";
        }}
    }}
"""


@attrs.frozen
class Served:
    """One line of nginx's access log."""

    connection: int
    #: How many requests that connection had served, this one included.
    number: int
    path: str
    status: int


@attrs.define
class Nginx:
    prefix: Path
    ports: list[int]

    def url(self, path: str, origin: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[origin]}{path}"

    def served(self) -> list[Served]:
        log = self.prefix / "access.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [
            Served(int(connection), int(number), path, int(status))
            for connection, number, path, status in (line.split() for line in lines)
        ]


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (nginx binds them a moment later: another
    process could take one meanwhile, so the caller retries)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


async def accepting(process: trio.Process, port: int) -> bool:
    """Whether nginx came to accept on ``port``; ``False`` if it exited first. Polls a
    bounded number of connects (nginx tells nothing else when it is ready)."""
    for _ in range(500):
        if process.poll() is not None:
            return False
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            await trio.sleep(0.01)
            continue
        await stream.aclose()
        return True
    raise AssertionError(f"nginx did not accept on port {port} after 500 tries")


async def stop(process: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        if process.poll() is None:
            process.terminate()  # SIGTERM: nginx's fast shutdown
            with trio.move_on_after(10):
                await process.wait()
        if process.poll() is None:
            process.kill()
            await process.wait()


@asynccontextmanager
async def nginx(nginx_bin: str, tmp_path: Path, *, origins: int = 1) -> AsyncIterator[Nginx]:
    """An nginx of this test's own with ``origins`` servers (one port each), each
    answering ``/hello`` with :data:`HELLO` and ``/static.txt`` with :data:`STATIC`."""
    prefix = tmp_path / "nginx"
    (prefix / "html").mkdir(parents=True)
    (prefix / "html" / "static.txt").write_bytes(STATIC)
    hello = HELLO.decode().replace("\n", "\\n")
    for attempt in range(3):
        (prefix / "error.log").unlink(missing_ok=True)
        ports = free_ports(origins)
        servers = "".join(SERVER.format(port=port, hello=hello) for port in ports)
        config = prefix / "nginx.conf"
        config.write_text(CONFIG.format(prefix=prefix, servers=servers))
        # -e: even the errors of its start go to error.log (the config names it too).
        process = await trio.lowlevel.open_process(
            [nginx_bin, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            ready = True
            for port in ports:
                ready = ready and await accepting(process, port)
            if ready:
                yield Nginx(prefix, ports)
                assert process.poll() is None, "nginx exited during the test"
                return
        finally:
            await stop(process)
        errors = (prefix / "error.log").read_text(errors="replace")
        assert "Address already in use" in errors and attempt < 2, f"nginx failed:\n{errors}"


async def fetch_all(agent: http.Agent, urls: list[str], *, concurrency: int) -> list[bytes]:
    """Every URL fetched and its body read, ``concurrency`` requests at a time (as many
    workers, each taking the next URL); the bodies in the order of ``urls``."""
    bodies: list[bytes | None] = [None] * len(urls)
    todo = iter(enumerate(urls))

    async def worker() -> None:
        for index, url in todo:
            res = await http.get(url, agent=agent)
            assert res.status_code == 200, (url, res.status_code)
            bodies[index] = await res.read()

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    assert None not in bodies
    return [body for body in bodies if body is not None]


def expected(urls: list[str]) -> list[bytes]:
    return [HELLO if url.endswith("/hello") else STATIC for url in urls]


def assert_served(origin: Nginx, agent: RecordingAgent, requests: int) -> None:
    """nginx's log agrees with the agent: every request served once, 200, on one of the
    connections the agent opened (none opened in vain), at most three per connection,
    and fewer connections than requests: keep-alive reused them."""
    served = origin.served()
    assert len(served) == requests
    assert {s.status for s in served} == {200}
    per_connection = Counter(s.connection for s in served)
    assert len(per_connection) == agent.opened, "a connection opened but never used"
    assert 2 <= max(per_connection.values()) <= 3, per_connection  # keepalive_requests 3
    assert max(s.number for s in served) == max(per_connection.values())
    assert requests / 3 <= agent.opened < requests, "no keep-alive reuse"


async def test_sixty_requests_twenty_at_a_time_within_max_sockets(
    nginx_bin: str, tmp_path: Path
) -> None:
    """60 requests, 20 at a time, through ``max_sockets=10``: all succeed; no step sees
    more than 10 connections; at rest the books hold exactly the open connections."""
    urls = [f"/{'hello' if i % 2 else 'static.txt'}" for i in range(60)]
    with trio.fail_after(DEADLINE):
        async with nginx(nginx_bin, tmp_path) as origin:
            full = [origin.url(path) for path in urls]
            name = f"127.0.0.1:{origin.ports[0]}:"
            async with RecordingAgent(keep_alive=True, max_sockets=10) as agent:
                async with monitored(agent) as monitor:
                    assert await fetch_all(agent, full, concurrency=20) == expected(full)
                check_books(agent, settled=True)
                assert monitor.peak_size == {name: 10}  # 20 at once: 10 connect, 10 queue
                assert monitor.peak_queued[name] == 10
                assert monitor.peak_total == [10]
                # 60 = 20 connections x 3 requests, the last of each with "Connection:
                # close": none may be left; any left are free.
                assert len(agent.free_sockets.get(name, ())) == agent.total_socket_count
            assert agent.open_streams() == []
            assert agent.statistics().total_connections == 0
            assert_served(origin, agent, len(urls))


async def test_a_finite_total_cap_over_two_origins_does_not_stall(
    nginx_bin: str, tmp_path: Path
) -> None:
    """Two origins, ``max_sockets=6`` each but ``max_total_sockets=8`` in all: 60
    requests, 20 at a time, alternating origins, all succeed within the deadline (books
    that drift under a finite total cap stall the agent for good); the total never goes
    over 8; and a last request to each origin still gets through."""
    urls = [(f"/{'hello' if i % 3 else 'static.txt'}", i % 2) for i in range(60)]
    with trio.fail_after(DEADLINE):
        async with nginx(nginx_bin, tmp_path, origins=2) as origin:
            full = [origin.url(path, which) for path, which in urls]
            agent = RecordingAgent(keep_alive=True, max_sockets=6, max_total_sockets=8)
            async with agent, monitored(agent) as monitor:
                assert await fetch_all(agent, full, concurrency=20) == expected(full)
                check_books(agent, settled=True)
                assert monitor.peak_total == [8]
                assert max(monitor.peak_size.values()) <= 6
                for which in range(2):
                    res = await http.get(origin.url("/hello", which), agent=agent)
                    assert await res.read() == HELLO
                check_books(agent, settled=True)
            assert agent.open_streams() == []
            assert_served(origin, agent, len(urls) + 2)


async def test_connections_nginx_closes_when_idle_leave_the_books(
    nginx_bin: str, tmp_path: Path
) -> None:
    """``keepalive_timeout 1s``: nginx closes the free connections after a second idle.
    Their watchers see it and drop them: the pool goes away and the total goes to 0
    (nothing counted twice, no pool kept), with the books right at every step. Then a
    second burst gets new connections: ``max_total_sockets`` is finite, so books that
    drifted would stall it. (nginx closes idle connections together, so a request
    taking one as it closes, the race of the report, is left to chance here; the
    deterministic version is in tests/test_agent.py.)"""
    with trio.fail_after(DEADLINE):
        async with nginx(nginx_bin, tmp_path) as origin:
            full = [origin.url("/hello")] * 20
            agent = RecordingAgent(keep_alive=True, max_sockets=10, max_total_sockets=10)
            async with agent, monitored(agent) as monitor:
                assert await fetch_all(agent, full, concurrency=20) == expected(full)
                check_books(agent, settled=True)
                assert agent.total_socket_count == 10  # 2 requests each: all kept
                # nginx is another process: nothing to wait on but the agent's books,
                # which a watcher changes the moment it sees the close. Bounded: 3 s.
                for _ in range(300):
                    if not agent.statistics().pools:
                        break
                    await trio.sleep(0.01)
                assert agent.statistics().total_connections == 0, agent.statistics()
                assert agent.open_streams() == []
                assert await fetch_all(agent, full, concurrency=20) == expected(full)
                check_books(agent, settled=True)
                assert monitor.peak_total == [10]
            assert agent.open_streams() == []
            assert agent.opened == 20
        assert_served(origin, agent, 2 * len(full))
