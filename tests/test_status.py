"""``METHODS`` and ``STATUS_CODES`` (G01, G02), checked against the installed ``node``."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import pytest

from trio_nodehttp import METHODS, STATUS_CODES
from trio_nodehttp._headers import is_token
from trio_nodehttp._status import METHOD_SET

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def node_json(expression: str) -> Any:
    """Evaluate ``expression`` in node (with ``http`` loaded) and decode its JSON."""
    assert NODE is not None
    script = f'const http = require("http"); console.log(JSON.stringify({expression}));'
    done = subprocess.run(
        [NODE, "-e", script], capture_output=True, encoding="utf-8", check=True, timeout=60
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def node_methods() -> list[str]:
    methods: list[str] = node_json("http.METHODS")
    return methods


@pytest.fixture(scope="module")
def node_status_codes() -> dict[int, str]:
    codes: dict[str, str] = node_json("http.STATUS_CODES")
    return {int(code): phrase for code, phrase in codes.items()}


# --- G01 METHODS -------------------------------------------------------------------------


def test_G01_methods_is_a_sorted_tuple_of_35_unique_uppercase_names() -> None:
    assert isinstance(METHODS, tuple)
    assert len(METHODS) == 35
    assert list(METHODS) == sorted(METHODS)
    assert len(set(METHODS)) == len(METHODS)
    for method in METHODS:
        assert isinstance(method, str)
        assert method == method.upper()
        assert is_token(method)


def test_G01_methods_spelled_out() -> None:
    assert METHODS == (
        "ACL",
        "BIND",
        "CHECKOUT",
        "CONNECT",
        "COPY",
        "DELETE",
        "GET",
        "HEAD",
        "LINK",
        "LOCK",
        "M-SEARCH",
        "MERGE",
        "MKACTIVITY",
        "MKCALENDAR",
        "MKCOL",
        "MOVE",
        "NOTIFY",
        "OPTIONS",
        "PATCH",
        "POST",
        "PROPFIND",
        "PROPPATCH",
        "PURGE",
        "PUT",
        "QUERY",
        "REBIND",
        "REPORT",
        "SEARCH",
        "SOURCE",
        "SUBSCRIBE",
        "TRACE",
        "UNBIND",
        "UNLINK",
        "UNLOCK",
        "UNSUBSCRIBE",
    )


def test_G01_methods_include_query_and_the_common_ones() -> None:
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT"):
        assert method in METHODS
    assert "QUERY" in METHODS
    # Not in llhttp's list.
    for method in ("get", "FOO", "PRI", "HTTP"):
        assert method not in METHODS


def test_G01_method_set_is_the_ascii_bytes_of_methods() -> None:
    assert frozenset(method.encode("ascii") for method in METHODS) == METHOD_SET


@needs_node
def test_G01_methods_equal_node(node_methods: list[str]) -> None:
    assert list(METHODS) == node_methods


# --- G02 STATUS_CODES ---------------------------------------------------------------------


def test_G02_status_codes_is_a_read_only_int_to_str_mapping() -> None:
    assert isinstance(STATUS_CODES, Mapping)
    for code, phrase in STATUS_CODES.items():
        assert type(code) is int
        assert 100 <= code <= 511
        assert isinstance(phrase, str)
        assert phrase
        assert phrase == phrase.strip()
    with pytest.raises(TypeError):
        STATUS_CODES[599] = "Nope"  # type: ignore[index]
    with pytest.raises(TypeError):
        del STATUS_CODES[200]  # type: ignore[attr-defined]


def test_G02_status_codes_are_sorted_and_span_100_to_511() -> None:
    codes = list(STATUS_CODES)
    assert codes == sorted(codes)
    assert codes[0] == 100
    assert codes[-1] == 511
    assert len(codes) == 63


@pytest.mark.parametrize(
    ("code", "phrase"),
    [
        (100, "Continue"),
        (101, "Switching Protocols"),
        (102, "Processing"),
        (103, "Early Hints"),
        (200, "OK"),
        (204, "No Content"),
        (304, "Not Modified"),
        (404, "Not Found"),
        (413, "Payload Too Large"),
        (418, "I'm a Teapot"),
        (421, "Misdirected Request"),
        (422, "Unprocessable Entity"),
        (425, "Too Early"),
        (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"),
        (505, "HTTP Version Not Supported"),
        (509, "Bandwidth Limit Exceeded"),
        (511, "Network Authentication Required"),
    ],
)
def test_G02_reason_phrase(code: int, phrase: str) -> None:
    assert STATUS_CODES[code] == phrase


@pytest.mark.parametrize("code", [99, 306, 419, 420, 512, 599, 600, 999])
def test_G02_codes_node_does_not_name(code: int) -> None:
    assert code not in STATUS_CODES
    assert STATUS_CODES.get(code) is None


def test_G02_lookup_is_by_int_not_str() -> None:
    assert "200" not in STATUS_CODES  # type: ignore[comparison-overlap]


@needs_node
def test_G02_status_codes_equal_node(node_status_codes: dict[int, str]) -> None:
    assert dict(STATUS_CODES) == node_status_codes
    # Same order as well (Node's object keys are integer-like, so ascending).
    assert list(STATUS_CODES) == list(node_status_codes)
