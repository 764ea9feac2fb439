"""``trio-nodehttp serve``: :func:`serve_directory` (graceful shutdown, listening
errors), the command in a subprocess until a signal, and its command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import attrs
import pytest
import trio

from trio_nodehttp.cli import build_parser, main
from trio_nodehttp.cli.serve import format_url, serve_directory

from .cli_support import BIG, HELLO, drain, make_site, read_line


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A served directory ``root`` and, next to it, a file that must stay out of reach."""
    return make_site(tmp_path)


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
            nursery.start_soon(drain, process.stderr, stderr)
            line = (await read_line(process.stdout)).decode()
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


@attrs.define
class RunningServe:
    """A ``serve`` subprocess that has announced where it serves."""

    shown: str  # the directory, as announced
    url: str
    stderr: bytearray
    returncode: int | None = None  # once stopped


@asynccontextmanager
async def running_serve(*args: str) -> AsyncIterator[RunningServe]:
    """``python -m trio_nodehttp serve ARGS... --port 0`` in a subprocess, once it has
    printed its URL; SIGINT stops it when the block ends (``returncode`` is then set)."""
    command = [sys.executable, "-m", "trio_nodehttp", "serve", *args, "--port", "0"]
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
            nursery.start_soon(drain, process.stderr, stderr)
            line = (await read_line(process.stdout)).decode()
            match = re.fullmatch(r"Serving (.+) on (\S+)", line)
            assert match, line
            running = RunningServe(match[1], match[2], stderr)
            try:
                yield running
            finally:
                process.send_signal(signal.SIGINT)
                running.returncode = await process.wait()


async def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    """curl with ARGS, its output captured (a failure raises)."""
    with trio.fail_after(30):
        return await trio.run_process(
            ["curl", "-sS", "--max-time", "10", *args], capture_stdout=True, capture_stderr=True
        )


@pytest.mark.parametrize(("flags", "status"), [((), b"404"), (("--dotfiles",), b"200")])
async def test_cli_dotfiles_are_hidden_unless_asked_for(
    site: Path, flags: tuple[str, ...], status: bytes
) -> None:
    async with running_serve(str(site), *flags) as serving:
        for target in (".env", ".git/config", "%2eenv"):
            result = await curl("-o", os.devnull, "-w", "%{http_code}", serving.url + target)
            assert result.stdout == status, target
        listing = (await curl(serving.url)).stdout
    assert (b".env" in listing) == bool(flags)
    assert serving.returncode == 0, serving.stderr.decode(errors="replace")


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
    assert build_parser().parse_args(["serve"]).dotfiles is False
    assert build_parser().parse_args(["serve", "--dotfiles"]).dotfiles is True


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


def test_format_url() -> None:
    assert format_url("127.0.0.1", 80) == "http://127.0.0.1:80/"
    assert format_url("::1", 8000) == "http://[::1]:8000/"


def test_console_script_entry_point_is_the_cli_main() -> None:
    """``trio-nodehttp = "trio_nodehttp.__main__:main"`` still names the command line."""
    from trio_nodehttp import __main__ as entry

    assert entry.main is main
