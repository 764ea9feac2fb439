"""The ``get`` subcommand: a small curl on the global agent.

It sends one request and streams the response body to standard output or a file, with
a progress line on a terminal. Exit status: 0 for any complete response (404 included),
1 when the exchange fails (network errors, an output that cannot be written), 2 for
usage errors, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import stat
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import BinaryIO, Literal, TextIO

import attrs
import trio

from .._client import ClientRequest, connect_error, request, root_os_error
from .._errors import HTTPError
from .._headers import is_token, validate_header_name, validate_header_value
from .._incoming import IncomingMessage

__all__ = ["add_parser", "describe_error", "error_code", "format_head"]

#: Bytes of a request body read from its file and sent at a time.
CHUNK_SIZE = 64 * 1024

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


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``get`` subcommand's parser to ``subparsers``."""
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
