"""The ``trio-nodehttp`` command line (also ``python -m trio_nodehttp``).

Subcommands
-----------
``serve [DIR]``
    A static file server for ``DIR`` (default ``.``): ``GET`` and ``HEAD``, directory
    index pages or listings, ``Last-Modified``/``If-Modified-Since`` (304), single byte
    ranges (206/416), an access log on stderr, and a graceful shutdown on SIGINT or
    SIGTERM (a second signal forces it).
``get URL [-o FILE] [-H 'Name: value']... [-X METHOD] [-d DATA] [-i]``
    A small curl on the global agent: sends one request and streams the response body
    to standard output or ``FILE``. Exit status 0 for any complete response (404
    included), 1 when the exchange fails (network errors, an output that cannot be
    written), 2 for usage errors, 130 on Ctrl-C.

Adding a subcommand: write an ``_add_<name>_parser(subparsers)`` function that builds
its parser and sets ``func`` (a function taking the parsed namespace and returning the
exit status) with ``set_defaults``, and call it from :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import email.utils
import errno
import html
import logging
import math
import mimetypes
import os
import signal
import socket
import stat
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO, Literal, TextIO

import attrs
import trio

from ._client import ClientRequest, connect_error, request, root_os_error
from ._errors import HTTPError
from ._headers import is_token, validate_header_name, validate_header_value
from ._incoming import IncomingMessage
from ._server import ServerResponse, create_server
from ._status import STATUS_CODES

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


def _list_directory(path: Path) -> list[tuple[str, bool]]:
    """``(name, is_directory)`` for each entry, sorted (blocking: run it in a thread)."""
    entries: list[tuple[str, bool]] = []
    with os.scandir(path) as scan:
        for entry in scan:
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

    ``access_log`` receives one line per request (``None``: no log). Use it with
    :func:`~trio_nodehttp.create_server`, or run :func:`serve_directory`.
    """

    def __init__(self, directory: str | os.PathLike[str], access_log: AccessLog | None = None):
        #: The served directory, resolved (symlinks followed).
        self.root = Path(directory).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"not a directory: {os.fspath(directory)!r}")
        self.access_log = access_log
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
            entries = await trio.to_thread.run_sync(_list_directory, target.path)
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


def format_url(host: str, port: int) -> str:
    """``http://host:port/``, with IPv6 addresses in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def serve_directory(
    directory: str | os.PathLike[str] = ".",
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    keep_alive_timeout: float = 5.0,
    headers_timeout: float | None = None,
    request_timeout: float = 300.0,
    access_log: AccessLog | None = None,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``directory`` over HTTP on ``host:port`` (port 0: any free port).

    Start it with ``await nursery.start(serve_directory, ...)``, which returns the bound
    ``(host, port)``. When ``shutdown`` is set, the server stops accepting, closes idle
    connections, lets active requests finish and returns; cancelling it stops at once.
    Listening errors (an address in use ...) raise :class:`OSError` from ``start``.
    """
    handler = StaticFiles(directory, access_log)
    server = create_server(
        handler,
        keep_alive_timeout=keep_alive_timeout,
        headers_timeout=headers_timeout,
        request_timeout=request_timeout,
    )
    listeners = await trio.open_tcp_listeners(port, host=host)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(server.serve_listeners, listeners)
        task_status.started((str(address[0]), int(address[1])))
        if shutdown is None:
            await trio.sleep_forever()
        else:
            await shutdown.wait()
            await server.close()


# --- command line ----------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"seconds must be a finite number >= 0, not {text}")
    return value


def _print_access_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _add_serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a directory's files over HTTP",
        description=(
            "Serve the files below DIR over HTTP (GET and HEAD, with Range and "
            "If-Modified-Since). Ctrl-C or SIGTERM shuts down gracefully; a second "
            "signal stops at once."
        ),
    )
    parser.add_argument("directory", metavar="DIR", nargs="?", default=".", help="default: .")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="0 picks a free port (8000)")
    parser.add_argument(
        "--keep-alive-timeout",
        type=_seconds,
        default=5.0,
        metavar="S",
        help="idle seconds allowed between requests on a connection (5; 0: no limit)",
    )
    parser.add_argument(
        "--headers-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="seconds allowed to receive a request's head (min(60, request timeout))",
    )
    parser.add_argument(
        "--request-timeout",
        type=_seconds,
        default=300.0,
        metavar="S",
        help="seconds allowed to receive a whole request (300; 0: no limit)",
    )
    parser.set_defaults(func=_serve_command, parser=parser)


