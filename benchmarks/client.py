"""Side-by-side client benchmark: this package's client, a minimal trio + h11 client,
httpx on trio and Node's own client, against one fast server (Node's http server).

Two loads: COUNT sequential keep-alive GETs over one connection, and COUNT GETs with 200
in flight over a pool of 10 connections. The server is pinned to CPU 1 and every client
to CPU 0; repetitions are interleaved (every client in turn, starting one further along
each time) and the report gives medians with their range, and the ratio of trio_nodehttp
to each other client. Usage: ``python benchmarks/client.py [--reps N] [--count N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENTS = {
    "nodehttp": ("trio_nodehttp", [sys.executable, str(HERE / "clients" / "nodehttp_client.py")]),
    "minimal": (
        "minimal trio+h11",
        [sys.executable, str(HERE / "clients" / "minimal_h11_client.py")],
    ),
    "httpx": ("httpx (trio)", [sys.executable, str(HERE / "clients" / "httpx_client.py")]),
    "node": ("Node http", ["node", str(HERE / "clients" / "node_client.js")]),
}
MODES = {
    "sequential": "Sequential keep-alive GETs (1 connection)",
    "concurrent": "200 in flight over a pool of 10 connections",
}


def pin(cpu: int, command: list[str], pinned: bool) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if pinned else command


def start_server(pinned: bool) -> tuple[subprocess.Popen[str], int]:
    command = pin(1, ["node", str(HERE / "servers" / "node_server.js"), "0", "60"], pinned)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("LISTENING "):
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, int(line.split()[1])


def run_client(name: str, port: int, mode: str, count: int, pinned: bool) -> float:
    env = {**os.environ, "PYTHONPATH": str(HERE / "clients")}
    command = pin(0, [*CLIENTS[name][1], str(port), mode, str(count)], pinned)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed: {result.stderr[-2000:]}")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    return float(outcome["requests"]) / float(outcome["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (3)")
    parser.add_argument("--count", type=int, default=5000, help="requests per load (5000)")
    parser.add_argument("--only", action="append", default=[], help="client or mode names")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPUs")
    parser.add_argument("--output", default=str(HERE / "results" / "client-latest.json"))
    options = parser.parse_args()
    wanted = {part for item in options.only for part in item.split(",")}
    clients = [c for c in CLIENTS if not wanted & set(CLIENTS) or c in wanted]
    modes = [m for m in MODES if not wanted & set(MODES) or m in wanted]
    pinned = not options.no_pin and shutil.which("taskset") is not None and os.cpu_count() != 1

    results: dict[str, dict[str, list[float]]] = {m: {c: [] for c in clients} for m in modes}
    server, port = start_server(pinned)
    try:
        for rep in range(options.reps):
            order = clients[rep % len(clients) :] + clients[: rep % len(clients)]
            for mode in modes:
                for name in order:
                    rate = run_client(name, port, mode, options.count, pinned)
                    results[mode][name].append(rate)
                    print(f"rep {rep + 1} {mode:10s} {name:9s} {rate:9.0f} req/s", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=10)

    lines = [
        f"Client benchmark: {options.count} requests per load, {options.reps} repetitions, "
        f"medians (range); server: Node's http server{' pinned to CPU 1' if pinned else ''}.",
        "",
    ]
    for mode in modes:
        lines += [
            f"### {MODES[mode]}",
            "",
            "| client | req/s | vs trio_nodehttp |",
            "|---|---|---|",
        ]
        ours = statistics.median(results[mode]["nodehttp"]) if "nodehttp" in clients else None
        for name in clients:
            runs = results[mode][name]
            median = statistics.median(runs)
            ratio = f"{ours / median:.2f}×" if ours else "–"
            spread = f"{min(runs):,.0f}–{max(runs):,.0f}"
            lines.append(f"| {CLIENTS[name][0]} | {median:,.0f} ({spread}) | {ratio} |")
        lines.append("")
    print("\n".join(lines))
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    Path(options.output).write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "count": options.count,
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
