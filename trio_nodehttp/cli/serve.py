"""The ``serve`` subcommand: :class:`~trio_nodehttp.cli.static.StaticFiles` on a server
that runs until a signal, announcing its URL and writing an access log on stderr.

:func:`serve_directory` is the same server for a trio program.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import trio

from .._server import create_server
from .static import AccessLog, StaticFiles

__all__ = ["add_parser", "format_url", "serve_directory"]


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
    dotfiles: bool = False,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``directory`` over HTTP on ``host:port`` (port 0: any free port).

    Start it with ``await nursery.start(serve_directory, ...)``, which returns the bound
    ``(host, port)``. When ``shutdown`` is set, the server stops accepting, closes idle
    connections, lets active requests finish and returns; cancelling it stops at once.
    Listening errors (an address in use ...) raise :class:`OSError` from ``start``.
    Dot-files are hidden and refused unless ``dotfiles`` (see :class:`StaticFiles`).
    """
    handler = StaticFiles(directory, access_log, dotfiles=dotfiles)
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


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` subcommand's parser to ``subparsers``."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a directory's files over HTTP",
        description=(
            "Serve the files below DIR over HTTP (GET and HEAD, with Range and "
            "If-Modified-Since). Dot-files (.git, .env ...) are hidden and answered "
            "with 404 unless --dotfiles is given. Ctrl-C or SIGTERM shuts down "
            "gracefully; a second signal stops at once."
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
    parser.add_argument(
        "--dotfiles",
        action="store_true",
        help="list and serve files and directories whose names start with a dot",
    )
    parser.set_defaults(func=_serve_command, parser=parser)


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
        dotfiles=args.dotfiles,
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