def build_parser() -> argparse.ArgumentParser:
    """The ``trio-nodehttp`` argument parser, with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="trio-nodehttp",
        description="Node.js's http module on trio and h11: command line tools.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_serve_parser(subparsers)
    _add_get_parser(subparsers)
    return parser


def _serve_command(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    directory = Path(args.directory)
    if not directory.is_dir():
        parser.error(f"not a directory: {args.directory}")
    request_timeout: float = args.request_timeout
    headers_timeout: float | None = args.headers_timeout
    if request_timeout and headers_timeout is not None and headers_timeout > request_timeout:
        parser.error("--headers-timeout must not exceed --request-timeout")
    serve = partial(
        serve_directory,
        directory,
        args.host,
        args.port,
        keep_alive_timeout=args.keep_alive_timeout,
        headers_timeout=headers_timeout,
        request_timeout=request_timeout,
        access_log=_print_access_log,
    )
    return trio.run(_serve_until_signalled, serve, args.directory)


async def _serve_until_signalled(serve: Callable[..., Awaitable[None]], shown: str) -> int:
    """Run ``serve`` (a :func:`serve_directory` partial) until SIGINT or SIGTERM.

    The first signal shuts the server down gracefully; a second one cancels it.
    """
    shutdown = trio.Event()
    status = 130  # stays so only if a second signal cancels everything
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as receiver:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                async for signum in receiver:
                    name = signal.Signals(signum).name
                    if not shutdown.is_set():
                        print(
                            f"{name}: shutting down gracefully (again to stop at once)",
                            file=sys.stderr,
                            flush=True,
                        )
                        shutdown.set()
                    else:
                        print(f"{name}: stopping now", file=sys.stderr, flush=True)
                        nursery.cancel_scope.cancel()

            nursery.start_soon(watch_signals)
            status = await _serve_and_announce(serve, shutdown, shown)
            nursery.cancel_scope.cancel()  # the watcher
    return status


async def _serve_and_announce(
    serve: Callable[..., Awaitable[None]], shutdown: trio.Event, shown: str
) -> int:
    async with trio.open_nursery() as nursery:
        try:
            host, port = await nursery.start(partial(serve, shutdown=shutdown))
        except OSError as exc:
            print(f"trio-nodehttp: cannot listen: {exc}", file=sys.stderr, flush=True)
            return 1
        print(f"Serving {shown} on {format_url(host, port)}", flush=True)
    return 0


# --- the get command -------------------------------------------------------------------

#: Seconds between two redraws of the progress line (so at most ~10 a second).
PROGRESS_INTERVAL = 0.1
#: Bodies announced (``Content-Length``) smaller than this get no progress line.
PROGRESS_MIN_BYTES = 1024 * 1024

_FORM_TYPE = "application/x-www-form-urlencoded"


class _LocalError(Exception):
    """Reading the request body or writing the response failed (not the network)."""


def _header_arg(text: str) -> tuple[str, str]:
    """A ``-H 'Name: value'`` argument as ``(name, value)``; argparse reports errors."""
    name, colon, value = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(f"invalid header {text!r}: expected 'Name: value'")
    value = value.strip(" \t")
    try:
        validate_header_name(name)
        validate_header_value(name, value)
    except HTTPError as exc:
        raise argparse.ArgumentTypeError(f"invalid header {text!r}: {exc}") from None
    return name, value


def _method_arg(text: str) -> str:
    """A ``-X`` method: an HTTP token (sent uppercased)."""
    if not is_token(text):
        raise argparse.ArgumentTypeError(f"invalid method: {text!r}")
    return text.upper()


@attrs.frozen
class _Upload:
    """A request body: bytes from the command line, or a file (``-`` is standard input)
    read as it is sent."""

    data: bytes | None = None
    path: str | None = None


def _data_arg(text: str) -> _Upload:
    """A ``-d`` argument: ``@FILE`` (``@-``: standard input) or the data itself."""
    if text.startswith("@"):
        if text == "@":
            raise argparse.ArgumentTypeError("-d @ needs a file name (@- for standard input)")
        return _Upload(path=text[1:])
    return _Upload(data=os.fsencode(text))  # the bytes of the argument, as given


def _format_size(count: int) -> str:
    """``count`` bytes for people: ``512 B``, ``1.5 KiB``, ``12.0 MiB`` ..."""
    if count < 1024:
        return f"{count} B"
    size = count / 1024
    units = ["KiB", "MiB", "GiB"]
    while size >= 1024 and units[1:]:
        size /= 1024
        units.pop(0)
    return f"{size:.1f} {units[0]}"


class _Progress:
    """A one-line download meter (``received / total (percent)``) on a terminal.

    :meth:`update` redraws it at most once per ``interval`` seconds, the first time one
    interval after the start (a quick download never shows it); :meth:`clear` erases it.
    """

    def __init__(
        self,
        stream: TextIO,
        total: int | None,
        *,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._total = total
        self._interval = interval
        self._clock = clock
        self._last = clock()
        self._width = 0  # of the line on screen (0: nothing shown)

    def update(self, received: int) -> None:
        """``received`` body bytes so far: redraw if the last draw is old enough."""
        now = self._clock()
        if now - self._last < self._interval:
            return
        self._last = now
        text = _format_size(received)
        if self._total:
            percent = min(100, received * 100 // self._total)
            text += f" / {_format_size(self._total)} ({percent}%)"
        self._draw("\r" + text.ljust(self._width))
        self._width = len(text)

    def clear(self) -> None:
        """Erase the line, if one is shown."""
        if self._width:
            self._draw("\r" + " " * self._width + "\r")
            self._width = 0

    def _draw(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a meter that cannot be shown is no reason to fail the download


class _Output:
    """Where the response goes: ``path``, or standard output (``None``).

    The file is created when the response starts (not if the request fails before).
    Writes run in a worker thread; on standard output each one is flushed, so a stream
    reaches a pipe as it arrives.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self._broken = False

    @property
    def name(self) -> str:
        return "standard output" if self.path is None else self.path

    async def open(self) -> None:
        """Open the output if not yet open (truncating an existing file)."""
        if self._file is not None:
            return
        if self.path is None:
            self._file = sys.stdout.buffer
            return
        try:
            self._file = await trio.to_thread.run_sync(_open_binary, self.path, "wb")
        except OSError as exc:
            raise _LocalError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    async def write(self, data: bytes) -> None:
        """Write ``data`` (opening the output first if needed)."""
        await self.open()
        await trio.to_thread.run_sync(self._write_sync, data)

    def _write_sync(self, data: bytes) -> None:
        assert self._file is not None
        try:
            self._file.write(data)
            if self.path is None:
                self._file.flush()
        except OSError as exc:
            self._fail(exc)

    async def close(self) -> None:
        """Close the file, or flush standard output."""
        file, self._file = self._file, None
        if file is None or self._broken:
            return
        await trio.to_thread.run_sync(self._close_sync, file)

    def _close_sync(self, file: BinaryIO) -> None:
        try:
            if self.path is None:
                file.flush()
            else:
                file.close()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self._broken = True
        if self.path is None and isinstance(exc, BrokenPipeError):
            # The reader went away (``| head``): point fd 1 at /dev/null, so the flush at
            # interpreter exit does not complain a second time.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
        raise _LocalError(f"cannot write {self.name}: {exc.strerror or exc}") from exc


