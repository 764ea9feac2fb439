"""Side-by-side HTTP server benchmark: trio_nodehttp against a minimal trio + h11 loop,
hypercorn's trio worker and Node's own ``http``.

    python benchmarks/server.py                 # 3 interleaved repetitions, 5 s runs
    python benchmarks/server.py --quick         # 1 repetition, 2 s runs
    python benchmarks/server.py --only keepalive --only node,nodehttp

Prints a Markdown report (medians) on stdout, progress on stderr, and writes every
measurement to ``benchmarks/results/latest.json``. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import importlib.util
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO, Literal

HERE = Path(__file__).resolve().parent
SERVERS_DIR = HERE / "servers"
WRK_SCRIPT = HERE / "wrk_report.lua"
DEFAULT_OUTPUT = HERE / "results" / "latest.json"

HOST = "127.0.0.1"
SERVER_CPU = 0
CLIENT_CPU = 1
# Every server gets the same idle keep-alive timeout, long enough that the idle
# connections of the memory workload all stay open while RSS is measured.
KEEP_ALIVE_SECONDS = 30
HELLO = b"hello world"
BIG_SIZE = 1024 * 1024
STARTUP_TIMEOUT = 20.0
SETTLE_SECONDS = 0.5
WRK_MARKER = "WRK_JSON "
# A run during which other processes took more than this share of the server's or wrk's
# CPU is flagged in the notes: its numbers are suspect.
NOISY_SHARE = 0.10
SATURATED = 0.95  # a server using this much of its CPU is the bottleneck
REFERENCE = "nodehttp"


# --- what is measured ---------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A server under test: ``command(port)`` starts it listening on HOST:port. It is
    skipped if the Python ``module`` or the ``executable`` it needs is missing."""

    name: str
    label: str
    command: Callable[[int], list[str]]
    module: str | None = None
    executable: str | None = None

    def missing(self) -> str | None:
        if self.module is not None and importlib.util.find_spec(self.module) is None:
            return f"the Python module {self.module}"
        if self.executable is not None and shutil.which(self.executable) is None:
            return f"the command {self.executable}"
        return None


def _python_server(script: str) -> Callable[[int], list[str]]:
    return lambda port: [sys.executable, script, str(port), str(KEEP_ALIVE_SECONDS)]


def _hypercorn(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "hypercorn", "--worker-class", "trio", "--workers", "0"),
        *("--bind", f"{HOST}:{port}", "--keep-alive", str(KEEP_ALIVE_SECONDS)),
        *("--log-level", "WARNING", "asgi_app:app"),
    ]


def _node(port: int) -> list[str]:
    return ["node", "node_server.js", str(port), str(KEEP_ALIVE_SECONDS)]


SERVERS = (
    Server("nodehttp", "trio_nodehttp", _python_server("nodehttp_server.py"), "trio_nodehttp"),
    Server("minimal", "minimal trio+h11", _python_server("minimal_h11_server.py"), "h11"),
    Server("hypercorn", "hypercorn (trio)", _hypercorn, module="hypercorn"),
    Server("node", "Node http", _node, executable="node"),
)


@dataclass(frozen=True)
class Workload:
    """One measurement: ``"wrk"`` (throughput and latency) or ``"memory"`` (idle cost)."""

    name: str
    title: str
    kind: Literal["wrk", "memory"]
    path: str = "/"
    connections: int = 50
    headers: tuple[str, ...] = ()


WORKLOADS = (
    Workload("keepalive", "Keep-alive hello world", "wrk"),
    Workload("close", "New connection per request", "wrk", headers=("Connection: close",)),
    Workload("big", "1 MiB body", "wrk", path="/big", connections=10),
    Workload("memory", "Memory per idle keep-alive connection", "memory"),
)


@dataclass(frozen=True)
class Settings:
    repetitions: int
    duration: int  # seconds per measured wrk run
    warmup: int  # seconds of wrk before each measured run (results discarded)
    idle_connections: int
    pin: bool
    quiet_wait: float  # seconds to wait, at most, for a quiet machine before a wrk run
    quiet_budget: float  # ... and over the whole run


# --- results ----------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    seconds: float
    bytes: int
    rps: float
    mb_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]


@dataclass
class MemoryResult:
    connections: int
    rss_before_kib: int
    rss_after_kib: int
    kib_per_connection: float
    closed_by_server: int


