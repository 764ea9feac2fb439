"""``trio-nodehttp get`` (the small curl), end to end in subprocesses against a server
on a real socket: output, headers, bodies, error codes, exit statuses, Ctrl-C and the
progress meter."""

from __future__ import annotations

import errno
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

import pytest
import trio

from trio_nodehttp import IncomingMessage, ServerResponse, create_server
from trio_nodehttp.cli import build_parser, main
from trio_nodehttp.cli.get import (
    PROGRESS_INTERVAL,
    _format_size,
    _Progress,
    describe_error,
    error_code,
    format_head,
)

from .cli_support import BIG, drain, read_line

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
            nursery.start_soon(drain, process.stderr, stderr)
            # The first line is flushed as it arrives: the transfer is under way.
            assert await read_line(process.stdout) == b"first line"
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
            nursery.start_soon(drain, process.stdout, stdout)
            nursery.start_soon(drain, process.stderr, stderr)
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
