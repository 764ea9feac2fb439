"""A seeded, bounded differential fuzzer: mutated requests go to Node's own http server
(tests/node/fuzz_server.js) and to ours, and the two answers are compared.

Mutants
-------
A mutant starts from one to three valid requests (a GET, a POST with Content-Length, a
POST with a chunked body; the second and third are pipelined behind the first), kept as
parts (request line, header lines, chunk lines, trailers, each with its own line end) so
that the operators below can edit them, then rendered to bytes:

* request line: methods (known, lowercase, unknown, empty, with a space), targets,
  versions (1.0, 1.1, none as in HTTP/0.9, 0.9, 2.0, 1.2, garbage …), the gaps between
  the parts (several spaces, tabs, VT, none), bytes before the line;
* headers: added (Connection, Expect, Upgrade, a second Host …), removed, duplicated,
  blanks around names and values, control bytes, obs-fold continuation lines, case;
* line ends: a bare LF or CR, CR CR LF, … on any line or on the blank line;
* framing: Content-Length forms (leading zeros, signs, blanks, lists, hex, overflow, off
  by one), Transfer-Encoding forms (case, blanks, lists, unknown codings, twice), both at
  once, a body one byte longer or shorter than announced, bodies that hold a request;
* chunks: size lines (signs, blanks, tabs, ``;`` with and without extensions, ``0x``,
  overflow, leading zeros, uppercase, decimal, off by one), data one byte off, the line
  ends after size and data, the last chunk, trailers (bad, framing, folded, missing end);
* rarely a byte inserted, replaced or removed anywhere; and in a third of the mutants the
  bytes are sent in two to four pieces (best effort: the kernel may join them again).

HEAD is not among the methods: an answer to HEAD has no body, which a reader of the raw
answer bytes cannot frame without knowing how the server read the request.

Mutant ``i`` of seed ``s`` comes from ``random.Random(f"{s}/{i}")``, so any one can be
rebuilt alone (see the command line at the end of this file).

Sending and outcomes
--------------------
Each mutant goes, on a fresh connection to each server at the same time, in its pieces,
and then the client half-closes (sends EOF) and reads until the server closes, within
``DEADLINE``. Half-closing is the choice that makes every case end by itself at once: a
server that waits for more bytes learns that none will come, so no case has to wait for
a timeout. Node reacts to that EOF in its own way, and the classes below say so: a
message still incomplete at the EOF is answered ``400`` (llhttp's
``HPE_INVALID_EOF_STATE``), after everything that came before it was answered; a server
that has answered everything closes. Both servers still have headers and request
timeouts of ``SERVER_TIMEOUT`` seconds (Node checks every 100 ms), so a server that
ignored the EOF would answer 408 well within the deadline.

The answer bytes are cut into responses: the status of each, and for a 200 the echo of
what the server read (method, url and body, which show how it framed the message; and
version, header and trailer pairs). 1xx responses are compared apart. The connection
ends closed (EOF or reset), or open at the deadline (silent). Node's error codes are
read from its control port. Ours runs in subprocesses (``LANES`` of them, each serving
one mutant at a time), so that a busy loop in our parser stalls one lane and not the
test: a connection of ours still open at the deadline is followed by a ping, and if
that goes unanswered the lane's server is killed and restarted and the case is "we-hang".

Classes
-------
The first response that differs decides (``classify``); the kinds are the constants
below. ``ALLOWED`` lists the differences accepted for now, each a predicate with its
reason; the test fails on any other, with the seed, index and bytes of each.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

import trio_nodehttp as http

THIS_FILE = Path(__file__).resolve()
NODE_SCRIPT = THIS_FILE.parent / "node" / "fuzz_server.js"
#: Mutants in the normal suite; ``nox -s fuzz`` sets FUZZ_CASES (and maybe FUZZ_SEED).
FAST_CASES = 2000
CASES = int(os.environ.get("FUZZ_CASES") or FAST_CASES)
SEED = int(os.environ.get("FUZZ_SEED") or 1)
#: Servers of ours, each serving one mutant at a time; Node serves them all.
LANES = 4
#: Headers and request timeout of both servers (seconds).
SERVER_TIMEOUT = 1.0
#: How long a client waits for a server to close after its EOF (seconds).
DEADLINE = 3.0
#: How long a ping may take before a silent server of ours counts as hung (seconds).
PING_TIMEOUT = 1.0

CRLF = b"\r\n"


# --- mutants ---------------------------------------------------------------------------


@dataclass
class Header:
    """One header (or trailer) line; a continuation line has a name and nothing else."""

    name: bytes
    value: bytes = b""
    colon: bytes = b": "
    eol: bytes = CRLF

    def render(self) -> bytes:
        return self.name + self.colon + self.value + self.eol


@dataclass
class Chunk:
    size: bytes  # the chunk-size line, extensions included, without its line end
    data: bytes
    size_eol: bytes = CRLF
    data_eol: bytes = CRLF

    def render(self) -> bytes:
        return self.size + self.size_eol + self.data + self.data_eol


@dataclass
class Message:
    """A request as editable parts. With ``chunks`` None the body is ``body`` as is."""

    method: bytes
    target: bytes
    version: bytes | None = b"HTTP/1.1"  # None: an HTTP/0.9-style line
    gaps: list[bytes] = field(default_factory=lambda: [b" ", b" "])
    line_eol: bytes = CRLF
    headers: list[Header] = field(default_factory=list)
    blank: bytes = CRLF
    body: bytes = b""
    chunks: list[Chunk] | None = None
    last_chunk: bytes = b"0"
    last_eol: bytes = CRLF
    trailers: list[Header] = field(default_factory=list)
    final: bytes = CRLF
    prefix: bytes = b""

    def render(self) -> bytes:
        line = self.method + self.gaps[0] + self.target
        if self.version is not None:
            line += self.gaps[1] + self.version
        head = self.prefix + line + self.line_eol
        head += b"".join(header.render() for header in self.headers) + self.blank
        if self.chunks is None:
            return head + self.body
        body = b"".join(chunk.render() for chunk in self.chunks)
        body += self.last_chunk + self.last_eol
        body += b"".join(trailer.render() for trailer in self.trailers) + self.final
        return head + body

    def find(self, name: bytes) -> list[int]:
        return [i for i, h in enumerate(self.headers) if h.name.strip().lower() == name]

    def body_length(self) -> int:
        if self.chunks is None:
            return len(self.body)
        return sum(len(chunk.data) for chunk in self.chunks)


@dataclass(frozen=True)
class Mutant:
    seed: int
    index: int
    segments: tuple[bytes, ...]
    tags: tuple[str, ...]

    @property
    def data(self) -> bytes:
        return b"".join(self.segments)


Operator = Callable[[random.Random, Message], str]

LETTERS = b"abcdefghijklmnopqrstuvwxyz"


def random_data(rng: random.Random, low: int, high: int) -> bytes:
    return bytes(rng.choice(LETTERS) for _ in range(rng.randint(low, high)))


def make_chunks(rng: random.Random, data: bytes) -> list[Chunk]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 2))))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return [Chunk(f"{len(piece):x}".encode(), piece) for piece in pieces]


def base_message(rng: random.Random, number: int) -> Message:
    target = f"/{number}".encode()
    headers = [Header(b"Host", b"a")]
    kind = rng.choice(["get", "length", "chunked"])
    if kind == "get":
        return Message(b"GET", target, headers=headers)
    data = random_data(rng, 1, 12)
    if kind == "length":
        headers.append(Header(b"Content-Length", str(len(data)).encode()))
        return Message(b"POST", target, headers=headers, body=data)
    headers.append(Header(b"Transfer-Encoding", b"chunked"))
    return Message(b"POST", target, headers=headers, chunks=make_chunks(rng, data))


def ensure_chunked(rng: random.Random, message: Message) -> None:
    """Give the message a chunked body (and a Transfer-Encoding header) if it has none."""
    if message.chunks is not None:
        return
    data = message.body or random_data(rng, 1, 8)
    message.chunks = make_chunks(rng, data)
    message.body = b""
    if not message.find(b"transfer-encoding"):
        message.headers.append(Header(b"Transfer-Encoding", b"chunked"))
    if rng.random() < 0.7:
        message.headers = [h for h in message.headers if h.name.lower() != b"content-length"]
    if message.method == b"GET":
        message.method = b"POST"


METHODS = [
    *[b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"QUERY", b"SEARCH"],
    *[b"PROPFIND", b"M-SEARCH", b"PURGE", b"TRACE", b"CONNECT", b"PRI", b"get", b"Post"],
    *[b"FOO", b"GETT", b"G", b"", b"GE T", b"GET/", b"\xc3\x89", b"POST\t"],
]
TARGETS = [
    *[b"/", b"/a?b=c&d=e", b"*", b"http://a/b", b"//x", b"/a%20b", b"/%zz", b"/a#f"],
    *[b"/a b", b"/\x7f", b"/\xe9", b"/\x00", b"", b"/a/../b", b"a", b"/?", b"/\\", b"/\t"],
]
VERSIONS: list[bytes | None] = [
    *[b"HTTP/1.0", b"HTTP/1.1", None, b"HTTP/0.9", b"HTTP/2.0", b"HTTP/2", b"HTTP/1.2"],
    *[b"HTTP/1.9", b"HTTP/3.0", b"HTTP/9.9", b"http/1.1", b"HTTP/1.10", b"HTTP/11"],
    *[b"HTTP/1.", b"HTTP/1", b"HTTP/ 1.1", b"HTTP/1.1 ", b"HTTPS/1.1", b"HTTP/1,1"],
    *[b"HTTP\\1.1", b"XYZ", b"HTTP/1.1x", b"HTTP/01.1", b"HTTP/1.01", b"HTTP/\xb9.1"],
]
GAPS = [b"  ", b"\t", b" \t", b"", b"\x0b", b"\x0c", b"   ", b"\r", b" \x00"]
PREFIXES = [b"\r\n", b"\r\n\r\n", b"\n", b" ", b"\t", b"\x00", b"\r"]
EXTRA_HEADERS = [
    *[(b"Connection", b"close"), (b"Connection", b"keep-alive"), (b"Connection", b"Upgrade")],
    *[(b"Connection", b"close, keep-alive"), (b"Upgrade", b"websocket")],
    *[(b"Expect", b"100-continue"), (b"Expect", b"100-Continue"), (b"Expect", b"foo")],
    *[(b"Host", b"b"), (b"X-A", b"b"), (b"X-E", b""), (b"X!#$%&'*+-.^_`|~", b"1")],
    *[(b"Cookie", b"a=b"), (b"Content-Type", b"text/plain"), (b"Keep-Alive", b"timeout=5")],
    *[(b"TE", b"trailers"), (b"Trailer", b"X-T"), (b"X-Long", b"v" * 200), (b"X-U", b"\xe9")],
]
CONTROL_BYTES = [bytes([b]) for b in b"\x00\x01\x07\x08\t\x0b\x0c\r\n\x1b\x1f\x7f\x80\xa0\xff"]
EOLS = [b"\n", b"\r", b"\r\r\n", b"\n\r", b"\r\n\r\n", b" \r\n", b"\r \n", b"\t\r\n"]
BLANKS = [b"\n", b"\r", b"", b"\r\n\r\n", b"\r\r\n", b" \r\n", b"\n\r\n"]
TRANSFER_ENCODINGS = [
    *[b"chunked", b"Chunked", b"CHUNKED", b" chunked", b"chunked ", b"\tchunked"],
    *[b"chunked, chunked", b"gzip, chunked", b"chunked, gzip", b"identity", b"gzip"],
    *[b"identity, chunked", b"chunked;q=1", b"x-chunked", b"chunk", b"chunked,", b""],
    *[b",chunked", b"chunked ,", b"chunked\x0b", b"deflate,chunked", b"chunked, identity"],
]
BODIES = [b"0\r\n\r\n", b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", b"\r\n", b"\x00\xff", b"\n"]
TRAILERS = [
    *[(b"X-T", b"1"), (b"X T", b"1"), (b"Content-Length", b"5"), (b"Host", b"b")],
    *[(b"Transfer-Encoding", b"chunked"), (b"X-E", b""), (b"X-T", b"\x01"), (b" fold", b"")],
]


def content_lengths(n: int) -> list[bytes]:
    forms = [str(n), f"0{n}", f"000{n}", f"+{n}", f"-{n}", f" {n}", f"{n} ", f"{n}\t"]
    forms += [f"{n} {n}", f"{n},{n}", f"{n}, {n}", f"{n},", f"0x{n:x}", f"{n}.0", "", "abc"]
    forms += ["18446744073709551616", "18446744073709551615", "99999999999999999999999"]
    forms += ["1e1", str(n + 1), str(max(n - 1, 0)), "0", f"{n}\x00", f"{n};"]
    return [form.encode("latin-1") for form in forms] + [b"\xd9\xa3"]


def chunk_sizes(size: int) -> list[bytes]:
    h = f"{size:x}"
    forms = [h.upper(), "000" + h, "0x" + h, "0X" + h, "+" + h, "-" + h, " " + h, h + " "]
    forms += [h + "\t", "\t" + h, h + ";", h + ";ext", h + ";ext=val", h + " ;ext", h + ";="]
    forms += [h + ';ext="q v"', h + "; ext", h + ";e;f=g", h + ";e=\x01", "1" + "0" * 16]
    forms += ["f" * 17, "f" * 16, "", "g", str(size), f"{size + 1:x}", f"{max(size - 1, 0):x}"]
    forms += [h + "\x00", h + h, h + "\r"]
    return [form.encode("latin-1") for form in forms]


def op_method(rng: random.Random, message: Message) -> str:
    message.method = rng.choice(METHODS)
    return f"method={message.method!r}"


def op_target(rng: random.Random, message: Message) -> str:
    message.target = rng.choice(TARGETS)
    return f"target={message.target!r}"


def op_version(rng: random.Random, message: Message) -> str:
    message.version = rng.choice(VERSIONS)
    return f"version={message.version!r}"


def op_request_line_blanks(rng: random.Random, message: Message) -> str:
    if rng.random() < 0.25:
        message.prefix = rng.choice(PREFIXES)
        return f"prefix={message.prefix!r}"
    which = rng.randrange(2)
    message.gaps[which] = rng.choice(GAPS)
    return f"gap{which}={message.gaps[which]!r}"


def op_add_header(rng: random.Random, message: Message) -> str:
    name, value = rng.choice(EXTRA_HEADERS)
    message.headers.insert(rng.randint(0, len(message.headers)), Header(name, value))
    return f"add-header={name + b': ' + value!r}"


def op_remove_header(rng: random.Random, message: Message) -> str:
    if not message.headers:
        return "remove-header=none"
    removed = message.headers.pop(rng.randrange(len(message.headers)))
    return f"remove-header={removed.name!r}"


def op_duplicate_header(rng: random.Random, message: Message) -> str:
    if not message.headers:
        return "duplicate-header=none"
    original = rng.choice(message.headers)
    copy = Header(original.name, original.value, original.colon, original.eol)
    message.headers.insert(rng.randint(0, len(message.headers)), copy)
    return f"duplicate-header={original.name!r}"


def op_name_blanks(rng: random.Random, message: Message) -> str:
    if not message.headers:
        return "name-blanks=none"
    header = rng.choice(message.headers)
    name = header.name
    header.name = rng.choice([b" " + name, name + b" ", name + b"\t", b"\t" + name])
    if rng.random() < 0.2:
        header.name = name[:1] + b" " + name[1:]
    return f"name-blanks={header.name!r}"


def op_value_blanks(rng: random.Random, message: Message) -> str:
    if not message.headers:
        return "value-blanks=none"
    header = rng.choice(message.headers)
    if rng.random() < 0.5:
        header.colon = rng.choice([b":", b":  ", b":\t", b": \t ", b" :", b"\t:", b"::"])
    else:
        value = header.value
        header.value = rng.choice([value + b" ", value + b"\t", value + b" \t ", b" " + value])
    return f"value-blanks={header.name + header.colon + header.value!r}"


def op_control_byte(rng: random.Random, message: Message) -> str:
    byte = rng.choice(CONTROL_BYTES)

    def insert(part: bytes) -> bytes:
        at = rng.randint(0, len(part))
        return part[:at] + byte + part[at:]

    where = rng.choice(["method", "target", "version", "name", "value"])
    if where == "method":
        message.method = insert(message.method)
    elif where == "target":
        message.target = insert(message.target)
    elif where == "version" and message.version is not None:
        message.version = insert(message.version)
    elif message.headers:
        header = rng.choice(message.headers)
        if where == "name":
            header.name = insert(header.name)
        else:
            header.value = insert(header.value)
    return f"control={byte!r}@{where}"


def op_obs_fold(rng: random.Random, message: Message) -> str:
    lead = rng.choice([b" ", b"\t", b"  "])
    text = rng.choice([b"cont", b"chunked", b"identity", b"5", b"", b"x: y"])
    at = rng.randint(1, max(1, len(message.headers)))
    message.headers.insert(at, Header(lead + text, colon=b""))
    return f"obs-fold={lead + text!r}@{at}"


def op_name_case(rng: random.Random, message: Message) -> str:
    if not message.headers:
        return "case=none"
    header = rng.choice(message.headers)
    header.name = rng.choice([header.name.lower(), header.name.upper(), header.name.swapcase()])
    return f"case={header.name!r}"


def op_line_end(rng: random.Random, message: Message) -> str:
    eol = rng.choice(EOLS)
    lines = len(message.headers)
    if rng.random() < 0.15:  # every line of the head
        message.line_eol = eol
        for header in message.headers:
            header.eol = eol
        message.blank = eol
        return f"all-eol={eol!r}"
    at = rng.randint(0, lines)
    if at == 0:
        message.line_eol = eol
    else:
        message.headers[at - 1].eol = eol
    return f"eol={eol!r}@{at}"


def op_blank_line(rng: random.Random, message: Message) -> str:
    message.blank = rng.choice(BLANKS)
    return f"blank={message.blank!r}"


def op_content_length(rng: random.Random, message: Message) -> str:
    value = rng.choice(content_lengths(message.body_length()))
    present = message.find(b"content-length")
    if present and rng.random() < 0.6:
        message.headers[rng.choice(present)].value = value
        return f"cl={value!r}"
    message.headers.insert(rng.randint(0, len(message.headers)), Header(b"Content-Length", value))
    return f"add-cl={value!r}"


def op_body_length(rng: random.Random, message: Message) -> str:
    if message.chunks is not None:
        return op_chunk_data(rng, message)
    choice = rng.random()
    if choice < 0.35:
        message.body += b"z"
        return "body+1"
    if choice < 0.7 and message.body:
        message.body = message.body[:-1]
        return "body-1"
    message.body = rng.choice(BODIES)
    for at in message.find(b"content-length"):
        message.headers[at].value = str(len(message.body)).encode()
    return f"body={message.body!r}"


def op_transfer_encoding(rng: random.Random, message: Message) -> str:
    value = rng.choice(TRANSFER_ENCODINGS)
    present = message.find(b"transfer-encoding")
    if not present:
        ensure_chunked(rng, message)
        present = message.find(b"transfer-encoding")
    if present and rng.random() < 0.7:
        message.headers[rng.choice(present)].value = value
        return f"te={value!r}"
    message.headers.insert(
        rng.randint(0, len(message.headers)), Header(b"Transfer-Encoding", value)
    )
    return f"add-te={value!r}"


def op_both_framings(rng: random.Random, message: Message) -> str:
    if message.chunks is None:
        ensure_chunked(rng, message)
    value = rng.choice([str(message.body_length()), "0", "3", "100"]).encode()
    at = rng.randint(0, len(message.headers))
    message.headers.insert(at, Header(b"Content-Length", value))
    return f"cl-and-te={value!r}@{at}"


def op_chunk_size(rng: random.Random, message: Message) -> str:
    ensure_chunked(rng, message)
    assert message.chunks is not None
    if rng.random() < 0.25:
        message.last_chunk = rng.choice(chunk_sizes(0))
        return f"last-chunk={message.last_chunk!r}"
    chunk = rng.choice(message.chunks)
    chunk.size = rng.choice(chunk_sizes(len(chunk.data)))
    return f"chunk-size={chunk.size!r}"


def op_chunk_data(rng: random.Random, message: Message) -> str:
    ensure_chunked(rng, message)
    assert message.chunks is not None
    chunk = rng.choice(message.chunks)
    choice = rng.random()
    if choice < 0.3:
        chunk.data += b"z"
        return "chunk-data+1"
    if choice < 0.55:
        chunk.data = chunk.data[:-1]
        return "chunk-data-1"
    if choice < 0.8:
        chunk.data_eol = rng.choice([b"\n", b"", b"\r", b"xx\r\n", b"\r\r\n", b" \r\n"])
        return f"chunk-data-eol={chunk.data_eol!r}"
    chunk.size_eol = rng.choice([b"\n", b"\r", b"\r\r\n", b" \r\n", b"\t\r\n"])
    return f"chunk-size-eol={chunk.size_eol!r}"


def op_chunk_body(rng: random.Random, message: Message) -> str:
    ensure_chunked(rng, message)
    assert message.chunks is not None
    data = rng.choice(BODIES)
    message.chunks.insert(
        rng.randint(0, len(message.chunks)), Chunk(f"{len(data):x}".encode(), data)
    )
    return f"chunk={data!r}"


def op_trailers(rng: random.Random, message: Message) -> str:
    ensure_chunked(rng, message)
    choice = rng.random()
    if choice < 0.6:
        name, value = rng.choice(TRAILERS)
        eol = CRLF if rng.random() < 0.8 else rng.choice(EOLS)
        message.trailers.append(Header(name, value, b": " if value else b":", eol))
        return f"trailer={name + b': ' + value!r}"
    if choice < 0.8:
        message.final = rng.choice([b"\n", b"", b"\r", b"\r\n\r\n", b" \r\n"])
        return f"final={message.final!r}"
    if choice < 0.9:
        message.last_eol = rng.choice([b"\n", b"", b"\r", b" \r\n"])
        return f"last-eol={message.last_eol!r}"
    message.last_chunk = message.last_eol = message.final = b""
    return "no-last-chunk"


#: (operator, weight): framing and chunks are weighted up, as that is where parsers part.
OPERATORS: list[tuple[Operator, int]] = [
    (op_method, 3),
    (op_target, 3),
    (op_version, 4),
    (op_request_line_blanks, 3),
    (op_add_header, 3),
    (op_remove_header, 2),
    (op_duplicate_header, 2),
    (op_name_blanks, 3),
    (op_value_blanks, 3),
    (op_control_byte, 4),
    (op_obs_fold, 3),
    (op_name_case, 1),
    (op_line_end, 4),
    (op_blank_line, 2),
    (op_content_length, 6),
    (op_body_length, 3),
    (op_transfer_encoding, 6),
    (op_both_framings, 3),
    (op_chunk_size, 8),
    (op_chunk_data, 5),
    (op_chunk_body, 2),
    (op_trailers, 4),
]


def byte_noise(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    byte = rng.choice([*CONTROL_BYTES, b" ", b":", b";", b"0", b"a"])
    how = rng.choice(["insert", "replace", "delete"])
    if how == "insert":
        return data[:at] + byte + data[at:], f"insert={byte!r}@{at}"
    if how == "replace":
        return data[:at] + byte + data[at + 1 :], f"replace={byte!r}@{at}"
    return data[:at] + data[at + 1 :], f"delete@{at}"


def make_mutant(seed: int, index: int) -> Mutant:
    """Mutant ``index`` of ``seed``: the same bytes on every run and every machine."""
    rng = random.Random(f"{seed}/{index}")
    messages = [base_message(rng, 1)]
    if rng.random() < 0.3:
        messages.append(base_message(rng, 2))
        if rng.random() < 0.2:
            messages.append(base_message(rng, 3))
    operators, weights = zip(*OPERATORS, strict=True)
    tags = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        number = 0 if rng.random() < 0.8 else rng.randrange(len(messages))
        operator = rng.choices(operators, weights)[0]
        tag = operator(rng, messages[number])
        tag = tag if len(tag) <= 60 else tag[:57] + "..."
        tags.append(tag if number == 0 else f"#{number + 1}:{tag}")
    data = b"".join(message.render() for message in messages)
    if rng.random() < 0.08:
        data, tag = byte_noise(rng, data)
        tags.append(tag)
    segments: tuple[bytes, ...] = (data,)
    if rng.random() < 0.33 and len(data) > 4:
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 3)))
        segments = tuple(data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True))
        tags.append(f"split@{','.join(map(str, cuts))}")
    return Mutant(seed, index, segments, tuple(tags))


# --- the servers -----------------------------------------------------------------------


async def _read_line(stream: trio.abc.ReceiveStream) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        data = await stream.receive_some(1024)
        if not data:
            raise RuntimeError(f"server exited before printing its port: {line!r}")
        line += data
    return line


async def start_process(argv: list[str]) -> tuple[trio.Process, dict[str, int]]:
    process = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        with trio.fail_after(30):
            return process, json.loads(await _read_line(process.stdout))
    except BaseException:
        await stop_process(process, kill=True)
        raise


async def stop_process(process: trio.Process, kill: bool = False) -> None:
    """Closing stdin asks it to exit; a busy one is killed."""
    with trio.CancelScope(shield=True):
        if kill:
            process.kill()
        if process.stdin is not None:
            await process.stdin.aclose()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()


class OurServer:
    """Our server in a subprocess of its own (``python this_file.py serve``)."""

    def __init__(self) -> None:
        self.process: trio.Process | None = None
        self.port = self.control_port = 0
        self.restarts = 0

    async def start(self) -> None:
        config = json.dumps({"timeout": SERVER_TIMEOUT})
        argv = [sys.executable, str(THIS_FILE), "serve", config]
        self.process, ports = await start_process(argv)
        self.port, self.control_port = ports["port"], ports["control"]

    async def stop(self, kill: bool = False) -> None:
        if self.process is not None:
            process, self.process = self.process, None
            await stop_process(process, kill=kill)

    async def restart(self) -> None:
        await self.stop(kill=True)
        self.restarts += 1
        await self.start()


@dataclass
class Servers:
    node_port: int
    control_port: int
    ours: list[OurServer]


@asynccontextmanager
async def fuzz_servers(lanes: int = LANES) -> AsyncIterator[Servers]:
    node = shutil.which("node")
    assert node, "node must be installed for the differential fuzzer"
    milliseconds = int(SERVER_TIMEOUT * 1000)
    config = {"headersTimeout": milliseconds, "requestTimeout": milliseconds}
    process, ports = await start_process([node, str(NODE_SCRIPT), json.dumps(config)])
    ours = [OurServer() for _ in range(lanes)]
    try:
        async with trio.open_nursery() as nursery:
            for server in ours:
                nursery.start_soon(server.start)
        yield Servers(ports["port"], ports["control"], ours)
    finally:
        for server in ours:
            await server.stop()
        await stop_process(process)


# --- one exchange and its outcome ------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """What a client saw on one connection."""

    received: bytes
    closed: bool  # False: still open at the deadline
    reset: bool
    local_port: int


async def exchange(port: int, segments: Sequence[bytes], deadline: float = DEADLINE) -> Exchange:
    """Send the pieces, half-close, read until the server closes or ``deadline`` passes."""
    received = bytearray()
    closed = reset = False
    local_port = 0
    with trio.move_on_after(deadline):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        local_port = stream.socket.getsockname()[1]
        async with stream:

            async def send() -> None:
                try:
                    for segment in segments:
                        await stream.send_all(segment)
                    await stream.send_eof()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the server answered and closed before taking everything

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                try:
                    while data := await stream.receive_some(65536):
                        received += data
                except trio.BrokenResourceError:
                    reset = True
                closed = True
                nursery.cancel_scope.cancel()
    return Exchange(bytes(received), closed, reset, local_port)


def split_responses(data: bytes) -> tuple[list[tuple[int, dict[bytes, bytes], bytes]], bytes]:
    """Cut answer bytes into (status, headers, body); what is not a response is returned."""
    responses: list[tuple[int, dict[bytes, bytes], bytes]] = []
    rest = data
    while rest:
        end = rest.find(b"\r\n\r\n")
        lines = rest[:end].split(b"\r\n")
        parts = lines[0].split(b" ")
        if end == -1 or not lines[0].startswith(b"HTTP/1.") or not parts[1:2]:
            return responses, rest
        if not parts[1].isdigit():
            return responses, rest
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        rest = rest[end + 4 :]
        body = b""
        if 100 <= status < 200 or status in (204, 304):
            pass
        elif b"chunked" in headers.get(b"transfer-encoding", b""):
            while True:
                line_end = rest.find(b"\r\n")
                if line_end == -1:
                    return responses, rest
                size = int(rest[:line_end].split(b";")[0] or b"0", 16)
                body += rest[line_end + 2 : line_end + 2 + size]
                rest = rest[line_end + 4 + size :]
                if size == 0:
                    break
        elif b"content-length" in headers:
            length = int(headers[b"content-length"])
            body, rest = rest[:length], rest[length:]
        else:
            body, rest = rest, b""
        responses.append((status, headers, body))
    return responses, b""


@dataclass(frozen=True)
class Echo:
    """A request as a server's handler read it: each server logs every request whose
    body it read to the end, answered or not."""

    method: str
    url: str
    body: str  # latin-1
    version: str
    headers: tuple[tuple[str, str], ...]
    trailers: tuple[tuple[str, str], ...]

    @classmethod
    def from_json(cls, echo: dict[str, Any]) -> Echo:
        return cls(
            echo["method"],
            echo["url"],
            echo["body"],
            echo["httpVersion"],
            tuple((name, value) for name, value in echo["rawHeaders"]),
            tuple((name, value) for name, value in echo["rawTrailers"]),
        )

    @property
    def framing(self) -> tuple[str, str, str]:
        return self.method, self.url, self.body

    def __str__(self) -> str:
        trailers = f" trailers={list(self.trailers)}" if self.trailers else ""
        return (
            f"{self.method} {self.url!r} body={self.body!r} "
            f"({self.version}, {list(self.headers)}{trailers})"
        )


@dataclass(frozen=True)
class Outcome:
    """One side of a case: what the server read, and what it answered."""

    requests: tuple[Echo, ...]  # logged by the handler, in order
    answers: tuple[int, ...]  # final statuses on the wire; 0 for bytes that are none
    interim: tuple[int, ...]  # 1xx statuses
    closed: bool  # False: the connection was still open at the deadline
    codes: tuple[str, ...] = ()  # the server's error codes for this connection
    hung: bool = False  # ours only: the whole server stopped answering
    raw: bytes = b""

    def __str__(self) -> str:
        if self.hung:
            return "HUNG: the server answered nobody any more"
        read = "; ".join(map(str, self.requests)) or "nothing"
        end = "closed" if self.closed else "OPEN at the deadline"
        codes = f" {list(self.codes)}" if self.codes else ""
        interim = f" (1xx: {list(self.interim)})" if self.interim else ""
        return f"answers {list(self.answers)}{interim}{codes}, {end}; read: {read}"


def outcome_of(seen: Exchange, log: dict[str, Any], hung: bool = False) -> Outcome:
    responses, garbage = split_responses(seen.received)
    statuses = [status for status, _, _ in responses]
    answers = [status for status in statuses if not 100 <= status < 200]
    return Outcome(
        requests=tuple(Echo.from_json(echo) for echo in log.get("requests", [])),
        answers=(*answers, 0) if garbage else tuple(answers),
        interim=tuple(status for status in statuses if 100 <= status < 200),
        closed=seen.closed,
        codes=tuple(log.get("codes", [])),
        hung=hung,
        raw=seen.received,
    )


# --- classes of differences ------------------------------------------------------------

# What each server read (the requests its handler saw) is compared first ...
WE_HANG = "we-hang"
WE_ACCEPT_NODE_REJECTS = "we-accept-node-rejects"
NODE_ACCEPTS_WE_REJECT = "node-accepts-we-reject"
DIFFERENT_FRAMING = "both-answer-different-framing"
DIFFERENT_HEAD = "both-answer-different-head"
ONE_SILENT_OTHER_ANSWERS = "one-silent-other-answers"
# ... then, if both read the same requests, what they answered on the wire.
NODE_ERROR_FIRST = "node-error-first"
NODE_EOF_400_WE_CLOSE = "node-eof-400-we-close"
DIFFERENT_STATUS = "different-status"
ERROR_VS_CLOSE = "error-status-vs-close"
ONE_SILENT_OTHER_CLOSES = "one-silent-other-closes"
DIFFERENT_ANSWERS = "different-answers"
DIFFERENT_INTERIM = "different-interim"

KINDS = {
    WE_HANG: "our server stopped answering anybody (a busy loop or a deadlock)",
    WE_ACCEPT_NODE_REJECTS: "we read a request that Node refuses (answers an error or closes)",
    NODE_ACCEPTS_WE_REJECT: "Node reads a request that we refuse (answer an error or close)",
    DIFFERENT_FRAMING: "both read the request, with a different method, url or body",
    DIFFERENT_HEAD: "both read the request alike but for its version, headers or trailers",
    ONE_SILENT_OTHER_ANSWERS: "one side reads a request, the other waits silently",
    NODE_ERROR_FIRST: (
        "the same requests read, but Node's error for a later (pipelined) message went out"
        " instead of the answers to the requests ahead of it; we answer those first"
    ),
    NODE_EOF_400_WE_CLOSE: "Node answers 400 to a message cut by the EOF, we close silently",
    DIFFERENT_STATUS: "the same requests read, but different statuses",
    ERROR_VS_CLOSE: "the same requests read; one side answers an error, the other closes",
    ONE_SILENT_OTHER_CLOSES: "the same answers; one side closes, the other stays open",
    DIFFERENT_ANSWERS: "the same requests read, but different answers otherwise",
    DIFFERENT_INTERIM: "the same final answers, but different 1xx responses",
}


def _at(items: Sequence[Any], at: int) -> Any:
    return items[at] if at < len(items) else None


def _answer_kind(node: Outcome, ours: Outcome) -> tuple[str, int]:
    n, o = node.answers, ours.answers
    at = next(i for i in range(max(len(n), len(o))) if _at(n, i) != _at(o, i))
    shorter = node if len(n) < len(o) else ours
    if len(n) != len(o) and not shorter.closed:
        return ONE_SILENT_OTHER_ANSWERS, at
    if n and n[-1] >= 400 and n[:-1] == o[: len(n) - 1] and _at(o, len(n) - 1) == 200:
        return NODE_ERROR_FIRST, at
    if n == (*o, 400) and "HPE_INVALID_EOF_STATE" in node.codes:
        return NODE_EOF_400_WE_CLOSE, at
    if len(n) == len(o):
        return DIFFERENT_STATUS, at
    if n[: len(o)] == o or o[: len(n)] == n:
        return ERROR_VS_CLOSE, at
    return DIFFERENT_ANSWERS, at


def classify(node: Outcome, ours: Outcome) -> tuple[str, int] | None:
    """The kind of the difference, and the index of the first request (for the kinds of
    what was read) or answer (for the others) that differs."""
    if ours.hung:
        return WE_HANG, 0
    for at in range(max(len(node.requests), len(ours.requests))):
        n, o = _at(node.requests, at), _at(ours.requests, at)
        if n == o:
            continue
        if n is not None and o is not None:
            return (DIFFERENT_FRAMING if n.framing != o.framing else DIFFERENT_HEAD), at
        if o is None:
            return (NODE_ACCEPTS_WE_REJECT if ours.closed else ONE_SILENT_OTHER_ANSWERS), at
        return (WE_ACCEPT_NODE_REJECTS if node.closed else ONE_SILENT_OTHER_ANSWERS), at
    if node.answers != ours.answers:
        return _answer_kind(node, ours)
    if node.closed != ours.closed:
        return ONE_SILENT_OTHER_CLOSES, len(node.answers)
    if node.interim != ours.interim:
        return DIFFERENT_INTERIM, 0
    return None


@dataclass(frozen=True)
class Difference:
    mutant: Mutant
    kind: str
    at: int
    node: Outcome
    ours: Outcome

    @property
    def node_code(self) -> str:
        return self.node.codes[0] if self.node.codes else ""

    @property
    def ours_code(self) -> str:
        return self.ours.codes[0] if self.ours.codes else ""

    def tagged(self, *prefixes: str) -> bool:
        """Whether an operator whose tag starts with one of ``prefixes`` made the mutant."""
        return any(tag.lstrip("#0123456789:").startswith(prefixes) for tag in self.mutant.tags)

    def signature(self) -> tuple[object, ...]:
        """What a smaller mutant must keep to show the same difference: the kind, and
        the error codes on each side."""
        return self.kind, self.node_code, self.ours_code

    def describe(self) -> str:
        mutant = self.mutant
        split = f"\n    sent as: {mutant.segments!r}" if len(mutant.segments) > 1 else ""
        return (
            f"seed={mutant.seed} index={mutant.index}: {self.kind} (#{self.at + 1})\n"
            f"    tags:  {', '.join(mutant.tags)}\n"
            f"    bytes: {mutant.data!r}{split}\n"
            f"    node:  {self.node}\n"
            f"    ours:  {self.ours}\n"
            f"    replay: python tests/test_fuzz_differential.py replay "
            f"--seed {mutant.seed} --index {mutant.index}"
        )


# --- the allow-list --------------------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    """A difference accepted for now: a predicate over :class:`Difference` and why."""

    name: str
    reason: str
    matches: Callable[[Difference], bool]


def _same_fault_read_ahead(d: Difference) -> bool:
    # Both sides find the same fault in a later message; only when it is answered differs.
    n, o = d.node.answers, d.ours.answers
    return (
        d.kind in (NODE_ERROR_FIRST, ERROR_VS_CLOSE)
        and d.node_code != ""
        and d.node_code == d.ours_code
        and (d.kind == NODE_ERROR_FIRST or o[: len(n)] == n)
    )


def _data_after_close(d: Difference) -> bool:
    return (
        d.kind in (NODE_ERROR_FIRST, ERROR_VS_CLOSE)
        and d.node_code == "HPE_CLOSED_CONNECTION"
        and d.ours_code == ""
    )


def _read_ahead_past_our_refusal(d: Difference) -> bool:
    # We refused a request without a parse error (a missing Host) and read no further;
    # Node's read-ahead went past it to a parse error, whose 400 replaced its answers.
    n, o = d.node, d.ours
    return (
        d.kind == NODE_ERROR_FIRST
        and d.node_code != ""
        and d.ours_code == ""
        and o.answers[-1:] == (400,)
        and n.answers[:-1] == o.answers[: len(n.answers) - 1]
        and n.requests == o.requests[: len(n.requests)]
    )


def _read_ahead_tunnel(d: Difference) -> bool:
    # A pipelined CONNECT or Upgrade with no listener: Node's read-ahead reaches it and
    # destroys the socket before the answers ahead of it are written; we write them first.
    n, o = d.node, d.ours
    data = d.mutant.data.upper()
    return (
        d.node_code == ""
        and n.closed
        and o.closed
        and len(n.answers) < len(o.answers)
        and o.answers[: len(n.answers)] == n.answers
        and n.requests == o.requests[: len(n.requests)]
        and (b"CONNECT " in data or b"UPGRADE" in data)
    )


def _read_ahead_never_answered(d: Difference) -> bool:
    # The bytes on the wire are the same: Node's handler also ran for a request behind one
    # whose answer closed the connection, an answer that never went out.
    node, ours = d.node, d.ours
    return (
        d.kind == NODE_ACCEPTS_WE_REJECT
        and node.answers == ours.answers
        and node.interim == ours.interim
        and node.closed
        and ours.closed
        and node.requests[: len(ours.requests)] == ours.requests
    )


def _bad_body_after_417(d: Difference) -> bool:
    return (
        d.kind == ERROR_VS_CLOSE
        and 417 in d.ours.answers
        and d.node.answers == (*d.ours.answers, 400)
        and d.node_code != ""
        and d.ours_code == ""
    )


ALLOWED: tuple[Allowance, ...] = (
    Allowance(
        "read-ahead-fault",
        "Node's parser reads pipelined bytes while the request ahead of them is still being"
        " handled, and handles a fault it finds there at once: its default clientError"
        " reply (400) goes out instead of the answers not yet written (or, with an answer"
        " already under way, the socket is just destroyed). We read the next message only"
        " once the one ahead is answered, so those answers go out first, then the 400"
        " for the same fault (the codes must match).",
        _same_fault_read_ahead,
    ),
    Allowance(
        "data-after-close",
        "Bytes after a message that does not keep the connection alive (HTTP/1.0 or 0.9"
        " without keep-alive, Connection: close): llhttp refuses them (HPE_CLOSED_CONNECTION)"
        " and Node answers 400 in place of a response not yet written. We answer the"
        " message and close; the bytes after it are never read.",
        _data_after_close,
    ),
    Allowance(
        "read-ahead-past-our-refusal",
        "A request we refuse without a parse error (no Host: 400) ends our reading of the"
        " connection; Node's parser has already read past it, to a parse error in the"
        " bytes behind, and its 400 for that goes out in place of the answers not yet"
        " written. Both refuse; we answer what came before first.",
        _read_ahead_past_our_refusal,
    ),
    Allowance(
        "read-ahead-tunnel",
        "A pipelined CONNECT or Upgrade that no listener takes: Node's parser reaches it"
        " while the requests ahead are still being handled and destroys the socket, so"
        " their answers never go out. We answer them, then close at the tunnel request.",
        _read_ahead_tunnel,
    ),
    Allowance(
        "eof-in-body",
        "The client's EOF (its half-close) cuts a request body: Node's llhttp_finish()"
        " reports HPE_INVALID_EOF_STATE and Node answers 400 before closing. Our server"
        " takes an EOF in a body for the client gone (the handler's read fails with"
        " 'aborted', as Node's req emits 'aborted') and closes without an answer.",
        lambda d: d.kind == NODE_EOF_400_WE_CLOSE and d.ours_code == "",
    ),
    Allowance(
        "read-ahead-never-answered",
        "The same answers on the wire: behind a request whose answer closes the"
        " connection (a 400 for a missing Host), Node's parser has already read the next"
        " request and run its handler, whose answer never goes out; we stop reading.",
        _read_ahead_never_answered,
    ),
    Allowance(
        "bad-body-after-417",
        "A request answered 417 before its body is read (Expect without a"
        " checkExpectation listener): Node goes on parsing that body and answers a fault"
        " in it with a 400; we drop the body of an answered request and close when it"
        " turns bad.",
        _bad_body_after_417,
    ),
)


def allowance_for(difference: Difference) -> Allowance | None:
    return next((a for a in ALLOWED if a.matches(difference)), None)


# --- running ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    mutant: Mutant
    node: Outcome
    ours: Outcome
    difference: Difference | None


async def server_log(control_port: int, local_port: int) -> dict[str, Any]:
    """What a server logged for the connection from ``local_port``: the requests its
    handler read, and its error codes (each server forgets them once asked)."""
    ask = f"GET /?port={local_port} HTTP/1.1\r\nHost: c\r\n\r\n".encode()
    responses, _ = split_responses((await exchange(control_port, [ask])).received)
    assert responses and responses[0][0] == 200, "a control port did not answer"
    log: dict[str, Any] = json.loads(responses[0][2])
    return log


PING = b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n"


async def responsive(port: int) -> bool:
    responses, _ = split_responses((await exchange(port, [PING], PING_TIMEOUT)).received)
    return bool(responses) and responses[0][0] == 200


async def run_mutant(servers: Servers, lane: OurServer, mutant: Mutant) -> Case:
    seen: dict[str, Exchange] = {}

    async def side(name: str, port: int) -> None:
        seen[name] = await exchange(port, mutant.segments)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, "node", servers.node_port)
        nursery.start_soon(side, "ours", lane.port)
    node_seen, ours_seen = seen["node"], seen["ours"]
    node = outcome_of(node_seen, await server_log(servers.control_port, node_seen.local_port))
    if not ours_seen.closed and not await responsive(lane.port):
        await lane.restart()
        ours = outcome_of(ours_seen, {}, hung=True)
    else:
        ours = outcome_of(ours_seen, await server_log(lane.control_port, ours_seen.local_port))
    found = classify(node, ours)
    difference = None if found is None else Difference(mutant, found[0], found[1], node, ours)
    return Case(mutant, node, ours, difference)


async def run_mutants(servers: Servers, mutants: Sequence[Mutant]) -> list[Case]:
    cases: list[Case | None] = [None] * len(mutants)
    send, receive = trio.open_memory_channel[tuple[int, Mutant]](len(mutants))
    for item in enumerate(mutants):
        send.send_nowait(item)
    send.close()

    async def lane_worker(lane: OurServer) -> None:
        async for position, mutant in receive:
            cases[position] = await run_mutant(servers, lane, mutant)

    async with trio.open_nursery() as nursery:
        for lane in servers.ours:
            nursery.start_soon(lane_worker, lane)
    return [case for case in cases if case is not None]


def time_limit(cases: int) -> float:
    """A bound on a whole run: generous per case, and room for every lane to hang a few
    times (each costs the deadline, a ping and a restart)."""
    return 60 + cases * 0.05 + 10 * (DEADLINE + PING_TIMEOUT + 2)


async def minimize(servers: Servers, difference: Difference, budget: float = 20.0) -> Difference:
    """A shorter mutant showing the same difference (the same signature), found greedily
    by dropping lines, then runs of bytes, within ``budget`` seconds; sent in one piece.
    The difference itself if it shows only when split (or not reproducibly)."""
    lane = servers.ours[0]
    wanted = difference.signature()
    mutant = difference.mutant
    found = difference

    async def same(data: bytes) -> bool:
        nonlocal found
        if not data:
            return False
        case = await run_mutant(servers, lane, Mutant(mutant.seed, mutant.index, (data,), ()))
        if case.difference is None or case.difference.signature() != wanted:
            return False
        found = case.difference
        return True

    best = mutant.data
    with trio.move_on_after(budget):
        if not await same(best):
            return difference
        lines = best.splitlines(keepends=True)
        at = len(lines) - 1
        while at >= 0:
            candidate = lines[:at] + lines[at + 1 :]
            if await same(b"".join(candidate)):
                lines = candidate
                best = b"".join(lines)
            at -= 1
        for size in (8, 4, 2, 1):
            at = 0
            while at < len(best):
                candidate_bytes = best[:at] + best[at + size :]
                if await same(candidate_bytes):
                    best = candidate_bytes
                else:
                    at += size
    return found


# --- the test --------------------------------------------------------------------------


async def test_no_differences_from_node_but_the_allowed() -> None:
    mutants = [make_mutant(SEED, index) for index in range(CASES)]
    with trio.fail_after(time_limit(CASES)):
        async with fuzz_servers() as servers:
            cases = await run_mutants(servers, mutants)
    assert len(cases) == CASES
    # The harness itself works: most mutants are answered alike, many of them 200.
    alike = [case for case in cases if case.difference is None]
    assert len(alike) >= CASES // 3, f"only {len(alike)} of {CASES} mutants answered alike"
    assert sum(bool(c.node.answers) and c.node.answers[0] == 200 for c in alike) >= (CASES // 10)
    unexplained = [
        case.difference
        for case in cases
        if case.difference is not None and allowance_for(case.difference) is None
    ]
    assert not unexplained, (
        f"{len(unexplained)} of {CASES} mutants (seed {SEED}) differ from Node in a way "
        "the allow-list does not explain:\n\n" + "\n\n".join(d.describe() for d in unexplained)
    )


# --- command line: the server subprocess, and helpers for people ----------------------


def _peer_port(stream: object) -> int:
    try:
        return int(stream.socket.getpeername()[1])  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return 0


async def serve(config: dict[str, Any]) -> None:
    """Our side: an echo server on 127.0.0.1 (like fuzz_server.js, with a control server
    that answers what was logged per connection); prints the two ports; exits when its
    stdin closes."""
    timeout = float(config["timeout"])
    logs: dict[int, dict[str, list[Any]]] = {}

    def log_of(stream: object) -> dict[str, list[Any]]:
        return logs.setdefault(_peer_port(stream), {"requests": [], "codes": []})

    async def echo(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        body = await req.read()
        echoed = {
            "method": req.method,
            "url": req.url,
            "httpVersion": req.http_version,
            "rawHeaders": [list(pair) for pair in req.raw_headers],
            "rawTrailers": [list(pair) for pair in req.raw_trailers],
            "body": body.decode("latin-1"),
        }
        log_of(req.socket)["requests"].append(echoed)
        res.set_header("Content-Type", "application/json")
        await res.end(json.dumps(echoed))

    server = http.create_server(echo, headers_timeout=timeout, request_timeout=timeout)
    # Our error codes are diagnostics only: they are taken by wrapping the server's
    # (private) canned-answer method, so that its handling of bad input stays as it is;
    # should that method move, the codes are just missing.
    canned = getattr(server, "_client_error", None)
    if canned is not None:

        async def recording(record: Any, error: Any) -> None:
            stream = getattr(getattr(record, "connection", None), "stream", None)
            log_of(stream)["codes"].append(str(getattr(error, "code", error)))
            await canned(record, error)

        server._client_error = recording  # type: ignore[method-assign]

    async def control(req: http.IncomingMessage, res: http.ServerResponse) -> None:
        await req.read()
        port = int((req.url or "").partition("port=")[2] or 0)
        res.set_header("Content-Type", "application/json")
        await res.end(json.dumps(logs.pop(port, {"requests": [], "codes": []})))

    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(server.listen, 0, "127.0.0.1")
        _, control_port = await nursery.start(http.create_server(control).listen, 0, "127.0.0.1")
        print(json.dumps({"port": port, "control": control_port}), flush=True)
        while await stdin.receive_some():
            pass
        nursery.cancel_scope.cancel()


async def survey(seed: int, cases: int, examples: int, budget: float) -> None:
    mutants = [make_mutant(seed, index) for index in range(cases)]
    started = time.monotonic()
    async with fuzz_servers() as servers:
        results = await run_mutants(servers, mutants)
        print(f"{cases} mutants, seed {seed}: {time.monotonic() - started:.1f} s")
        differences = [case.difference for case in results if case.difference is not None]
        kinds = Counter(d.kind for d in differences)
        print(f"alike: {cases - len(differences)}")
        for kind, count in kinds.most_common():
            print(f"{count:6}  {kind}: {KINDS[kind]}")
        allowed = Counter(
            (a.name if (a := allowance_for(d)) else "(not allowed)") for d in differences
        )
        print("by allowance:", dict(allowed.most_common()))
        by_signature: dict[str, dict[tuple[object, ...], list[Difference]]] = defaultdict(dict)
        for difference in differences:
            group = by_signature[difference.kind].setdefault(difference.signature(), [])
            group.append(difference)
        for kind in kinds:
            groups = by_signature[kind]
            print(f"\n== {kind} ({kinds[kind]}), by (kind, node status, node code, our status):")
            for signature, members in sorted(groups.items(), key=lambda g: -len(g[1])):
                print(f"  {len(members):5}  {signature[1:]}")
            # Examples: the shortest of each of the biggest signature groups.
            picked = sorted(groups.values(), key=len, reverse=True)[:examples]
            for members in picked:
                difference = min(members, key=lambda d: len(d.mutant.data))
                small = await minimize(servers, difference, budget)
                print(f"  example (index {difference.mutant.index}): {small.mutant.data!r}")
                print(f"     tags: {', '.join(difference.mutant.tags)}")
                print(f"     node: {small.node}\n     ours: {small.ours}")


async def replay(mutant: Mutant) -> None:
    async with fuzz_servers(lanes=1) as servers:
        case = await run_mutant(servers, servers.ours[0], mutant)
    print(f"tags:  {', '.join(mutant.tags)}\nbytes: {mutant.data!r}")
    if len(mutant.segments) > 1:
        print(f"sent as: {mutant.segments!r}")
    print(f"node:  {case.node}\n       {case.node.raw!r}")
    print(f"ours:  {case.ours}\n       {case.ours.raw!r}")
    if case.difference is None:
        print("alike")
    else:
        allowance = allowance_for(case.difference)
        print(f"{case.difference.kind}; allowed: {allowance.name if allowance else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description="The differential fuzzer against Node")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser("serve", help="(internal) run our server")
    serve_command.add_argument("config")
    survey_command = commands.add_parser("survey", help="counts per class, with examples")
    survey_command.add_argument("--seed", type=int, default=SEED)
    survey_command.add_argument("--cases", type=int, default=2000)
    survey_command.add_argument("--examples", type=int, default=3)
    survey_command.add_argument("--budget", type=float, default=20.0)
    replay_command = commands.add_parser("replay", help="run one mutant and show both sides")
    replay_command.add_argument("--seed", type=int, default=SEED)
    replay_command.add_argument("--index", type=int, required=True)
    try_command = commands.add_parser("try", help="send bytes of your own to both sides")
    try_command.add_argument("data", nargs="+", help="Python bytes literals, one per piece")
    args = parser.parse_args()
    if args.command == "serve":
        trio.run(serve, json.loads(args.config))
    elif args.command == "survey":
        trio.run(survey, args.seed, args.cases, args.examples, args.budget)
    elif args.command == "replay":
        trio.run(replay, make_mutant(args.seed, args.index))
    else:
        pieces = tuple(ast.literal_eval(piece) for piece in args.data)
        trio.run(replay, Mutant(0, -1, pieces, ("try",)))


if __name__ == "__main__":
    main()