@dataclass
class Report:
    runs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        progress(f"  NOTE: {text}")


class BenchmarkError(Exception):
    """A server or a client misbehaved; the message says how."""


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- running a server ---------------------------------------------------------------------


def pinned(cpu: int, settings: Settings) -> list[str]:
    return ["taskset", "-c", str(cpu)] if settings.pin else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    server: Server
    process: subprocess.Popen[bytes]
    port: int
    log: BinaryIO

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")


@contextlib.contextmanager
def running(server: Server, settings: Settings, report: Report) -> Iterator[RunningServer]:
    """Start ``server`` pinned to SERVER_CPU, wait until it answers, stop it afterwards.

    Anything it prints besides its ``LISTENING`` line becomes a note.
    """
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            pinned(SERVER_CPU, settings) + server.command(port),
            cwd=SERVERS_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        running_server = RunningServer(server, process, port, log)
        try:
            wait_until_up(running_server)
            yield running_server
        finally:
            stop(process)
            extra = [
                line
                for line in running_server.output().splitlines()
                if line.strip() and not line.startswith("LISTENING")
            ]
            if extra:
                shown = "; ".join(extra[-5:])
                report.note(f"{server.label} printed {len(extra)} unexpected line(s): {shown}")


def wait_until_up(running_server: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if running_server.process.poll() is not None:
            raise BenchmarkError(
                f"{running_server.server.label} exited with code "
                f"{running_server.process.returncode}: {running_server.output()[-2000:]}"
            )
        try:
            status, _, body = http_get(running_server.port, "/", timeout=1.0)
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)
            continue
        if status == 200 and body == HELLO:
            return
        raise BenchmarkError(f"{running_server.server.label} answered {status} {body[:80]!r}")
    raise BenchmarkError(f"{running_server.server.label} did not start in {STARTUP_TIMEOUT} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_get(
    port: int, path: str, *, timeout: float, connection: http.client.HTTPConnection | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = connection or http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        if connection is None:
            conn.close()


def check_server(running_server: RunningServer) -> None:
    """The answers every workload relies on: bodies, Content-Length framing, keep-alive
    reuse, and closing after ``Connection: close``."""
    label, port = running_server.server.label, running_server.port
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        for path, expected in (("/", HELLO), ("/big", b"x" * BIG_SIZE), ("/", HELLO)):
            status, headers, body = http_get(port, path, timeout=5, connection=conn)
            if status != 200 or body != expected:
                raise BenchmarkError(f"{label}: GET {path} gave {status}, {len(body)} bytes")
            if headers.get("Content-Length") != str(len(expected)):
                raise BenchmarkError(f"{label}: GET {path} is not framed by Content-Length")
            if conn.sock is None:
                raise BenchmarkError(f"{label}: GET {path} did not keep the connection alive")
    finally:
        conn.close()
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % HOST.encode())
        read_response(sock)
        if sock.recv(1) != b"":
            raise BenchmarkError(f"{label}: kept the connection open after Connection: close")


# --- CPU accounting -----------------------------------------------------------------------


def cpu_ticks() -> tuple[tuple[int, int], tuple[int, int]]:
    """Busy and total ticks of the server's and the client's CPU, from /proc/stat."""
    busy, total = [0, 0], [0, 0]
    for line in Path("/proc/stat").read_text().splitlines():
        for index, cpu in enumerate((SERVER_CPU, CLIENT_CPU)):
            if line.startswith(f"cpu{cpu} "):
                ticks = [int(x) for x in line.split()[1:9]]
                total[index] = sum(ticks)
                busy[index] = total[index] - ticks[3] - ticks[4]  # minus idle and iowait
    return (busy[0], busy[1]), (total[0], total[1])


@dataclass(frozen=True)
class CpuSample:
    """The two CPUs' ticks, the server's ticks and the CPU seconds of finished children
    (wrk, once it has been waited for)."""

    busy: tuple[int, int]
    total: tuple[int, int]
    server_ticks: int
    children_seconds: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        busy, total = cpu_ticks()
        fields = Path(f"/proc/{server_pid}/stat").read_text().rpartition(")")[2].split()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            busy=busy,
            total=total,
            server_ticks=int(fields[11]) + int(fields[12]),  # utime + stime, all threads
            children_seconds=children.ru_utime + children.ru_stime,
        )


