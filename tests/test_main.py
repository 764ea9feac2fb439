"""The ``trio-nodehttp`` command line: ``serve`` (the static file server) and ``get`` (the
small curl), end to end over sockets."""

from __future__ import annotations

import email.utils
import errno
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from trio_nodehttp import IncomingMessage, ServerResponse, create_server
from trio_nodehttp.__main__ import (
    PROGRESS_INTERVAL,
    _format_size,
    _Progress,
    _send_file,
    _Sent,
    build_parser,
    content_type,
    describe_error,
    error_code,
    format_head,
    format_url,
    main,
    parse_range,
    render_listing,
    serve_directory,
)

HELLO = b"hello, world\n"
SECRET = b"top secret, outside the served directory\n"
INDEX = b"<!DOCTYPE html><title>sub</title><p>the index</p>\n"
# Bigger than a few read chunks, and not a multiple of the chunk size.
BIG = bytes(range(256)) * 4099


@attrs.frozen
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class AccessLog:
    """Collects access-log lines; tests wait for them (the server writes a line after the
    response is sent, so the client can have it before the line exists)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._added = trio.Event()

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self._added.set()
        self._added = trio.Event()

    async def wait_for(self, count: int) -> list[str]:
        """The lines, once there are at least ``count``."""
        with trio.fail_after(10):
            for _ in range(count):  # each wake-up brings at least one line
                if len(self.lines) >= count:
                    break
                await self._added.wait()
        return self.lines


@attrs.frozen
class Served:
    port: int
    log: AccessLog
    root: Path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A served directory ``root`` and, next to it, a file that must stay out of reach."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(HELLO)
    (root / "big.bin").write_bytes(BIG)
    (root / "noext").write_bytes(b"\x00\x01")
    (root / "empty.txt").write_bytes(b"")
    (root / "sp ace & more.txt").write_bytes(b"spaced\n")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(INDEX)
    listing = root / "list"
    listing.mkdir()
    (listing / "a&<b>.txt").write_bytes(b"x")
    (listing / 'quote".txt').write_bytes(b"x")
    (listing / "inner").mkdir()
    (root / "evil.example").mkdir()
    return root


@pytest.fixture
async def served(nursery: trio.Nursery, site: Path) -> Served:
    """The file server on a free port of 127.0.0.1 (the nursery cancels it at the end)."""
    log = AccessLog()
    _, port = await nursery.start(partial(serve_directory, site, "127.0.0.1", 0, access_log=log))
    return Served(port, log, site)


def _fetch_sync(port: int, method: str, target: str, headers: Mapping[str, str]) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, headers=dict(headers))
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


async def fetch(
    served: Served, target: str, method: str = "GET", headers: Mapping[str, str] | None = None
) -> Reply:
    """One request on a new connection with http.client (in a thread)."""
    return await trio.to_thread.run_sync(_fetch_sync, served.port, method, target, headers or {})


def _mtime_date(path: Path) -> str:
    return email.utils.formatdate(int(path.stat().st_mtime), usegmt=True)


# --- files -------------------------------------------------------------------------------


async def test_get_file(served: Served) -> None:
    reply = await fetch(served, "/hello.txt")
    assert reply.status == 200
    assert reply.body == HELLO
    assert reply.headers["content-type"] == "text/plain"
    assert reply.headers["content-length"] == str(len(HELLO))
    assert reply.headers["last-modified"] == _mtime_date(served.root / "hello.txt")
    assert reply.headers["accept-ranges"] == "bytes"
    assert "date" in reply.headers


async def test_large_file_is_streamed_whole(served: Served) -> None:
    reply = await fetch(served, "/big.bin")
    assert reply.status == 200
    assert reply.headers["content-length"] == str(len(BIG))
    assert reply.headers["content-type"] == "application/octet-stream"
    assert "transfer-encoding" not in reply.headers
    assert reply.body == BIG


async def test_unknown_type_and_empty_file(served: Served) -> None:
    reply = await fetch(served, "/noext")
    assert (reply.status, reply.body) == (200, b"\x00\x01")
    assert reply.headers["content-type"] == "application/octet-stream"
    reply = await fetch(served, "/empty.txt")
    assert (reply.status, reply.body) == (200, b"")
    assert reply.headers["content-length"] == "0"


async def test_head_sends_headers_only(served: Served) -> None:
    get = await fetch(served, "/big.bin")
    head = await fetch(served, "/big.bin", "HEAD")
    assert head.status == 200
    assert head.body == b""
    for name in ("content-type", "content-length", "last-modified", "accept-ranges"):
        assert head.headers[name] == get.headers[name]
    # (Lines come in the order the handlers finish: not necessarily the requests'.)
    [line] = [line for line in await served.log.wait_for(2) if '"HEAD ' in line]
    assert line.split('"')[1] == "HEAD /big.bin HTTP/1.1"
    assert line.split('"')[2].split()[:2] == ["200", "0"]


async def test_url_decoding_and_query(served: Served) -> None:
    reply = await fetch(served, "/sp%20ace%20%26%20more.txt")
    assert (reply.status, reply.body) == (200, b"spaced\n")
    reply = await fetch(served, "/hello.txt?download=1&x=%2e%2e")
    assert (reply.status, reply.body) == (200, HELLO)
    reply = await fetch(served, "/./sub/./index.html")
    assert (reply.status, reply.body) == (200, INDEX)
    reply = await fetch(served, "//hello.txt")
    assert (reply.status, reply.body) == (200, HELLO)


async def test_missing_and_bad_paths(served: Served) -> None:
    assert (await fetch(served, "/nope.txt")).status == 404
    assert (await fetch(served, "/hello.txt/more")).status == 404
    assert (await fetch(served, "/a%00b")).status == 400


async def test_keep_alive_serves_several_requests(served: Served) -> None:
    def two_requests() -> list[bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        try:
            bodies = []
            for target in ("/hello.txt", "/big.bin"):
                conn.request("GET", target)
                bodies.append(conn.getresponse().read())
            return bodies
        finally:
            conn.close()

    assert await trio.to_thread.run_sync(two_requests) == [HELLO, BIG]


# --- conditional requests and ranges -----------------------------------------------------


async def test_if_modified_since(served: Served) -> None:
    last_modified = _mtime_date(served.root / "hello.txt")
    reply = await fetch(served, "/hello.txt", headers={"If-Modified-Since": last_modified})
    assert reply.status == 304
    assert reply.body == b""
    assert reply.headers["last-modified"] == last_modified
    assert "content-length" not in reply.headers
    head = await fetch(served, "/hello.txt", "HEAD", {"If-Modified-Since": last_modified})
    assert head.status == 304

    for since in (
        "Thu, 01 Jan 1998 00:00:00 GMT",  # older than the file
        "not a date",  # ignored
        "Fri, 01 Jan 2100 00:00:00 GMT",  # in the future: invalid, ignored
    ):
        reply = await fetch(served, "/hello.txt", headers={"If-Modified-Since": since})
        assert (reply.status, reply.body) == (200, HELLO), since
    # If-None-Match takes precedence, and we have no ETag that could match.
    reply = await fetch(
        served, "/hello.txt", headers={"If-Modified-Since": last_modified, "If-None-Match": '"x"'}
    )
    assert reply.status == 200
    lines = await served.log.wait_for(6)
    assert sum('" 304 0 ' in line for line in lines) == 2


async def test_modified_file_is_sent_again(served: Served) -> None:
    path = served.root / "hello.txt"
    last_modified = _mtime_date(path)
    stamp = path.stat().st_mtime + 10
    os.utime(path, (stamp, stamp))
    reply = await fetch(served, "/hello.txt", headers={"If-Modified-Since": last_modified})
    assert (reply.status, reply.body) == (200, HELLO)


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-4", 0, 4),
        ("bytes=7-", 7, len(HELLO) - 1),
        ("bytes=-6", len(HELLO) - 6, len(HELLO) - 1),
        ("bytes=5-1000", 5, len(HELLO) - 1),
        ("bytes=-1000", 0, len(HELLO) - 1),
    ],
)
async def test_range(served: Served, header: str, first: int, last: int) -> None:
    reply = await fetch(served, "/hello.txt", headers={"Range": header})
    assert reply.status == 206
    assert reply.body == HELLO[first : last + 1]
    assert reply.headers["content-range"] == f"bytes {first}-{last}/{len(HELLO)}"
    assert reply.headers["content-length"] == str(last - first + 1)
    assert reply.headers["content-type"] == "text/plain"


async def test_range_in_a_big_file(served: Served) -> None:
    first, last = 70_000, 200_000
    reply = await fetch(served, "/big.bin", headers={"Range": f"bytes={first}-{last}"})
    assert reply.status == 206
    assert reply.body == BIG[first : last + 1]
    assert reply.headers["content-range"] == f"bytes {first}-{last}/{len(BIG)}"


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=13-13", "bytes=-0"])
async def test_range_not_satisfiable(served: Served, header: str) -> None:
    reply = await fetch(served, "/hello.txt", headers={"Range": header})
    assert reply.status == 416
    assert reply.headers["content-range"] == f"bytes */{len(HELLO)}"
    assert HELLO not in reply.body


@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "bytes=5-2", "lines=0-1", "bytes=a-b"])
async def test_range_ignored_gives_whole_file(served: Served, header: str) -> None:
    reply = await fetch(served, "/hello.txt", headers={"Range": header})
    assert (reply.status, reply.body) == (200, HELLO)
    assert "content-range" not in reply.headers


async def test_range_with_head_and_if_range(served: Served) -> None:
    head = await fetch(served, "/hello.txt", "HEAD", {"Range": "bytes=0-1"})
    assert head.status == 200  # Range applies to GET only
    last_modified = _mtime_date(served.root / "hello.txt")
    reply = await fetch(
        served, "/hello.txt", headers={"Range": "bytes=0-1", "If-Range": last_modified}
    )
    assert (reply.status, reply.body) == (206, HELLO[:2])
    reply = await fetch(
        served,
        "/hello.txt",
        headers={"Range": "bytes=0-1", "If-Range": "Thu, 01 Jan 1998 00:00:00 GMT"},
    )
    assert (reply.status, reply.body) == (200, HELLO)


# --- directories and traversal -----------------------------------------------------------


async def test_directory_index(served: Served) -> None:
    reply = await fetch(served, "/sub/")
    assert (reply.status, reply.body) == (200, INDEX)
    assert reply.headers["content-type"] == "text/html"
    assert reply.headers["last-modified"] == _mtime_date(served.root / "sub" / "index.html")


async def test_directory_redirect(served: Served) -> None:
    reply = await fetch(served, "/sub")
    assert reply.status == 301
    assert reply.headers["location"] == "/sub/"
    reply = await fetch(served, "/sub?a=1&b")
    assert (reply.status, reply.headers["location"]) == (301, "/sub/?a=1&b")
    # The Location is rebuilt from the path: never a scheme-relative //host URL.
    reply = await fetch(served, "//evil.example")
    assert (reply.status, reply.headers["location"]) == (301, "/evil.example/")


async def test_directory_listing(served: Served) -> None:
    reply = await fetch(served, "/list/")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["content-length"] == str(len(reply.body))
    page = reply.body.decode()
    assert "<title>Index of /list/</title>" in page
    assert '<a href="../">../</a>' in page
    assert '<a href="a%26%3Cb%3E.txt">a&amp;&lt;b&gt;.txt</a>' in page
    assert '<a href="quote%22.txt">quote&quot;.txt</a>' in page
    assert '<a href="inner/">inner/</a>' in page
    assert "<b>" not in page
    # The links work.
    assert (await fetch(served, "/list/a%26%3Cb%3E.txt")).body == b"x"
    root = (await fetch(served, "/")).body.decode()
    assert "../" not in root
    assert '<a href="sub/">sub/</a>' in root
    assert '<a href="sp%20ace%20%26%20more.txt">sp ace &amp; more.txt</a>' in root
    head = await fetch(served, "/list/", "HEAD")
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-length"] == reply.headers["content-length"]


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "/..",
        "/../",
    ],
)
async def test_traversal_is_refused(served: Served, target: str) -> None:
    reply = await fetch(served, target)
    assert reply.status in (403, 404)
    assert SECRET not in reply.body
    assert "secret.txt" not in reply.body.decode()


async def test_symlink_out_of_the_directory_is_refused(served: Served) -> None:
    (served.root / "link.txt").symlink_to(served.root.parent / "secret.txt")
    (served.root / "linkdir").symlink_to(served.root.parent)
    (served.root / "inside.txt").symlink_to(served.root / "hello.txt")
    for target in ("/link.txt", "/linkdir/secret.txt", "/linkdir/"):
        reply = await fetch(served, target)
        assert reply.status in (403, 404), target
        assert SECRET not in reply.body
    assert (await fetch(served, "/inside.txt")).body == HELLO


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
async def test_other_methods_are_not_allowed(served: Served, method: str) -> None:
    def send() -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        try:
            conn.request(method, "/hello.txt", body=b"some body")
            response = conn.getresponse()
            return Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    reply = await trio.to_thread.run_sync(send)
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, HEAD"
    assert HELLO not in reply.body


async def test_unreadable_file_is_forbidden(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Opening is made to fail as it does for an unreadable file (root could read it).
    real_open_file = trio.open_file

    async def refuse(path: object, *args: object, **kwargs: object) -> object:
        if str(path).endswith("hello.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return await real_open_file(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(trio, "open_file", refuse)
    reply = await fetch(served, "/hello.txt")
    assert reply.status == 403
    assert "last-modified" not in reply.headers


async def test_file_that_shrinks_cuts_the_connection(nursery: trio.Nursery, site: Path) -> None:
    """The length promised in the head cannot be kept: the client sees a short body."""
    path = site / "hello.txt"
    info = os.stat_result((*path.stat()[:6], len(HELLO) + 100_000, *path.stat()[7:]))

    async def handler(req: IncomingMessage, res: ServerResponse) -> None:
        await _send_file(req, res, _Sent(), path, info)

    server = create_server(handler)
    _, port = await nursery.start(server.listen, 0, "127.0.0.1")

    def get() -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.getheader("Content-Length") == str(info.st_size)
            with pytest.raises(http.client.IncompleteRead) as caught:
                response.read()
            return caught.value.partial
        finally:
            conn.close()

    assert await trio.to_thread.run_sync(get) == HELLO


# --- access log --------------------------------------------------------------------------


async def test_access_log(served: Served) -> None:
    await fetch(served, "/hello.txt")
    await fetch(served, "/nope")
    await fetch(served, "/sub", "HEAD")
    line = re.compile(
        r'^127\.0\.0\.1 - - \[[^\]]+\] "(?P<request>[^"]*)" (?P<status>\d{3}) '
        r"(?P<bytes>\d+) (?P<ms>\d+\.\d)ms$"
    )
    lines = await served.log.wait_for(3)
    matches = [line.match(entry) for entry in lines]
    assert all(matches), lines
    assert sorted((m["request"], m["status"], m["bytes"]) for m in matches if m) == [
        ("GET /hello.txt HTTP/1.1", "200", str(len(HELLO))),
        ("GET /nope HTTP/1.1", "404", "14"),
        ("HEAD /sub HTTP/1.1", "301", "0"),
    ]


# --- graceful shutdown, in process ---------------------------------------------------------


async def _receive_all(stream: trio.SocketStream, limit: int) -> bytes:
    data = bytearray()
    for _ in range(limit):
        chunk = await stream.receive_some(65536)
        if not chunk:
            return bytes(data)
        data += chunk
    raise AssertionError("the server did not close the connection")


async def test_shutdown_finishes_active_and_closes_idle(site: Path) -> None:
    shutdown = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            _, port = await nursery.start(
                partial(serve_directory, site, "127.0.0.1", 0, shutdown=shutdown)
            )
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            await idle.send_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            response = b""
            for _ in range(100):
                response += await idle.receive_some(65536)
                if response.endswith(HELLO):
                    break
            assert response.startswith(b"HTTP/1.1 200 ")

            active = await trio.open_tcp_stream("127.0.0.1", port)
            await active.send_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            first = b""
            for _ in range(100):  # until the response has started
                first += await active.receive_some(1024)
                if b"\r\n\r\n" in first:
                    break
            assert first.startswith(b"HTTP/1.1 200 ")

            shutdown.set()
            assert await _receive_all(idle, 10) == b""  # closed while idle
            rest = await _receive_all(active, 100_000)
            head, _, body = (first + rest).partition(b"\r\n\r\n")
            assert f"Content-Length: {len(BIG)}".encode() in head
            assert body == BIG  # the active request finished
            await idle.aclose()
            await active.aclose()
        # serve_directory returned by itself: the nursery is done.


async def test_listen_error_is_raised_from_start(nursery: trio.Nursery, site: Path) -> None:
    _, port = await nursery.start(partial(serve_directory, site, "127.0.0.1", 0))
    with pytest.raises(OSError):
        await nursery.start(partial(serve_directory, site, "127.0.0.1", port))


# --- the command line ----------------------------------------------------------------------


async def _read_line(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    for _ in range(1000):
        if b"\n" in data:
            return data.partition(b"\n")[0]
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
    raise AssertionError(f"no line on stdout: {data!r}")


async def _drain(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    while chunk := await stream.receive_some(65536):  # ends at EOF (the process exits)
        into += chunk


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_cli_serves_and_exits_cleanly_on_signal(site: Path, signum: int) -> None:
    command = [sys.executable, "-m", "trio_nodehttp", "serve", str(site), "--port", "0"]
    stderr = bytearray()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            )
            assert process.stdout is not None and process.stderr is not None
            nursery.start_soon(_drain, process.stderr, stderr)
            line = (await _read_line(process.stdout)).decode()
            match = re.fullmatch(r"Serving (.+) on (http://127\.0\.0\.1:(\d+)/)", line)
            assert match, line
            assert match[1] == str(site)
            assert int(match[3]) > 0
            url = match[2]

            curl = await trio.run_process(
                ["curl", "-sS", "--max-time", "10", "-D", "-", f"{url}hello.txt"],
                capture_stdout=True,
            )
            head, _, body = curl.stdout.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert body == HELLO

            process.send_signal(signum)
            returncode = await process.wait()
    assert returncode == 0, stderr.decode(errors="replace")
    log = stderr.decode()
    assert f'"GET /hello.txt HTTP/1.1" 200 {len(HELLO)} ' in log
    assert "shutting down" in log


def test_parser_defaults_and_options() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.command, args.directory, args.host, args.port) == ("serve", ".", "127.0.0.1", 8000)
    assert (args.keep_alive_timeout, args.headers_timeout, args.request_timeout) == (
        5.0,
        None,
        300.0,
    )
    args = build_parser().parse_args(
        [
            "serve",
            "some/dir",
            "--host",
            "::1",
            "--port",
            "0",
            "--keep-alive-timeout",
            "1.5",
            "--headers-timeout",
            "2",
            "--request-timeout",
            "3",
        ]
    )
    assert (args.directory, args.host, args.port) == ("some/dir", "::1", 0)
    assert (args.keep_alive_timeout, args.headers_timeout, args.request_timeout) == (1.5, 2, 3)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["serve", "--port", "70000"],
        ["serve", "--port", "x"],
        ["serve", "--keep-alive-timeout", "-1"],
        ["serve", "--request-timeout", "nan"],
        ["serve", "--headers-timeout", "10", "--request-timeout", "5"],
    ],
)
def test_bad_command_lines_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_missing_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", str(tmp_path / "absent"), "--port", "0"])
    assert info.value.code == 2
    assert "not a directory" in capsys.readouterr().err


# --- helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=2-5", 10, (2, 5)),
        ("bytes=2-", 10, (2, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=9-100", 10, (9, 9)),
        ("Bytes = 1 - 2", 10, (1, 2)),
        ("bytes=1-2,", 10, (1, 2)),
        ("bytes=10-", 10, "unsatisfiable"),
        ("bytes=10-20", 10, "unsatisfiable"),
        ("bytes=-0", 10, "unsatisfiable"),
        ("bytes=0-", 0, "unsatisfiable"),
        ("bytes=-5", 0, "unsatisfiable"),
        ("bytes=5-2", 10, None),
        ("bytes=0-1,2-3", 10, None),
        ("bytes=-", 10, None),
        ("bytes=", 10, None),
        ("bytes=1", 10, None),
        ("bytes=+1-2", 10, None),
        ("bytes=١-٢", 10, None),  # non-ASCII digits
        ("items=0-1", 10, None),
        ("0-1", 10, None),
    ],
)
def test_parse_range(value: str, size: int, expected: object) -> None:
    assert parse_range(value, size) == expected


def test_content_type() -> None:
    assert content_type("a.txt") == "text/plain"
    assert content_type("a.html") == "text/html"
    assert content_type("a.unknown-extension") == "application/octet-stream"
    assert content_type("noext") == "application/octet-stream"
    assert content_type("a.tar.gz") == "application/gzip"


def test_format_url_and_listing() -> None:
    assert format_url("127.0.0.1", 80) == "http://127.0.0.1:80/"
    assert format_url("::1", 8000) == "http://[::1]:8000/"
    page = render_listing("/<x>/", [("<y>", True)], root=False).decode()
    assert "<title>Index of /&lt;x&gt;/</title>" in page
    assert '<a href="%3Cy%3E/">&lt;y&gt;/</a>' in page


# --- the get command -----------------------------------------------------------------------

PIECE = b"x" * 65536  # what /stream sends at a time
STREAM_LIMIT = 100_000  # /stream ends after this many pieces at most (6.5 GB), whatever happens


class Origin:
    """A server made with create_server, on a free port of 127.0.0.1, for ``get``.

    ``/echo`` answers with a JSON account of the request (method, target, raw headers,
    body); ``/big`` sends BIG with a Content-Length, in pieces; ``/hints`` sends a 103
    before its 200; ``/missing`` is a 404;
    ``/cut`` promises 1000 bytes and closes after 10; ``/hang`` sends a head and a line,
    then waits for ever; ``/stream`` sends a chunked body until :attr:`stop` is set;
    ``/upload`` sets :attr:`upload_started` when its head arrives.
    """

    def __init__(self) -> None:
        self.port = 0
        self.stop = trio.Event()
        self.upload_started = trio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, req: IncomingMessage, res: ServerResponse) -> None:
        if req.url == "/upload":
            self.upload_started.set()
        body = await req.read()
        if req.url == "/echo":
            account = {
                "method": req.method,
                "url": req.url,
                "headers": req.raw_headers,
                "body": body.decode("latin-1"),
            }
            res.set_header("Content-Type", "application/json")
            res.set_header("X-Repeated", ["one", "two"])
            res.set_header("x-MiXeD-case", "kept")
            await res.end(json.dumps(account).encode())
        elif req.url == "/big":
            res.set_header("Content-Length", len(BIG))
            for start in range(0, len(BIG), 100_000):
                await res.write(BIG[start : start + 100_000])
            await res.end()
        elif req.url == "/hints":
            await res.write_early_hints({"Link": "</style.css>; rel=preload"})
            await res.end(b"final\n")
        elif req.url == "/missing":
            res.write_head(404, {"Content-Type": "text/plain"})
            await res.end(b"no such thing\n")
        elif req.url == "/cut":
            res.write_head(200, {"Content-Length": "1000"})
            await res.write(b"0123456789")
            res.destroy()
        elif req.url == "/hang":
            await res.write(b"first line\n")
            await trio.sleep_forever()  # until the test ends
        elif req.url == "/stream":
            for _ in range(STREAM_LIMIT):
                if self.stop.is_set():
                    break
                await res.write(PIECE)
            await res.end()
        else:
            res.write_head(500)
            await res.end(b"unexpected target\n")


@pytest.fixture
async def origin(nursery: trio.Nursery) -> Origin:
    origin = Origin()
    server = create_server(origin)
    _, origin.port = await nursery.start(server.listen, 0, "127.0.0.1")
    return origin


GET = [sys.executable, "-m", "trio_nodehttp", "get"]


async def run_get(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """``python -m trio_nodehttp get ARGS...`` in a subprocess, its output captured."""
    with trio.fail_after(30):
        return await trio.run_process(
            [*GET, *args],
            stdin=stdin if stdin is not None else b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


def echoed(result: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    account: dict[str, Any] = json.loads(result.stdout)
    return account


def header_values(account: Mapping[str, Any], name: str) -> list[str]:
    return [value for key, value in account["headers"] if key.lower() == name]


async def test_get_writes_body_to_stdout(origin: Origin) -> None:
    result = await run_get(f"{origin.url}/big")
    assert result.returncode == 0
    assert result.stdout == BIG
    assert result.stderr == b""  # no meter: stderr is not a terminal


async def test_get_is_a_plain_get_by_default(origin: Origin) -> None:
    account = echoed(await run_get(f"{origin.url}/echo"))
    assert (account["method"], account["url"], account["body"]) == ("GET", "/echo", "")
    assert header_values(account, "host") == [f"127.0.0.1:{origin.port}"]
    assert header_values(account, "content-length") == []
    assert header_values(account, "transfer-encoding") == []


async def test_get_without_scheme(origin: Origin) -> None:
    account = echoed(await run_get(f"127.0.0.1:{origin.port}/echo"))
    assert account["method"] == "GET"


async def test_get_include_head(origin: Origin) -> None:
    result = await run_get("-i", f"{origin.url}/echo")
    assert result.returncode == 0
    head, sep, body = result.stdout.partition(b"\r\n\r\n")
    assert sep
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    # As received: order, casing and repeated names kept.
    assert b"X-Repeated: one" in lines
    assert b"X-Repeated: two" in lines
    assert lines.index(b"X-Repeated: one") < lines.index(b"X-Repeated: two")
    assert b"x-MiXeD-case: kept" in lines
    assert f"Content-Length: {len(body)}".encode() in lines
    assert json.loads(body)["url"] == "/echo"


async def test_get_include_head_of_404(origin: Origin) -> None:
    result = await run_get("-i", f"{origin.url}/missing")
    assert result.returncode == 0
    assert result.stdout.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert result.stdout.endswith(b"\r\n\r\nno such thing\n")


async def test_get_include_head_shows_informational_responses(origin: Origin) -> None:
    result = await run_get("-i", f"{origin.url}/hints")
    assert result.returncode == 0
    assert result.stdout.startswith(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n"
    )
    assert result.stdout.endswith(b"\r\n\r\nfinal\n")
    assert (await run_get(f"{origin.url}/hints")).stdout == b"final\n"  # only the body


async def test_get_output_file(origin: Origin, tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old content, longer than nothing")
    result = await run_get("-o", str(target), f"{origin.url}/big")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert target.read_bytes() == BIG  # replaced, byte for byte
    with_head = tmp_path / "with-head.txt"
    result = await run_get("-i", "-o", str(with_head), f"{origin.url}/missing")
    assert (result.returncode, result.stdout) == (0, b"")
    data = with_head.read_bytes()
    assert data.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert data.endswith(b"\r\n\r\nno such thing\n")


async def test_get_output_dash_is_stdout(origin: Origin) -> None:
    result = await run_get("-o", "-", f"{origin.url}/missing")
    assert (result.returncode, result.stdout) == (0, b"no such thing\n")


async def test_get_headers_reach_the_server(origin: Origin) -> None:
    account = echoed(
        await run_get(
            "-H",
            "X-Token: abc",
            "-H",
            "x-token:def",
            "-H",
            "Host: example.test",
            "-H",
            "X-Empty:",
            "-H",
            "Accept:   text/plain  ",
            f"{origin.url}/echo",
        )
    )
    assert header_values(account, "x-token") == ["abc", "def"]
    assert header_values(account, "host") == ["example.test"]  # replaces the automatic one
    assert header_values(account, "x-empty") == [""]
    assert header_values(account, "accept") == ["text/plain"]


async def test_get_put_with_data(origin: Origin) -> None:
    account = echoed(await run_get("-X", "PUT", "-d", "a=1&b=two", f"{origin.url}/echo"))
    assert (account["method"], account["body"]) == ("PUT", "a=1&b=two")
    assert header_values(account, "content-length") == ["9"]
    assert header_values(account, "content-type") == ["application/x-www-form-urlencoded"]


async def test_get_data_means_post_and_content_type_can_be_set(origin: Origin) -> None:
    account = echoed(
        await run_get(
            "-d", '{"k": 1}', "-H", "Content-Type: application/json", f"{origin.url}/echo"
        )
    )
    assert (account["method"], account["body"]) == ("POST", '{"k": 1}')
    assert header_values(account, "content-type") == ["application/json"]


async def test_get_data_from_file(origin: Origin, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 1000 + b"\r\n\x00trailing newline\n"  # binary, > 1 chunk
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    account = echoed(await run_get("-d", f"@{source}", f"{origin.url}/echo"))
    assert account["method"] == "POST"
    assert account["body"].encode("latin-1") == payload  # sent as is, nothing stripped
    assert header_values(account, "content-length") == [str(len(payload))]
    assert header_values(account, "transfer-encoding") == []


async def test_get_data_from_empty_file(origin: Origin, tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.write_bytes(b"")
    account = echoed(await run_get("-X", "PUT", "-d", f"@{source}", f"{origin.url}/echo"))
    assert (account["method"], account["body"]) == ("PUT", "")
    assert header_values(account, "content-length") == ["0"]


async def test_get_data_from_stdin_is_chunked(origin: Origin) -> None:
    payload = b"line one\nline two\n" * 5000
    account = echoed(await run_get("-d", "@-", f"{origin.url}/echo", stdin=payload))
    assert account["body"].encode("latin-1") == payload
    assert header_values(account, "transfer-encoding") == ["chunked"]
    assert header_values(account, "content-length") == []


async def test_get_404_exits_0(origin: Origin) -> None:
    result = await run_get(f"{origin.url}/missing")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"no such thing\n", b"")


def _closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound, then closed without listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_get_connection_refused_exits_1(tmp_path: Path) -> None:
    port = _closed_port()
    target = tmp_path / "never.bin"
    result = await run_get("-o", str(target), f"http://127.0.0.1:{port}/")
    assert result.returncode == 1
    assert result.stdout == b""
    stderr = result.stderr.decode()
    assert stderr == f"trio-nodehttp: connect ECONNREFUSED 127.0.0.1:{port} [ECONNREFUSED]\n"
    assert not target.exists()  # the output is created only when a response starts


async def test_get_cut_body_exits_1(origin: Origin) -> None:
    result = await run_get(f"{origin.url}/cut")
    assert result.returncode == 1
    assert result.stdout == b"0123456789"  # what came is kept
    assert "[ECONNRESET]" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


async def test_get_bad_header_exits_2(origin: Origin) -> None:
    result = await run_get("-H", "no colon here", f"{origin.url}/echo")
    assert result.returncode == 2
    assert result.stdout == b""
    stderr = result.stderr.decode()
    assert "usage:" in stderr
    assert "invalid header 'no colon here'" in stderr


async def test_get_in_process(origin: Origin, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    status = await trio.to_thread.run_sync(main, ["get", "-i", f"{origin.url}/missing"])
    assert status == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert out.endswith(b"\r\n\r\nno such thing\n")


async def test_get_in_process_refused(capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    status = await trio.to_thread.run_sync(main, ["get", f"http://127.0.0.1:{port}/"])
    assert status == 1
    assert "[ECONNREFUSED]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["-H", "NoColon"],
        ["-H", ": value only"],
        ["-H", "Bad Name: x"],
        ["-H", "X-Ctl: a\x01b"],
        ["-H", "X-Newline: a\nb"],
        ["-X", "NOT A METHOD"],
        ["-X", ""],
        ["-d", "@"],
        ["--no-such-option"],
    ],
)
def test_get_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["get", *argv, "http://127.0.0.1:9/"])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["https://example.test/"], "ERR_INVALID_PROTOCOL"),
        (["http://[::1/"], "ERR_INVALID_URL"),
        (["http://127.0.0.1:9/a b"], "ERR_UNESCAPED_CHARACTERS"),
        (["-d", "@{missing}", "http://127.0.0.1:9/"], "cannot read"),
        (["-d", "@{tmp}", "http://127.0.0.1:9/"], "is a directory"),
        (["-o", "{missing}/out", "http://127.0.0.1:9/"], "no such directory"),
        (["-o", "{tmp}", "http://127.0.0.1:9/"], "is a directory"),
    ],
)
def test_get_unusable_command_lines_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = {"missing": str(tmp_path / "missing"), "tmp": str(tmp_path)}
    with pytest.raises(SystemExit) as info:
        main(["get", *(arg.format(**names) for arg in argv)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert message in err


def test_get_parser_defaults_and_options() -> None:
    args = build_parser().parse_args(["get", "http://h/"])
    assert (args.command, args.url, args.output, args.headers) == ("get", "http://h/", None, [])
    assert (args.method, args.data, args.include) == (None, None, False)
    args = build_parser().parse_args(
        ["get", "h/x", "-o", "f", "-H", "A: 1", "--header", "b:2", "-X", "put", "-d", "@f", "-i"]
    )
    assert args.headers == [("A", "1"), ("b", "2")]
    assert (args.output, args.method, args.include) == ("f", "PUT", True)
    assert (args.data.path, args.data.data) == ("f", None)
    assert build_parser().parse_args(["get", "u", "-d", "a=é"]).data.data == "a=é".encode()


async def test_get_ctrl_c_exits_130(origin: Origin) -> None:
    stderr = bytearray()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    [*GET, f"{origin.url}/hang"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            )
            assert process.stdout is not None and process.stderr is not None
            nursery.start_soon(_drain, process.stderr, stderr)
            # The first line is flushed as it arrives: the transfer is under way.
            assert await _read_line(process.stdout) == b"first line"
            process.send_signal(signal.SIGINT)
            returncode = await process.wait()
    assert returncode == 130
    assert b"Traceback" not in stderr


async def test_get_ctrl_c_while_reading_stdin_exits_130(origin: Origin) -> None:
    """Ctrl-C while the body is being read from standard input (which may never end)."""
    stdout, stderr = bytearray(), bytearray()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    [*GET, "-d", "@-", f"{origin.url}/upload"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            )
            assert process.stdin and process.stdout and process.stderr
            nursery.start_soon(_drain, process.stdout, stdout)
            nursery.start_soon(_drain, process.stderr, stderr)
            await process.stdin.send_all(b"first piece")  # sent with the head
            await origin.upload_started.wait()  # the command now waits for more input
            process.send_signal(signal.SIGINT)
            returncode = await process.wait()
            await process.stdin.aclose()
    assert returncode == 130, stderr.decode(errors="replace")
    assert stdout == b""
    assert b"Traceback" not in stderr
    assert b"Fatal" not in stderr


async def _read_terminal(stream: trio.abc.ReceiveStream, into: bytearray, until: bytes) -> None:
    """Read a pty master into ``into`` until ``until`` matches (a regex) or the end."""
    pattern = re.compile(until)
    while not pattern.search(into):
        try:
            chunk = await stream.receive_some(4096)
        except (trio.BrokenResourceError, OSError):  # EIO: the child has exited
            return
        if not chunk:
            return
        into += chunk


async def test_get_progress_on_a_terminal(origin: Origin) -> None:
    """With stderr a terminal, a long download shows a meter, erased at the end."""
    master, slave = os.openpty()
    terminal = bytearray()
    meter = rb"\r\d+(\.\d)? (B|KiB|MiB|GiB)"
    with trio.fail_after(60):
        async with trio.lowlevel.FdStream(master) as tty, trio.open_nursery() as nursery:
            try:
                process: trio.Process = await nursery.start(
                    partial(
                        trio.run_process,
                        [*GET, f"{origin.url}/stream"],
                        stdout=subprocess.DEVNULL,  # not a terminal: the meter is allowed
                        stderr=slave,
                        check=False,
                    )
                )
            finally:
                os.close(slave)  # the child's copy is the last: EOF when it exits
            await _read_terminal(tty, terminal, meter)
            origin.stop.set()  # a meter was drawn: let the body end
            await _read_terminal(tty, terminal, b"(?!)")  # the rest, until the child exits
            returncode = await process.wait()
    assert returncode == 0, bytes(terminal)
    text = bytes(terminal)
    assert re.search(meter, text), text
    assert b"/" not in text  # chunked: no total to show
    last_meter = list(re.finditer(meter, text))[-1]
    assert re.fullmatch(rb"[^\r]*\r +\r", text[last_meter.start() + 1 :]), text  # erased
    assert b"\n" not in text  # nothing else was written


def test_progress_meter_timing_and_clearing() -> None:
    assert PROGRESS_INTERVAL >= 0.1  # at most ~10 redraws a second
    now = 100.0
    stream = io.StringIO()
    progress = _Progress(stream, 4 * 1024 * 1024, interval=0.25, clock=lambda: now)
    progress.update(1000)
    assert stream.getvalue() == ""  # within the first interval: nothing yet
    now += 0.25
    progress.update(1024 * 1024)
    assert stream.getvalue() == "\r1.0 MiB / 4.0 MiB (25%)"
    now += 0.125
    progress.update(2 * 1024 * 1024)
    assert stream.getvalue() == "\r1.0 MiB / 4.0 MiB (25%)"  # at most once per interval
    now += 0.125
    progress.update(4 * 1024 * 1024 - 1)
    assert stream.getvalue().endswith("\r4.0 MiB / 4.0 MiB (99%)")
    progress.clear()
    width = len("4.0 MiB / 4.0 MiB (99%)")
    assert stream.getvalue().endswith("\r" + " " * width + "\r")
    written = stream.getvalue()
    progress.clear()  # nothing shown: nothing written
    assert stream.getvalue() == written


def test_progress_meter_unknown_total_and_shorter_lines() -> None:
    now = 0.0
    stream = io.StringIO()
    progress = _Progress(stream, None, clock=lambda: now)
    now += 1
    progress.update(1024 * 1024 - 1)
    now += 1
    progress.update(1024 * 1024)
    # The shorter line is padded to cover the longer one.
    assert stream.getvalue() == "\r1024.0 KiB\r1.0 MiB   "
    progress.clear()
    assert stream.getvalue().endswith("\r" + " " * len("1.0 MiB") + "\r")
    stream.seek(0)
    stream.truncate()
    progress = _Progress(stream, None, clock=lambda: now)
    progress.clear()
    assert stream.getvalue() == ""  # never drawn, never cleared


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024 * 1024, "5.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (5000 * 1024**3, "5000.0 GiB"),
    ],
)
def test_format_size(count: int, text: str) -> None:
    assert _format_size(count) == text


def test_format_head() -> None:
    message = IncomingMessage(
        None,
        [(b"X-A", b"1"), (b"x-a", b"2"), (b"Caf\xe9", b"\xff")],
        b"1.0",
        status_code=203,
        status_message="Non-Authoritative Information",
    )
    assert format_head(message) == (
        b"HTTP/1.0 203 Non-Authoritative Information\r\nX-A: 1\r\nx-a: 2\r\nCaf\xe9: \xff\r\n\r\n"
    )
    bare = IncomingMessage(None, [], b"1.1", status_code=299, status_message="")
    assert format_head(bare) == b"HTTP/1.1 299\r\n\r\n"


async def test_error_codes() -> None:
    port = _closed_port()
    with pytest.raises(OSError) as caught:  # as trio reports it: a group of one per address
        await trio.open_tcp_stream("127.0.0.1", port)
    assert error_code(caught.value) == "ECONNREFUSED"
    assert describe_error(caught.value, "127.0.0.1", port, connected=False) == (
        f"connect ECONNREFUSED 127.0.0.1:{port} [ECONNREFUSED]"
    )
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert describe_error(gai, "nowhere.invalid", 80, connected=False) == (
        "getaddrinfo ENOTFOUND nowhere.invalid [ENOTFOUND]"
    )
    broken = trio.BrokenResourceError("gone")
    broken.__cause__ = BrokenPipeError(errno.EPIPE, "Broken pipe")
    assert describe_error(broken, "h", 1, connected=True) == "gone [EPIPE]"
    assert describe_error(OSError("odd"), "h", 1, connected=True) == "odd"
