"""The static file handler of ``trio-nodehttp serve`` (:class:`StaticFiles`), on a
server over real sockets: files, conditional and range requests, directories, traversal,
the access log, and its helpers."""

from __future__ import annotations

import email.utils
import http.client
import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest
import trio

from trio_nodehttp import IncomingMessage, ServerResponse, create_server
from trio_nodehttp.cli.static import (
    StaticFiles,
    _send_file,
    _Sent,
    content_type,
    parse_range,
    render_listing,
)

from .cli_support import BIG, DOTFILE, HELLO, INDEX, SECRET, make_site


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
    return make_site(tmp_path)


@pytest.fixture
async def served(nursery: trio.Nursery, site: Path) -> Served:
    """The file server on a free port of 127.0.0.1 (the nursery cancels it at the end)."""
    log = AccessLog()
    server = create_server(StaticFiles(site, access_log=log))
    _, port = await nursery.start(server.listen, 0, "127.0.0.1")
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


# --- dot-files ---------------------------------------------------------------------------


@pytest.fixture
async def served_dotfiles(nursery: trio.Nursery, site: Path) -> Served:
    """The file server with ``dotfiles=True``, on a free port of 127.0.0.1."""
    log = AccessLog()
    server = create_server(StaticFiles(site, access_log=log, dotfiles=True))
    _, port = await nursery.start(server.listen, 0, "127.0.0.1")
    return Served(port, log, site)


@pytest.mark.parametrize(
    "target",
    [
        "/.env",
        "/.env?download=1",
        "//.env",
        "/.git/config",
        "/.git/",
        "/.git",  # a directory: no redirect either
        "/list/.hidden",
        "/list/./.hidden",
        "/%2eenv",
        "/%2Eenv",
        "/.%67it/config",
        "/.%67it/",
        "/%2e%67%69%74/config",
        "/list/%2ehidden",
        "/.nothing-here",
        "/...",
        "http://127.0.0.1/.env",  # absolute-form
    ],
)
async def test_dotfiles_are_refused(served: Served, target: str) -> None:
    for method in ("GET", "HEAD"):
        reply = await fetch(served, target, method)
        assert reply.status == 404, (method, target)
        assert "location" not in reply.headers
        assert DOTFILE not in reply.body


async def test_listings_leave_dotfiles_out(served: Served) -> None:
    root = (await fetch(served, "/")).body.decode()
    assert ".env" not in root
    assert ".git" not in root
    assert '<a href="sub/">sub/</a>' in root
    listing = (await fetch(served, "/list/")).body.decode()
    assert ".hidden" not in listing
    assert '<a href="inner/">inner/</a>' in listing


async def test_a_link_with_a_plain_name_to_a_dotfile_is_served(served: Served) -> None:
    """Only the request's path is checked: the link's owner chose to publish it."""
    (served.root / "env.txt").symlink_to(served.root / ".env")
    reply = await fetch(served, "/env.txt")
    assert (reply.status, reply.body) == (200, DOTFILE)


@pytest.mark.parametrize(
    "target", ["/.env", "/%2eenv", "/.git/config", "/.%67it/config", "/list/.hidden"]
)
async def test_dotfiles_are_served_when_allowed(served_dotfiles: Served, target: str) -> None:
    reply = await fetch(served_dotfiles, target)
    assert (reply.status, reply.body) == (200, DOTFILE)


async def test_dotfiles_are_listed_when_allowed(served_dotfiles: Served) -> None:
    root = (await fetch(served_dotfiles, "/")).body.decode()
    assert '<a href=".env">.env</a>' in root
    assert '<a href=".git/">.git/</a>' in root
    listing = (await fetch(served_dotfiles, "/list/")).body.decode()
    assert '<a href=".hidden">.hidden</a>' in listing
    reply = await fetch(served_dotfiles, "/.git")
    assert (reply.status, reply.headers["location"]) == (301, "/.git/")


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/.%2e/secret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/..",
    ],
)
async def test_traversal_is_refused_with_dotfiles_too(served_dotfiles: Served, target: str) -> None:
    reply = await fetch(served_dotfiles, target)
    assert reply.status == 403
    assert SECRET not in reply.body


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


def test_render_listing() -> None:
    page = render_listing("/<x>/", [("<y>", True)], root=False).decode()
    assert "<title>Index of /&lt;x&gt;/</title>" in page
    assert '<a href="%3Cy%3E/">&lt;y&gt;/</a>' in page