def _open_binary(path: str, mode: Literal["wb"]) -> BinaryIO:
    """``open(path, mode)`` (blocking: run it in a thread)."""
    return open(path, mode)


def format_head(message: IncomingMessage) -> bytes:
    """A response's status line and headers as received, CRLF-terminated, with the blank
    line that ends the head (what ``-i`` writes)."""
    reason = f" {message.status_message}" if message.status_message else ""
    lines = [f"HTTP/{message.http_version} {message.status_code}{reason}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in message.raw_headers)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")  # header text was decoded as latin-1


def error_code(exc: BaseException) -> str | None:
    """The Node-style code (``ECONNREFUSED``, ``ENOTFOUND``, ``HPE_*`` ...) of a failure,
    looking through causes and exception groups for the errno of an OSError."""
    if isinstance(exc, HTTPError):
        return exc.code
    root = root_os_error(exc)
    if isinstance(root, socket.gaierror):
        return "ENOTFOUND"
    number = None if root is None else root.errno
    if number is not None and number in errno.errorcode:
        return errno.errorcode[number]
    return None


def describe_error(exc: BaseException, host: str, port: int, *, connected: bool) -> str:
    """``exc`` as Node words it, code last: ``connect ECONNREFUSED 127.0.0.1:1
    [ECONNREFUSED]``, ``socket hang up [ECONNRESET]`` ..."""
    if isinstance(exc, HTTPError):
        return str(exc)  # already ends with its code
    if not connected and isinstance(exc, OSError):
        return str(connect_error(exc, host, port))
    code = error_code(exc)
    if code is None:
        return str(exc) or type(exc).__name__
    return f"{exc or type(exc).__name__} [{code}]"