@dataclass
class QuietGate:
    """Before each measurement, wait (boundedly) until other processes leave both CPUs
    alone, so that a test suite running alongside spoils fewer runs."""

    per_run: float
    budget: float
    waited: float = 0.0

    def wait(self) -> float:
        """Wait up to ``per_run`` seconds (within what is left of ``budget``) for a quiet
        half-second; return the busiest CPU's share over the last one."""
        deadline = time.monotonic() + min(self.per_run, max(0.0, self.budget - self.waited))
        started = time.monotonic()
        while True:
            busy0, total0 = cpu_ticks()
            time.sleep(0.5)
            busy1, total1 = cpu_ticks()
            load = max((busy1[i] - busy0[i]) / max(1, total1[i] - total0[i]) for i in (0, 1))
            if load <= NOISY_SHARE or time.monotonic() >= deadline:
                self.waited += max(0.0, time.monotonic() - started - 0.5)
                return load


def cpu_shares(start: CpuSample, end: CpuSample) -> dict[str, float]:
    """Over a wrk run: the server's CPU use, and what *other* processes took from the
    server's CPU and from wrk's (non-zero on a busy machine: the run is then suspect)."""
    hertz = os.sysconf("SC_CLK_TCK")
    spans = [max(1, end.total[i] - start.total[i]) for i in (0, 1)]
    server = (end.server_ticks - start.server_ticks) / spans[0]
    client = (end.children_seconds - start.children_seconds) * hertz / spans[1]
    return {
        "server_cpu": server,
        "other_on_server_cpu": max(0.0, (end.busy[0] - start.busy[0]) / spans[0] - server),
        "other_on_client_cpu": max(0.0, (end.busy[1] - start.busy[1]) / spans[1] - client),
    }


def noisy(shares: dict[str, float]) -> bool:
    """Whether other processes may have changed a wrk run's numbers: they took part of the
    server's CPU, or part of wrk's while the server had time to spare (a saturated server
    is the bottleneck whatever wrk's share)."""
    if shares["other_on_server_cpu"] > NOISY_SHARE:
        return True
    return shares["other_on_client_cpu"] > NOISY_SHARE and shares["server_cpu"] < SATURATED


# --- workloads ----------------------------------------------------------------------------


