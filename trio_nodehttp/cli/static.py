"""A static file server as a request handler: :class:`StaticFiles`.

It answers ``GET`` and ``HEAD`` for the files below a directory: directory index pages
(``index.html``) or listings, ``Last-Modified``/``If-Modified-Since`` (304), single byte
ranges (206/416), and an optional access log. Dot-files (names starting with ``.``,
such as ``.git`` or ``.env``) are hidden and refused unless asked for.
``trio-nodehttp serve`` runs it, and it works on any server of this package.
"""

from __future__ import annotations

import email.utils
import html
import math
import mimetypes
import os
import stat
import time
import urllib.parse
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Literal

import attrs
import trio

from .._incoming import IncomingMessage
from .._server import ServerResponse
from .._status import STATUS_CODES

__all__ = [
    "CHUNK_SIZE",
    "AccessLog",
    "StaticFiles",
    "content_type",
    "parse_range",
    "render_listing",
]

#: Bytes read from a file and written to the connection at a time.
CHUNK_SIZE = 64 * 1024

#: Receives one access-log line (without the newline).
AccessLog = Callable[[str], None]

_ALLOW = "GET, HEAD"
_DEFAULT_TYPE = "application/octet-stream"
# Compressed files are served as what they are, never with a Content-Encoding (a client
# would unpack them), as Python's http.server does.
_ENCODED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}


@attrs.define
class _Sent:
    """Body bytes sent so far for one request (for the access log)."""

    bytes: int = 0


class _BadRequest(Exception):
    """The request target cannot name a file."""


@attrs.frozen
class _Target:
    """What a request path names inside the served directory."""

    kind: Literal["file", "dir", "missing", "forbidden"]
    path: Path | None = None
    stat: os.stat_result | None = None


def _split_target(target: str) -> tuple[list[str], str]:
    """The decoded path segments and the raw query of a request target.

    Empty and ``.`` segments are dropped; a ``..`` segment, or a (percent-encoded) path
    separator or drive inside a segment, raises :class:`PermissionError`; NUL or
    undecodable bytes raise :class:`_BadRequest`.
    """
    if target.startswith("/"):
        raw_path, _, query = target.partition("?")
    else:  # absolute-form (``http://host/path``), as a proxy would send it
        parts = urllib.parse.urlsplit(target)
        raw_path, query = parts.path or "/", parts.query
        if not parts.scheme or not raw_path.startswith("/"):
            raise _BadRequest(target)
    segments: list[str] = []
    for raw in raw_path.split("/"):
        try:
            segment = os.fsdecode(urllib.parse.unquote_to_bytes(raw))
        except UnicodeDecodeError:
            raise _BadRequest(target) from None
        if "\x00" in segment:
            raise _BadRequest(target)
        if segment in ("", "."):
            continue
        if segment == ".." or "/" in segment or (os.altsep and os.altsep in segment):
            raise PermissionError(target)
        if os.sep in segment or os.path.splitdrive(segment)[0]:
            raise PermissionError(target)
        segments.append(segment)
    return segments, query


def _locate(root: Path, segments: Sequence[str]) -> _Target:
    """Find what ``segments`` name below ``root`` (blocking: run it in a thread).

    The real path (symlinks resolved) must stay inside ``root``, which is itself resolved.
    """
    try:
        path = root.joinpath(*segments).resolve()
        if not path.is_relative_to(root):
            return _Target("forbidden")
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return _Target("missing")
    except PermissionError:
        return _Target("forbidden")
    except (OSError, RuntimeError):  # a symlink loop, a name too long ...
        return _Target("missing")
    if stat.S_ISDIR(info.st_mode):
        return _Target("dir", path, info)
    if stat.S_ISREG(info.st_mode):
        return _Target("file", path, info)
    return _Target("forbidden")  # FIFOs, devices and sockets are not served


def _locate_index(directory: Path, root: Path) -> _Target:
    """``directory/index.html`` if it is a regular file inside ``root``."""
    target = _locate(root, [*directory.relative_to(root).parts, "index.html"])
    return target if target.kind == "file" else _Target("missing")


def _is_hidden(name: str) -> bool:
    """Whether ``name`` (a decoded path segment or a directory entry) is a dot-file."""
    return name.startswith(".")


def _list_directory(path: Path, *, dotfiles: bool = False) -> list[tuple[str, bool]]:
    """``(name, is_directory)`` for each entry, sorted, dot-files left out unless
    ``dotfiles`` (blocking: run it in a thread)."""
    entries: list[tuple[str, bool]] = []
    with os.scandir(path) as scan:
        for entry in scan:
            if not dotfiles and _is_hidden(entry.name):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            entries.append((entry.name, is_dir))
    entries.sort(key=lambda item: (item[0].casefold(), item[0]))
    return entries


