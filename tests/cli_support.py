"""Helpers shared by the command line's tests (test_cli_*.py): the files of a served
directory, and reading a subprocess's output."""

from __future__ import annotations

from pathlib import Path

import trio

HELLO = b"hello, world\n"
SECRET = b"top secret, outside the served directory\n"
INDEX = b"<!DOCTYPE html><title>sub</title><p>the index</p>\n"
# Bigger than a few read chunks, and not a multiple of the chunk size.
BIG = bytes(range(256)) * 4099
# In the served directory's dot-files, which are hidden unless asked for.
DOTFILE = b"TOKEN=a dot-file's contents\n"


def make_site(tmp_path: Path) -> Path:
    """A served directory ``root`` and, next to it, a file that must stay out of reach.

    Its dot-files (``.env``, ``.git/config``, ``list/.hidden``) hold :data:`DOTFILE`.
    """
    (tmp_path / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(HELLO)
    (root / "big.bin").write_bytes(BIG)
    (root / "noext").write_bytes(b"\x00\x01")
    (root / "empty.txt").write_bytes(b"")
    (root / "sp ace & more.txt").write_bytes(b"spaced\n")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(INDEX)
    listing = root / "list"
    listing.mkdir()
    (listing / "a&<b>.txt").write_bytes(b"x")
    (listing / 'quote".txt').write_bytes(b"x")
    (listing / "inner").mkdir()
    (root / "evil.example").mkdir()
    (root / ".env").write_bytes(DOTFILE)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_bytes(DOTFILE)
    (listing / ".hidden").write_bytes(DOTFILE)
    return root


async def read_line(stream: trio.abc.ReceiveStream) -> bytes:
    """The first line from ``stream`` (a subprocess's stdout), without its newline."""
    data = b""
    for _ in range(1000):
        if b"\n" in data:
            return data.partition(b"\n")[0]
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
    raise AssertionError(f"no line on stdout: {data!r}")


async def drain(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    """Everything from ``stream`` into ``into``, until its end."""
    while chunk := await stream.receive_some(65536):  # ends at EOF (the process exits)
        into += chunk