def run_wrk(
    port: int, workload: Workload, seconds: int, settings: Settings, *, latency: bool = True
) -> WrkResult:
    argv = [
        *pinned(CLIENT_CPU, settings),
        *("wrk", "-t1", f"-c{workload.connections}", f"-d{seconds}s"),
        *(["--latency"] if latency else []),
        *("-s", str(WRK_SCRIPT)),
    ]
    for header in workload.headers:
        argv += ["-H", header]
    argv.append(f"http://{HOST}:{port}{workload.path}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith(WRK_MARKER)), None)
    if done.returncode != 0 or line is None:
        raise BenchmarkError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    raw = json.loads(line.removeprefix(WRK_MARKER))
    elapsed = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    return WrkResult(
        requests=int(raw["requests"]),
        seconds=elapsed,
        bytes=int(raw["bytes"]),
        rps=raw["requests"] / elapsed,
        mb_per_s=raw["bytes"] / elapsed / 1e6,
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        errors={name: int(count) for name, count in raw["errors"].items()},
    )


def read_response(sock: socket.socket) -> bytes:
    """Read one Content-Length-framed response from ``sock``; return its body."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise BenchmarkError("connection closed before a response head")
        buffer += data
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200"):
        raise BenchmarkError(f"unexpected status line {lines[0]!r}")
    length = next(
        (
            int(v)
            for n, _, v in (x.partition(":") for x in lines[1:])
            if n.lower() == "content-length"
        ),
        None,
    )
    if length is None:
        raise BenchmarkError("response without Content-Length")
    while len(body) < length:
        data = sock.recv(65536)
        if not data:
            raise BenchmarkError("connection closed in a response body")
        body += data
    return body


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchmarkError(f"no VmRSS for process {pid}")


def raise_nofile_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise BenchmarkError(f"RLIMIT_NOFILE hard limit {hard} < {needed}: raise it (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def peer_closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def measure_idle_memory(running_server: RunningServer, count: int) -> MemoryResult:
    """RSS growth of the server while ``count`` keep-alive connections sit idle after one
    request each."""
    raise_nofile_limit(count + 256)
    pid = running_server.process.pid
    request = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST.encode()
    time.sleep(SETTLE_SECONDS)
    before = vm_rss_kib(pid)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection((HOST, running_server.port), timeout=10)
            sockets.append(sock)
            sock.sendall(request)
            if read_response(sock) != HELLO:
                raise BenchmarkError("unexpected body on an idle connection")
        time.sleep(SETTLE_SECONDS)
        after = vm_rss_kib(pid)
        closed = sum(peer_closed(sock) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    return MemoryResult(count, before, after, (after - before) / count, closed)


# --- the run ------------------------------------------------------------------------------


def run(
    servers: Sequence[Server], workloads: Sequence[Workload], settings: Settings, report: Report
) -> None:
    total = settings.repetitions * len(workloads) * len(servers)
    done = 0
    gate = QuietGate(settings.quiet_wait, settings.quiet_budget)
    for rep in range(settings.repetitions):
        # Round-robin, starting one server further on each repetition.
        order = [servers[(rep + i) % len(servers)] for i in range(len(servers))]
        for workload in workloads:
            for server in order:
                done += 1
                prefix = f"[{done}/{total}] rep {rep + 1} {workload.name:<9} {server.label:<17}"
                try:
                    record = run_one(server, workload, settings, report, gate)
                except BenchmarkError as exc:
                    report.note(f"rep {rep + 1}, {workload.name}, {server.label}: {exc}")
                    continue
                source = source_hash() if server.name == REFERENCE else None
                report.runs.append(
                    {
                        "rep": rep + 1,
                        "workload": workload.name,
                        "server": server.name,
                        "source": source,
                        **record,
                    }
                )
                progress(f"{prefix} {describe(workload, record)}")
                check_run(rep, workload, server, record, report)
    sources = {r["source"] for r in report.runs if r["source"] is not None}
    if len(sources) > 1:
        report.note(
            f"trio_nodehttp's source changed during the run ({len(sources)} versions; each "
            "run's `source` in the JSON tells which): the medians mix them"
        )
    if gate.waited >= 1:
        report.note(f"waited {gate.waited:.0f} s in all for other processes to quieten down")


def run_one(
    server: Server, workload: Workload, settings: Settings, report: Report, gate: QuietGate
) -> dict[str, Any]:
    with running(server, settings, report) as running_server:
        if workload.kind == "memory":  # RSS does not depend on the machine being quiet
            memory = measure_idle_memory(running_server, settings.idle_connections)
            return {**asdict(memory), "noisy": False}
        pid = running_server.process.pid
        background = gate.wait()
        if settings.warmup:
            run_wrk(running_server.port, workload, settings.warmup, settings, latency=False)
        before = CpuSample.take(pid)
        result = run_wrk(running_server.port, workload, settings.duration, settings)
        if running_server.process.poll() is not None:
            raise BenchmarkError(f"exited with code {running_server.process.returncode}")
        shares = cpu_shares(before, CpuSample.take(pid))
        return {
            **asdict(result),
            **shares,
            "busiest_cpu_before": background,
            "noisy": settings.pin and noisy(shares),  # the shares mean little unpinned
        }


def describe(workload: Workload, record: dict[str, Any]) -> str:
    if workload.kind == "memory":
        before, after = record["rss_before_kib"] / 1024, record["rss_after_kib"] / 1024
        return f"{record['kib_per_connection']:6.1f} KiB/conn (RSS {before:.1f} -> {after:.1f} MiB)"
    text = f"{record['rps']:9,.0f} req/s  p50 {record['p50_ms']:7.2f} ms"
    text += f"  p99 {record['p99_ms']:7.2f} ms"
    if workload.path == "/big":
        text += f"  {record['mb_per_s']:7,.0f} MB/s"
    return text


def check_run(
    rep: int, workload: Workload, server: Server, record: dict[str, Any], report: Report
) -> None:
    where = f"rep {rep + 1}, {workload.name}, {server.label}"
    if workload.kind == "memory":
        if record["closed_by_server"]:
            report.note(f"{where}: {record['closed_by_server']} idle connections were closed")
        return
    errors = {name: count for name, count in record["errors"].items() if count}
    if errors:
        status = errors.pop("status", 0)
        listed = ", ".join(f"{count} {name}" for name, count in errors.items())
        if status:
            report.note(f"{where}: wrk saw {status} non-2xx/3xx responses")
        if listed:
            report.note(f"{where}: wrk reported socket errors ({listed})")
    if record["requests"] == 0:
        report.note(f"{where}: no request completed")
    if record["noisy"]:
        report.note(
            f"{where}: noisy, other processes used {record['other_on_server_cpu']:.0%} of the "
            f"server's CPU and {record['other_on_client_cpu']:.0%} of wrk's, the server "
            f"{record['server_cpu']:.0%} of its own"
        )


# --- summary ------------------------------------------------------------------------------

METRICS = {
    "wrk": ("rps", "mb_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms"),
    "memory": ("kib_per_connection", "rss_before_kib", "rss_after_kib"),
}
HEADLINE = {"keepalive": "rps", "close": "rps", "big": "mb_per_s", "memory": "kib_per_connection"}


def summarize(
    runs: Sequence[dict[str, Any]], servers: Sequence[Server], workloads: Sequence[Workload]
) -> dict[str, dict[str, dict[str, float]]]:
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for workload in workloads:
        per_server: dict[str, dict[str, float]] = {}
        for server in servers:
            mine = [
                r for r in runs if r["workload"] == workload.name and r["server"] == server.name
            ]
            if not mine:
                continue
            # Noisy runs count only when there is nothing else.
            used = [r for r in mine if not r["noisy"]] or mine
            stats: dict[str, float] = {
                "runs": len(mine),
                "clean_runs": sum(not r["noisy"] for r in mine),
                "runs_used": len(used),
            }
            for metric in METRICS[workload.kind]:
                values = [float(r[metric]) for r in used]
                stats[metric] = statistics.median(values)
                stats[f"{metric}_min"] = min(values)
                stats[f"{metric}_max"] = max(values)
            per_server[server.name] = stats
        summary[workload.name] = per_server
    return summary


def ratios(summary: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """trio_nodehttp's headline number divided by each other server's, where both have
    clean runs (a noisy number is no basis for a comparison)."""
    result: dict[str, dict[str, float]] = {}
    for workload, per_server in summary.items():
        metric = HEADLINE[workload]
        ours = per_server.get(REFERENCE)
        if ours is None or not ours["clean_runs"]:
            continue
        result[workload] = {
            name: ours[metric] / stats[metric]
            for name, stats in per_server.items()
            if name != REFERENCE and stats["clean_runs"] and stats[metric]
        }
    return result


def fmt_ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def fmt_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table, padded to line up in plain text; the first column left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join([first, *rest]) + " |"

    rule = "|".join(["", "-" * (widths[0] + 2), *("-" * (w + 1) + ":" for w in widths[1:]), ""])
    return [line(header), rule, *(line(r) for r in rows)]


def throughput_table(
    workload: Workload,
    per_server: dict[str, dict[str, float]],
    ratio: dict[str, float],
    labels: dict[str, str],
    settings: Settings,
) -> list[str]:
    flags = "".join(f" -H '{h}'" for h in workload.headers)
    command = f"wrk -t1 -c{workload.connections} -d{settings.duration}s{flags}"
    big = workload.path == "/big"
    header = ["Server", "req/s", *(["MB/s"] if big else []), "p50 (ms)", "p99 (ms)"]
    header += [f"{labels.get(REFERENCE, REFERENCE)} ÷ server", "req/s range", "clean runs"]
    rows = [
        [
            labels[name],
            f"{s['rps']:,.0f}",
            *([f"{s['mb_per_s']:,.0f}"] if big else []),
            fmt_ms(s["p50_ms"]),
            fmt_ms(s["p99_ms"]),
            fmt_ratio(1.0 if name == REFERENCE and s["clean_runs"] else ratio.get(name)),
            f"{s['rps_min']:,.0f}–{s['rps_max']:,.0f}",
            f"{s['clean_runs']:.0f}/{s['runs']:.0f}" + ("*" if not s["clean_runs"] else ""),
        ]
        for name, s in per_server.items()
    ]
    out = [f"`{command}` on `GET {workload.path}`.", "", *markdown_table(header, rows)]
    if any(not s["clean_runs"] for s in per_server.values()):
        out += ["", "\\* Every run was noisy: a rough number, and no ratio."]
    return out


def memory_table(
    per_server: dict[str, dict[str, float]],
    ratio: dict[str, float],
    labels: dict[str, str],
    settings: Settings,
) -> list[str]:
    header = ["Server", "KiB / idle conn", "RSS before (MiB)", "RSS with conns (MiB)"]
    header += [f"{labels.get(REFERENCE, REFERENCE)} ÷ server", "KiB range"]
    rows = [
        [
            labels[name],
            f"{s['kib_per_connection']:.1f}",
            f"{s['rss_before_kib'] / 1024:.1f}",
            f"{s['rss_after_kib'] / 1024:.1f}",
            fmt_ratio(1.0 if name == REFERENCE else ratio.get(name)),
            f"{s['kib_per_connection_min']:.1f}–{s['kib_per_connection_max']:.1f}",
        ]
        for name, s in per_server.items()
    ]
    intro = (
        f"Growth of the server's VmRSS while {settings.idle_connections:,} keep-alive "
        "connections sit idle, each after one `GET /`."
    )
    return [intro, "", *markdown_table(header, rows)]


RATIO_ROWS = {
    "keepalive": "keep-alive req/s",
    "close": "new connection per request, req/s",
    "big": "1 MiB body, MB/s",
    "memory": "KiB per idle connection",
}


def render_markdown(
    summary: dict[str, dict[str, dict[str, float]]],
    ratio: dict[str, dict[str, float]],
    servers: Sequence[Server],
    workloads: Sequence[Workload],
    settings: Settings,
    meta: dict[str, Any],
    notes: Sequence[str],
) -> str:
    labels = {s.name: s.label for s in servers}
    reference = labels.get(REFERENCE, REFERENCE)
    pinning = (
        f"each server pinned to CPU {SERVER_CPU} and wrk to CPU {CLIENT_CPU}"
        if settings.pin
        else "nothing pinned"
    )
    packages = dict(meta["packages"])
    if meta["git"]["commit"]:
        edited = " + local edits" if meta["git"]["package_edited"] else ""
        packages["trio_nodehttp"] += f" (git {meta['git']['commit']}{edited})"
    versions = ", ".join(f"{name} {version}" for name, version in packages.items())
    uses_wrk = any(w.kind == "wrk" for w in workloads)
    wrk = (
        f"; wrk runs of {settings.duration} s after a {settings.warmup} s warm-up, one wrk thread"
        if uses_wrk
        else ""
    )
    noise = (
        f" A wrk run is noisy, and left out of the medians unless all runs were, when other "
        f"processes took over {NOISY_SHARE:.0%} of the server's CPU, or of wrk's while the "
        f"server used less than {SATURATED:.0%} of its own."
        if uses_wrk
        else ""
    )
    out = [
        "## Server benchmark",
        "",
        f"Medians of {settings.repetitions} interleaved repetition(s){wrk}, {pinning}. "
        f"`{reference} ÷ server` divides {reference}'s number by the other server's: above 1 "
        f"means more throughput (or, for memory, more KiB).{noise}",
        "",
        f"{meta['cpu']} ({meta['cpus']} CPUs), {meta['os']}; Python {meta['python']}, "
        f"{versions}, Node {meta['node']}, wrk {meta['wrk']}.",
    ]
    for workload in workloads:
        per_server = summary.get(workload.name)
        if not per_server:
            continue
        out += ["", f"### {workload.title}", ""]
        if workload.kind == "memory":
            out += memory_table(per_server, ratio.get(workload.name, {}), labels, settings)
        else:
            out += throughput_table(
                workload, per_server, ratio.get(workload.name, {}), labels, settings
            )

    others = [s for s in servers if s.name != REFERENCE]
    rows = [
        [RATIO_ROWS[w.name], *(fmt_ratio(ratio[w.name].get(s.name)) for s in others)]
        for w in workloads
        if w.name in ratio
    ]
    if rows and others:
        out += ["", f"### {reference} ÷ each server", ""]
        out += markdown_table(["", *(f"vs {s.label}" for s in others)], rows)
    if notes:
        out += ["", "### Notes", "", *(f"- {note}" for note in notes)]
    return "\n".join(out)


# --- environment --------------------------------------------------------------------------


def command_version(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "missing"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def environment() -> dict[str, Any]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    packages = {}
    for name in ("trio_nodehttp", "trio", "h11", "hypercorn"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "missing"
    wrk = command_version(["wrk", "-v"]).split(" ")
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": packages,
        "node": command_version(["node", "--version"]),
        "wrk": wrk[1] if len(wrk) > 1 else wrk[0],
        "argv": sys.argv[1:],
        "git": git_state(),
        "source": source_hash(),
    }


def source_hash() -> str:
    """A short hash of trio_nodehttp's sources. Servers import the package afresh at each
    start, so code edited during a run changes the results midway; this tells."""
    spec = importlib.util.find_spec("trio_nodehttp")
    if spec is None or spec.origin is None:
        return "missing"
    digest = hashlib.sha256()
    for path in sorted(Path(spec.origin).parent.rglob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "trio_nodehttp")
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "package_edited": bool(changed)}


def select(names: Sequence[str]) -> tuple[list[Server], list[Workload]]:
    wanted = {part.strip() for name in names for part in name.split(",") if part.strip()}
    known = {s.name for s in SERVERS} | {w.name for w in WORKLOADS}
    unknown = wanted - known
    if unknown:
        raise SystemExit(f"--only: unknown name(s) {sorted(unknown)}; choose from {sorted(known)}")
    servers = [s for s in SERVERS if s.name in wanted] or list(SERVERS)
    workloads = [w for w in WORKLOADS if w.name in wanted] or list(WORKLOADS)
    return servers, workloads


def at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    names = ", ".join([*(s.name for s in SERVERS), *(w.name for w in WORKLOADS)])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these servers and/or workloads (repeatable, comma-separated): {names}",
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition of 2 s runs")
    parser.add_argument("--reps", type=at_least(1), help="repetitions (default 3, --quick 1)")
    parser.add_argument(
        "--duration", type=at_least(1), help="seconds per wrk run (default 5, --quick 2)"
    )
    parser.add_argument(
        "--warmup", type=at_least(0), default=1, help="seconds of warm-up (default 1)"
    )
    parser.add_argument(
        "--idle-connections",
        type=at_least(1),
        default=1000,
        help="for the memory workload (default 1000)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="before each wrk run, wait up to this many seconds for other processes to "
        "leave the CPUs alone (default 10; 0 never waits)",
    )
    parser.add_argument(
        "--quiet-budget",
        type=float,
        default=120.0,
        help="total seconds of such waiting per invocation (default 120)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    servers, workloads = select(args.only)
    report = Report()

    pin = not args.no_pin
    if pin and (shutil.which("taskset") is None or (os.cpu_count() or 1) < 2):
        report.note("taskset or a second CPU is missing: nothing is pinned")
        pin = False
    if pin:
        os.sched_setaffinity(0, {CLIENT_CPU})  # the memory workload's client runs here
    settings = Settings(
        repetitions=args.reps or (1 if args.quick else 3),
        duration=args.duration or (2 if args.quick else 5),
        warmup=args.warmup,
        idle_connections=args.idle_connections,
        pin=pin,
        quiet_wait=args.quiet_wait,
        quiet_budget=args.quiet_budget,
    )
    if any(w.kind == "wrk" for w in workloads) and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    ready: list[Server] = []
    for server in servers:
        missing = server.missing()
        if missing is not None:
            report.note(f"{server.label} skipped: {missing} is not available")
            continue
        try:
            with running(server, settings, report) as running_server:
                check_server(running_server)
        except (BenchmarkError, OSError) as exc:
            report.note(f"{server.label} skipped: failed the pre-flight check: {exc}")
            continue
        ready.append(server)
    if not ready:
        raise SystemExit("no server to benchmark")

    meta = environment()
    started = time.monotonic()
    try:
        run(ready, workloads, settings, report)
    except KeyboardInterrupt:
        report.note("interrupted: the results are partial")
    progress(f"done in {time.monotonic() - started:.0f} s")
    meta["seconds"] = round(time.monotonic() - started)
    summary = summarize(report.runs, ready, workloads)
    ratio = ratios(summary)
    results = {
        "meta": meta,
        "settings": asdict(settings),
        "servers": {s.name: s.label for s in ready},
        "workloads": {w.name: asdict(w) for w in workloads},
        "runs": report.runs,
        "summary": summary,
        "ratios": {"of": REFERENCE, "metric": HEADLINE, "values": ratio},
        "notes": report.notes,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(render_markdown(summary, ratio, ready, workloads, settings, meta, report.notes))
    progress(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