async def _send_request(req: ClientRequest, upload: _Upload | None) -> IncomingMessage:
    """Send ``req`` with its body and return the response once its head is read."""
    if upload is None:
        return await req.end()
    if upload.data is not None:
        return await req.end(upload.data)
    assert upload.path is not None
    fd = await _open_upload(upload.path)
    try:
        while True:
            # Unbuffered reads (a pipe's data goes out as it comes), in a thread that is
            # abandoned on Ctrl-C: a read from a terminal can wait for ever. No buffered
            # reader's lock is held there, so the exit cannot trip over it.
            try:
                chunk = await trio.to_thread.run_sync(
                    os.read, fd, CHUNK_SIZE, abandon_on_cancel=True
                )
            except OSError as exc:
                raise _LocalError(f"cannot read {upload.path}: {exc.strerror or exc}") from exc
            if not chunk:
                break
            await req.write(chunk)
    finally:
        if upload.path != "-":
            os.close(fd)
    return await req.end()


async def _open_upload(path: str) -> int:
    """A file descriptor to read the body from (``-``: standard input's, not to close)."""
    try:
        if path == "-":
            return sys.stdin.fileno()
        flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
        return await trio.to_thread.run_sync(os.open, path, flags)
    except (OSError, ValueError, AttributeError) as exc:  # stdin closed or missing
        reason = exc.strerror if isinstance(exc, OSError) else None
        raise _LocalError(f"cannot read {path}: {reason or exc}") from exc


def _content_length(res: IncomingMessage) -> int | None:
    value = res.headers.get("content-length")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