def _display(name: str) -> str:
    """Text fit for HTML (undecodable file-name bytes become U+FFFD)."""
    return html.escape(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def _href(segments: Sequence[str], *, directory: bool) -> str:
    """An absolute, percent-encoded URL path for ``segments``; never starts with ``//``."""
    path = "/" + "/".join(urllib.parse.quote(os.fsencode(s), safe="") for s in segments)
    return path + "/" if directory and segments else path


def render_listing(url_path: str, entries: Sequence[tuple[str, bool]], *, root: bool) -> bytes:
    """The HTML listing page for a directory at ``url_path`` (names are escaped)."""
    title = f"Index of {_display(url_path)}"
    items = [] if root else ['<li><a href="../">../</a></li>']
    for name, is_dir in entries:
        suffix = "/" if is_dir else ""
        href = html.escape(urllib.parse.quote(os.fsencode(name), safe="") + suffix)
        items.append(f'<li><a href="{href}">{_display(name)}{suffix}</a></li>')
    page = (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta charset="utf-8">\n'
        f"<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n<ul>\n"
        + "".join(item + "\n" for item in items)
        + "</ul>\n</body>\n</html>\n"
    )
    return page.encode("utf-8")


def content_type(path: Path | str) -> str:
    """The ``Content-Type`` for a file name (``application/octet-stream`` if unknown)."""
    kind, encoding = mimetypes.guess_type(os.fspath(path), strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, _DEFAULT_TYPE)
    return kind or _DEFAULT_TYPE


def parse_range(value: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """Interpret a ``Range`` header for a representation of ``size`` bytes.

    Returns ``(first, last)`` (inclusive) for one satisfiable byte range,
    ``"unsatisfiable"`` when it cannot be served (416), or ``None`` when the header
    should be ignored and the whole file sent: another unit, bad syntax, or more than
    one range (RFC 7233 allows a full 200 then).
    """
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    ranges = [part.strip() for part in spec.split(",") if part.strip()]
    if len(ranges) != 1:
        return None
    first_text, dash, last_text = ranges[0].partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text or last_text):
        return None
    if not all(text.isdigit() and text.isascii() for text in (first_text, last_text) if text):
        return None
    if not first_text:  # suffix range: the last N bytes
        length = int(last_text)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        return "unsatisfiable"
    last = min(int(last_text), size - 1) if last_text else size - 1
    return first, last


def _not_modified(req: IncomingMessage, mtime: int) -> bool:
    """Whether ``If-Modified-Since`` shows the client's copy is current."""
    if "if-none-match" in req.headers:
        return False  # it takes precedence (RFC 7232 §3.3), and we send no ETag
    value = _header(req, "if-modified-since")
    if value is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if since > time.time():
        return False  # a date in the future is invalid
    return mtime <= since


def _header(req: IncomingMessage, name: str) -> str | None:
    value = req.headers.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _client_address(req: IncomingMessage) -> str:
    stream = req.socket
    if isinstance(stream, trio.SocketStream):
        try:
            peer = stream.socket.getpeername()
        except OSError:
            return "-"
        if isinstance(peer, tuple):
            return str(peer[0])
        return str(peer) or "-"
    return "-"


def _printable(text: str) -> str:
    """``text`` with control characters, quotes and backslashes escaped for a log."""
    return "".join(f"\\x{ord(ch):02x}" if ch < " " or ch in '\x7f"\\' else ch for ch in text)


class StaticFiles:
    """A request handler serving the files below ``directory``.

    ``access_log`` receives one line per request (``None``: no log). Names starting
    with ``.`` are left out of listings, and a request whose path has such a segment
    (``/.git/config``, ``/.env``, ``/%2eenv``) gets 404, unless ``dotfiles`` is true.
    (Only the request's path is checked: a link with a plain name that points at a
    dot-file inside the directory is served, as the link's owner meant.) Use it with
    :func:`~trio_nodehttp.create_server`::

        import trio
        import trio_nodehttp as http
        from trio_nodehttp.cli.static import StaticFiles

        async def main():
            server = http.create_server(StaticFiles("public"))
            async with trio.open_nursery() as nursery:
                await nursery.start(server.listen, 8000, "127.0.0.1")

        trio.run(main)

    or run :func:`~trio_nodehttp.cli.serve.serve_directory`, which adds graceful
    shutdown.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        access_log: AccessLog | None = None,
        *,
        dotfiles: bool = False,
    ):
        #: The served directory, resolved (symlinks followed).
        self.root = Path(directory).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"not a directory: {os.fspath(directory)!r}")
        self.access_log = access_log
        #: Whether dot-files are listed and served.
        self.dotfiles = dotfiles
        if not mimetypes.inited:
            mimetypes.init()  # read the system's type maps now, not in a request

    async def __call__(self, req: IncomingMessage, res: ServerResponse) -> None:
        """Answer one request, then write its access-log line."""
        started = time.monotonic()
        client = _client_address(req)
        sent = _Sent()
        try:
            await self._respond(req, res, sent)
        finally:
            if self.access_log is not None:
                elapsed_ms = (time.monotonic() - started) * 1000
                self.access_log(_log_line(req, res, client, sent.bytes, elapsed_ms))

    async def _respond(self, req: IncomingMessage, res: ServerResponse, sent: _Sent) -> None:
        """Answer ``req``, counting the body bytes sent in ``sent``."""
        if req.method not in ("GET", "HEAD"):
            return await _send_error(req, res, sent, 405, {"Allow": _ALLOW})
        try:
            segments, query = _split_target(req.url or "")
        except _BadRequest:
            return await _send_error(req, res, sent, 400)
        except PermissionError:
            return await _send_error(req, res, sent, 403)
        if not self.dotfiles and any(_is_hidden(segment) for segment in segments):
            return await _send_error(req, res, sent, 404)

        target = await trio.to_thread.run_sync(_locate, self.root, segments)
        if target.kind == "missing":
            return await _send_error(req, res, sent, 404)
        if target.kind == "forbidden":
            return await _send_error(req, res, sent, 403)
        assert target.path is not None and target.stat is not None
        if target.kind == "file":
            return await _send_file(req, res, sent, target.path, target.stat)

        url_path = _href(segments, directory=True)
        raw_path = (req.url or "").partition("?")[0]
        if not raw_path.endswith("/"):
            location = url_path + (f"?{query}" if query else "")
            return await _send_error(req, res, sent, 301, {"Location": location})
        index = await trio.to_thread.run_sync(_locate_index, target.path, self.root)
        if index.path is not None and index.stat is not None:
            return await _send_file(req, res, sent, index.path, index.stat)
        try:
            entries = await trio.to_thread.run_sync(
                partial(_list_directory, target.path, dotfiles=self.dotfiles)
            )
        except PermissionError:
            return await _send_error(req, res, sent, 403)
        except OSError:
            return await _send_error(req, res, sent, 404)
        shown = "/" + "/".join(segments) + ("/" if segments else "")
        body = render_listing(shown, entries, root=not segments)
        return await _send_body(req, res, sent, 200, body, "text/html; charset=utf-8")


async def _send_body(
    req: IncomingMessage,
    res: ServerResponse,
    sent: _Sent,
    status: int,
    body: bytes,
    kind: str,
    headers: dict[str, str] | None = None,
) -> None:
    res.set_header("Content-Type", kind)
    res.set_header("Content-Length", len(body))
    for name, value in (headers or {}).items():
        res.set_header(name, value)
    res.write_head(status)
    if req.method == "HEAD":
        await res.end()
        return
    await res.end(body)
    sent.bytes += len(body)


async def _send_error(
    req: IncomingMessage,
    res: ServerResponse,
    sent: _Sent,
    status: int,
    headers: dict[str, str] | None = None,
) -> None:
    body = f"{status} {STATUS_CODES.get(status, 'Error')}\n".encode()
    return await _send_body(req, res, sent, status, body, "text/plain; charset=utf-8", headers)


async def _send_file(
    req: IncomingMessage, res: ServerResponse, sent: _Sent, path: Path, info: os.stat_result
) -> None:
    """Answer with the file at ``path`` (or a part of it, or 304/416)."""
    size = info.st_size
    mtime = math.floor(info.st_mtime)
    last_modified = email.utils.formatdate(mtime, usegmt=True)
    if _not_modified(req, mtime):
        res.set_header("Last-Modified", last_modified)
        res.write_head(304)
        await res.end()
        return

    status, first, last = 200, 0, size - 1
    range_header = _header(req, "range")
    if_range = _header(req, "if-range")
    if (
        req.method == "GET"
        and range_header is not None
        and (if_range is None or if_range.strip() == last_modified)
    ):
        wanted = parse_range(range_header, size)
        if wanted == "unsatisfiable":
            return await _send_error(req, res, sent, 416, {"Content-Range": f"bytes */{size}"})
        if wanted is not None:
            status, (first, last) = 206, wanted

    length = last - first + 1
    headers: dict[str, str | int] = {
        "Content-Type": content_type(path),
        "Content-Length": length,
        "Last-Modified": last_modified,
        "Accept-Ranges": "bytes",
    }
    if status == 206:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    if req.method == "HEAD" or length == 0:
        res.write_head(status, headers)
        await res.end()
        return
    try:
        file = await trio.open_file(path, "rb")
    except PermissionError:
        return await _send_error(req, res, sent, 403)
    except OSError:
        return await _send_error(req, res, sent, 404)
    res.write_head(status, headers)
    remaining = length
    async with file:
        if first:
            await file.seek(first)
        while remaining > 0:
            chunk = await file.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                # The file shrank under us: the promised length cannot be kept, so
                # the connection has to go (the client sees a short body).
                res.destroy()
                return
            await res.write(chunk)
            sent.bytes += len(chunk)
            remaining -= len(chunk)
    await res.end()


def _log_line(
    req: IncomingMessage, res: ServerResponse, client: str, sent: int, elapsed_ms: float
) -> str:
    when = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime())
    request = f"{req.method} {req.url} HTTP/{req.http_version}"
    status = res.status_code if res.headers_sent else "-"
    return f'{client} - - [{when}] "{_printable(request)}" {status} {sent} {elapsed_ms:.1f}ms'
