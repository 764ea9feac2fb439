"""The server over real sockets on 127.0.0.1, with real clients as peers: curl, Python's
http.client and Node's own http client."""

from __future__ import annotations

import functools
import http.client
import json
import subprocess
from pathlib import Path

import pytest
import trio

import trio_nodehttp as http_

from .conftest import RawClient, get, open_fds, raw_client, socket_server

NODE_DIR = Path(__file__).parent / "node"


async def echo(req: http_.IncomingMessage, res: http_.ServerResponse) -> None:
    body = await req.read()
    res.set_header("Content-Type", "text/plain")
    res.set_header("X-Url", req.url or "")
    await res.end(body or (req.url or "").encode())


async def run(*argv: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(list(argv), capture_stdout=True, capture_stderr=True)


async def test_curl_reuses_one_connection_for_two_urls() -> None:
    async with socket_server(echo) as (server, port):
        connections: list[object] = []
        server.on("connection", connections.append)
        result = await run(
            "curl", "-sv", f"http://127.0.0.1:{port}/a", f"http://127.0.0.1:{port}/b"
        )
    assert result.stdout == b"/a/b"
    assert b"Re-using existing connection" in result.stderr
    assert len(connections) == 1


async def test_curl_expect_100_continue() -> None:
    async with socket_server(echo) as (_, port):
        result = await run(
            "curl",
            "-sv",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "x" * 2000,
            f"http://127.0.0.1:{port}/up",
        )
    assert result.stdout == b"x" * 2000
    assert b"HTTP/1.1 100 Continue" in result.stderr


async def test_curl_raw_shows_chunks_and_trailers() -> None:
    async def handler(req: http_.IncomingMessage, res: http_.ServerResponse) -> None:
        res.set_header("Trailer", "X-Done")
        await res.write(b"abc")
        await res.write(b"de")
        res.add_trailers([("X-Done", "yes")])
        await res.end()

    async with socket_server(handler) as (_, port):
        result = await run("curl", "-s", "--raw", f"http://127.0.0.1:{port}/")
    assert result.stdout == b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Done: yes\r\n\r\n"


def _http_client_session(port: int) -> list[tuple[int, bytes, str | None]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for path, body in (("/one", None), ("/two", b"posted"), ("/three", None)):
            conn.request("POST" if body else "GET", path, body=body)
            response = conn.getresponse()
            out.append((response.status, response.read(), response.getheader("Connection")))
    finally:
        conn.close()
    return out


async def test_python_http_client_keep_alive() -> None:
    async with socket_server(echo) as (server, port):
        results = await trio.to_thread.run_sync(_http_client_session, port)
        assert server.statistics().requests_served == 3
    assert results == [
        (200, b"/one", "keep-alive"),
        (200, b"posted", "keep-alive"),
        (200, b"/three", "keep-alive"),
    ]


async def test_node_client_keep_alive_agent_many_requests_few_sockets(node_bin: str) -> None:
    connections: list[object] = []
    async with socket_server(echo) as (server, port):
        server.on("connection", connections.append)
        result = await run(node_bin, str(NODE_DIR / "keepalive_client.js"), str(port), "200", "4")
        served = server.statistics().requests_served
    report = json.loads(result.stdout)
    assert report["statuses"] == [200] * 200
    assert report["bodies"] == [f"/{i}" for i in range(200)]
    assert served == 200
    assert 1 <= len(connections) <= 4


async def test_end_to_end_timeouts_with_small_values() -> None:
    async with (
        socket_server(echo, headers_timeout=0.2, request_timeout=0.4) as (_, port),
        raw_client(port) as slow_head,
        raw_client(port) as slow_body,
    ):
        await slow_head.send(b"GET / HTTP/1.1\r\n")
        await slow_body.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nab")
        with trio.fail_after(10):
            assert (await slow_head.read_until_closed()).startswith(b"HTTP/1.1 408 ")
            assert (await slow_body.read_until_closed()).startswith(b"HTTP/1.1 408 ")


async def test_keep_alive_timeout_end_to_end() -> None:
    async with (
        socket_server(echo, keep_alive_timeout=0.2, keep_alive_timeout_buffer=0) as (_, port),
        raw_client(port) as client,
    ):
        await client.send(get())
        response = await client.read_response()
        with trio.fail_after(10):
            assert await client.read_until_closed() == b""
        assert response.header("Keep-Alive") == "timeout=0"


async def test_client_gone_mid_body_and_slowloris_do_not_disturb_others() -> None:
    reading = trio.Event()
    aborted = trio.Event()

    async def handler(req: http_.IncomingMessage, res: http_.ServerResponse) -> None:
        if req.url == "/quit":
            reading.set()
        try:
            body = await req.read()
        except http_.ConnectionResetError:
            assert req.aborted
            aborted.set()
            raise
        await res.end(body)

    async with (
        socket_server(handler, headers_timeout=5) as (server, port),
        raw_client(port) as loris,
        raw_client(port) as good,
    ):
        await loris.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        async with raw_client(port) as quitter:
            await quitter.send(b"POST /quit HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf")
            with trio.fail_after(10):
                await reading.wait()
        with trio.fail_after(10):
            await aborted.wait()
        await good.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok")
        assert (await good.read_response()).body == b"ok"
        assert server.statistics().connections_open == 2  # loris and good remain


async def test_listen_without_host_binds_one_port_for_both_families() -> None:
    # Regression: listen(0) with no host opened an IPv4 and an IPv6 socket, each with
    # its own ephemeral port, and address() named one. Node binds one dual-stack socket.
    server = http_.create_server(echo)
    before = open_fds()
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(server.listen, 0)
        assert (host, port) == server.address() and host == "::"
        assert open_fds() == before + 1  # one listening socket
        for family_host in ("127.0.0.1", "::1"):
            stream = await trio.open_tcp_stream(family_host, port)
            async with stream:
                client = RawClient(stream)
                await client.send(get(f"/{family_host}"))
                assert (await client.read_response()).body == f"/{family_host}".encode()
        await server.close()


async def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    server = http_.create_server(echo)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(functools.partial(server.listen, path=path))
        assert bound == path
        result = await run("curl", "-s", "--unix-socket", path, "http://localhost/unix")
        await server.close()
    assert result.stdout == b"/unix"
    assert not await trio.Path(path).exists()


@pytest.mark.parametrize("how", ["close", "cancel", "close_all"])
async def test_stopping_leaves_no_socket_open(how: str) -> None:
    release = trio.Event()

    async def handler(req: http_.IncomingMessage, res: http_.ServerResponse) -> None:
        if req.url == "/slow":
            await res.write(b"started")
            await release.wait()
        await res.end(b"done")

    before = open_fds()
    server = http_.create_server(handler)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(server.listen, 0, "127.0.0.1")
        async with raw_client(port) as idle, raw_client(port) as active:
            await idle.send(get("/fast"))
            await idle.read_response()
            await active.send(get("/slow"))
            await active.read_head_bytes()
            if how == "close":
                async with trio.open_nursery() as closer:
                    closer.start_soon(server.close)
                    with trio.fail_after(10):
                        assert await idle.read_until_closed() == b""  # idle: closed at once
                    release.set()
                    with trio.fail_after(10):
                        rest = await active.read_until_closed()  # active: finishes, closes
                assert rest.endswith(b"done\r\n0\r\n\r\n")
            elif how == "close_all":
                server.close_all_connections()
                with trio.fail_after(10):
                    assert await idle.read_until_closed() == b""
                    assert await active.read_until_closed() == b"7\r\nstarted\r\n"
                await server.close()
            else:
                nursery.cancel_scope.cancel()
    assert open_fds() == before


async def test_S21_socket_timeout_end_to_end() -> None:
    fired = trio.Event()

    async def handler(req: http_.IncomingMessage, res: http_.ServerResponse) -> None:
        await res.write(b"partial")
        await fired.wait()  # the "timeout" listener releases it: notify only
        await res.end(b"done")

    server = http_.create_server(handler, timeout=0.2)
    server.on("timeout", lambda stream: fired.set())
    async with socket_server(server=server) as (_, port), raw_client(port) as client:
        await client.send(get())
        with trio.fail_after(10):
            response = await client.read_response()
    assert response.body == b"partialdone"