async def _fetch_to(
    req: ClientRequest,
    output: _Output,
    *,
    upload: _Upload | None = None,
    include_head: bool = False,
    progress: TextIO | None = None,
) -> int:
    """Send ``req`` (with ``upload`` as its body) and stream the response to ``output``.

    With ``include_head`` the status line and headers (of 1xx responses too) come
    first. ``progress`` is a terminal for the meter. Returns the exit status: 0 once the
    whole response is received, 1 if the exchange or the output fails (a message on
    stderr).
    """
    if include_head:

        async def show_information(message: IncomingMessage) -> None:
            await output.write(format_head(message))

        req.on("information", show_information)
    meter: _Progress | None = None
    try:
        try:
            res = await _send_request(req, upload)
            await output.open()
            if include_head:
                await output.write(format_head(res))
            total = _content_length(res)
            if progress is not None and (total is None or total >= PROGRESS_MIN_BYTES):
                meter = _Progress(progress, total)
            received = 0
            async for chunk in res:  # one piece at a time: never the whole body
                await output.write(chunk)
                received += len(chunk)
                if meter is not None:
                    meter.update(received)
        finally:
            if meter is not None:
                meter.clear()
            if req.res is None or not req.res.complete:
                req.destroy()
            await output.close()
    except _LocalError as exc:
        print(f"trio-nodehttp: {exc}", file=sys.stderr, flush=True)
        return 1
    except (HTTPError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        message = describe_error(exc, req.host, req.port, connected=req.socket is not None)
        print(f"trio-nodehttp: {message}", file=sys.stderr, flush=True)
        return 1
    return 0


def _add_get_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "get",
        help="make one HTTP request and write the response body (a small curl)",
        description=(
            "Send one request with the global agent and stream the response body to "
            "standard output or FILE. Exit status: 0 for any complete response (404 "
            "included), 1 if the exchange fails, 2 for usage errors, 130 on Ctrl-C."
        ),
    )
    parser.add_argument("url", metavar="URL", help="an http:// URL (http:// may be left out)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the body (and the head, with -i) to FILE instead of standard output",
    )
    parser.add_argument(
        "-H",
        "--header",
        dest="headers",
        metavar="'NAME: VALUE'",
        type=_header_arg,
        action="append",
        default=[],
        help="add a request header (repeatable; a name given again adds another line; "
        "Host replaces the automatic one)",
    )
    parser.add_argument(
        "-X",
        "--request",
        dest="method",
        metavar="METHOD",
        type=_method_arg,
        help="request method (default: GET, or POST with -d)",
    )
    parser.add_argument(
        "-d",
        "--data",
        dest="data",
        metavar="DATA",
        type=_data_arg,
        help="request body: DATA, @FILE for a file's bytes, @- for standard input (sent "
        "as is; Content-Type defaults to application/x-www-form-urlencoded)",
    )
    parser.add_argument(
        "-i",
        "--include",
        action="store_true",
        help="write the status line and response headers, as received, before the body",
    )
    parser.set_defaults(func=_get_command, parser=parser)


def _build_request(
    parser: argparse.ArgumentParser, args: argparse.Namespace, upload: _Upload | None
) -> ClientRequest:
    """The request the ``get`` arguments describe (usage errors exit 2)."""
    url: str = args.url
    if "://" not in url:
        url = "http://" + url
    method: str = args.method or ("POST" if upload is not None else "GET")
    try:
        req = request(url, method=method)
        seen: set[str] = set()
        for name, value in args.headers:
            if name.lower() in seen:
                req.append_header(name, value)
            else:
                req.set_header(name, value)  # replaces an automatic Host
                seen.add(name.lower())
    except HTTPError as exc:
        parser.error(str(exc))
    if upload is not None:
        req.strict_content_length = True  # a file that changes size fails, not garbles
        if not req.has_header("content-type"):
            req.set_header("Content-Type", _FORM_TYPE)
        if upload.path is not None and upload.path != "-":
            try:
                info = os.stat(upload.path)
            except OSError as exc:
                parser.error(f"cannot read {upload.path}: {exc.strerror or exc}")
            if stat.S_ISDIR(info.st_mode):
                parser.error(f"cannot read {upload.path}: is a directory")
            if stat.S_ISREG(info.st_mode) and not req.has_header("content-length"):
                req.set_header("Content-Length", info.st_size)
            # Other files (pipes ...) and standard input have no known size: the body
            # is sent chunked.
    return req


def _get_command(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    upload: _Upload | None = args.data
    path: str | None = None if args.output in (None, "-") else args.output
    if path is not None:
        if os.path.isdir(path):
            parser.error(f"cannot write {path}: is a directory")
        if not os.path.isdir(os.path.dirname(path) or "."):
            parser.error(f"cannot write {path}: no such directory")
    req = _build_request(parser, args, upload)
    output = _Output(path)
    stderr: TextIO | None = sys.stderr
    to_terminal = path is None and sys.stdout is not None and sys.stdout.isatty()
    if stderr is None or to_terminal or not stderr.isatty():
        stderr = None  # no meter: not a terminal, or it would mix with the body
    fetch = partial(_fetch_to, req, output, upload=upload, include_head=args.include)
    try:
        return trio.run(partial(fetch, progress=stderr))
    except KeyboardInterrupt:
        return 130  # the request and the output were closed on the way out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit
    status. The ``trio-nodehttp`` console script."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
