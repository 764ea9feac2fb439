"""Header validation, the outgoing header store and the folding of incoming headers.

R08-R12, M02-M05, G03, G04. Where Node can be asked directly, the tests run the same
inputs through the installed ``node`` and compare: ``http.validateHeaderName`` /
``validateHeaderValue``, ``OutgoingMessage``'s header API and ``IncomingMessage``'s
``headers`` / ``headersDistinct``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

import trio_nodehttp
from trio_nodehttp import (
    HTTPError,
    InvalidArgTypeError,
    InvalidArgValueError,
    InvalidCharError,
    InvalidHeaderValueError,
    InvalidHTTPTokenError,
    validate_header_name,
    validate_header_value,
)
from trio_nodehttp._headers import (
    OutgoingHeaders,
    check_header_pairs,
    distinct_headers,
    fold_headers,
    is_token,
)

NODE = shutil.which("node")

TCHAR_SPECIALS = "!#$%&'*+-.^_`|~"
TCHARS = TCHAR_SPECIALS + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def run_node(script: str, payload: Any) -> Any:
    """Run ``script`` in node with ``payload`` as JSON on stdin; decode its JSON output."""
    assert NODE is not None, "node must be installed (the tests use it as the oracle)"
    done = subprocess.run(
        [NODE, "-e", script],
        input=json.dumps(payload),
        capture_output=True,
        encoding="utf-8",
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def outcome(call: Any, *args: Any) -> list[str] | None:
    """``None`` if the call passes, else ``[code, message]`` of the error it raises."""
    try:
        call(*args)
    except HTTPError as exc:
        return [exc.code, exc.args[0]]
    return None


# --- G04 / R10: header names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Content-Type",
        "content-type",
        "X-Custom_Header.1",
        "x",
        "0",
        TCHAR_SPECIALS,
        TCHARS,
        "a" * 10000,
    ],
)
def test_R10_valid_names(name: str) -> None:
    assert is_token(name)
    validate_header_name(name)


@pytest.mark.parametrize("char", TCHARS)
def test_R10_every_token_char_is_a_valid_name(char: str) -> None:
    validate_header_name(char)
    validate_header_name(f"X{char}Y")


@pytest.mark.parametrize(
    "name",
    [
        "",
        " ",
        "a b",
        " a",
        "a ",
        "a:b",
        "Content-Type:",
        "a\tb",
        "a\r\nb",
        "a\n",
        "a\x00",
        "a\x7f",
        "(",
        ")",
        ",",
        "/",
        ";",
        "<",
        "=",
        ">",
        "?",
        "@",
        "[",
        "\\",
        "]",
        "{",
        "}",
        '"',
        "é",
        "x-café",
        "\x80",
        "\xff",
        "あ",
        "😀",
    ],
)
def test_R10_invalid_names(name: str) -> None:
    assert not is_token(name)
    with pytest.raises(InvalidHTTPTokenError) as info:
        validate_header_name(name)
    assert info.value.code == "ERR_INVALID_HTTP_TOKEN"
    assert isinstance(info.value, TypeError)
    assert info.value.args[0] == f'Header name must be a valid HTTP token ["{name}"]'
    assert str(info.value) == (
        f'Header name must be a valid HTTP token ["{name}"] [ERR_INVALID_HTTP_TOKEN]'
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (404, "404"),
        (None, "undefined"),
        (True, "true"),
        (False, "false"),
        (b"Content-Type", "b'Content-Type'"),
        (["X"], "['X']"),
        (1.5, "1.5"),
    ],
)
def test_R08_non_string_names_are_invalid_tokens(name: object, shown: str) -> None:
    with pytest.raises(InvalidHTTPTokenError) as info:
        validate_header_name(name)
    assert info.value.code == "ERR_INVALID_HTTP_TOKEN"
    assert info.value.args[0] == f'Header name must be a valid HTTP token ["{shown}"]'


def test_G04_name_label() -> None:
    with pytest.raises(InvalidHTTPTokenError) as info:
        validate_header_name("a b", "Trailer name")
    assert info.value.args[0] == 'Trailer name must be a valid HTTP token ["a b"]'


def test_is_token_does_not_accept_a_trailing_newline() -> None:
    # re's "$" would match before a final "\n"; the check must be on the whole string.
    assert not is_token("GET\n")
    assert not is_token("\nGET")


# --- G04 / R11: header values ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "\t",
        "text/html; charset=utf-8",
        "a\tb",
        " leading and trailing ",
        "".join(chr(c) for c in range(0x20, 0x7F)),
        "".join(chr(c) for c in range(0x80, 0x100)),
        "café",
        "\xff",
        "x" * 100000,
        0,
        404,
        -1,
        10**30,
        [],
        ["a", "b"],
        ["a", 1],
        ("a", "b"),
    ],
)
def test_R11_valid_values(value: object) -> None:
    validate_header_value("X-Test", value)


@pytest.mark.parametrize(
    "value",
    [
        "a\r\nb",
        "\r",
        "\n",
        "a\nInjected: yes",
        "\x00",
        "a\x00b",
        "\x7f",
        "\x01",
        "\x08",
        "\x0b",
        "\x0c",
        "\x1b",
        "\x1f",
        "\u0100",
        "あ",
        "😀",
        "\ufeff",
        "\ud800",
        ["ok", "bad\n"],
        ["bad\x00"],
        ("ok", "\u0100"),
    ],
)
def test_R11_invalid_characters(value: object) -> None:
    with pytest.raises(InvalidCharError) as info:
        validate_header_value("X-Test", value)
    assert info.value.code == "ERR_INVALID_CHAR"
    assert isinstance(info.value, TypeError)
    assert info.value.args[0] == 'Invalid character in header content ["X-Test"]'


@pytest.mark.parametrize("code", [c for c in range(0x20) if c != 0x09] + [0x7F])
def test_R11_every_control_char_is_rejected(code: int) -> None:
    with pytest.raises(InvalidCharError):
        validate_header_value("X-Test", f"a{chr(code)}b")


@pytest.mark.parametrize("code", [0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
def test_R11_htab_visible_ascii_and_obs_text_accepted(code: int) -> None:
    validate_header_value("X-Test", f"a{chr(code)}b")


def test_G04_none_value() -> None:
    with pytest.raises(InvalidHeaderValueError) as info:
        validate_header_value("X-Test", None)
    assert info.value.code == "ERR_HTTP_INVALID_HEADER_VALUE"
    assert isinstance(info.value, TypeError)
    assert info.value.args[0] == 'Invalid value "undefined" for header "X-Test"'


def test_value_label() -> None:
    with pytest.raises(InvalidCharError) as info:
        validate_header_value("X-T", "\n", "trailer content")
    assert info.value.args[0] == 'Invalid character in trailer content ["X-T"]'


@pytest.mark.parametrize(
    "value", [True, False, 1.5, b"bytes", {"a": "b"}, object(), ["a", None], ["a", True], [["a"]]]
)
def test_values_of_other_types_are_rejected(value: object) -> None:
    with pytest.raises(InvalidArgTypeError) as info:
        validate_header_value("X-Test", value)
    assert info.value.code == "ERR_INVALID_ARG_TYPE"
    assert isinstance(info.value, TypeError)


# --- G04 differential against node -----------------------------------------------------------

_NODE_VALIDATE = r"""
const http = require("http");
const { names, values } = JSON.parse(require("fs").readFileSync(0, "utf8"));
const run = (fn) => { try { fn(); return null; } catch (e) { return [e.code, e.message]; } };
console.log(JSON.stringify({
  names: names.map((n) => run(() => http.validateHeaderName(n))),
  labelled: names.map((n) => run(() => http.validateHeaderName(n, "Trailer name"))),
  values: values.map((v) => run(() => http.validateHeaderValue("X-Test", v))),
}));
"""

_EXTRA_STRINGS = [
    "",
    "Content-Type",
    "x-custom_header.1",
    TCHARS,
    "a b",
    "a:b",
    " a",
    "a ",
    "a\t",
    "a\tb",
    "a\r\nb",
    "a\nb",
    "a\rb",
    "A\x00",
    "a\x7fb",
    "\x80\xff",
    "é-header",
    "café",
    "x\u0100",
    "日本",
    "\u2028",
    "\ufeff",
    "\ufffd",
    "😀",
    "\ud800",
    "text/html; charset=utf-8",
    "x" * 5000,
]
DIFF_STRINGS = [chr(c) for c in range(0x180)] + _EXTRA_STRINGS


@pytest.fixture(scope="module")
def node_validation() -> dict[str, list[Any]]:
    result: dict[str, list[Any]] = run_node(
        _NODE_VALIDATE, {"names": DIFF_STRINGS, "values": DIFF_STRINGS}
    )
    return result


def _mismatches(ours: list[Any], theirs: list[Any]) -> list[tuple[str, Any, Any]]:
    return [
        (repr(text), mine, node)
        for text, mine, node in zip(DIFF_STRINGS, ours, theirs, strict=True)
        if mine != node
    ]


def test_G04_validate_header_name_matches_node(node_validation: dict[str, list[Any]]) -> None:
    ours = [outcome(validate_header_name, text) for text in DIFF_STRINGS]
    assert _mismatches(ours, node_validation["names"]) == []
    # The differential is not vacuous: both outcomes occur.
    assert None in ours
    assert any(result is not None for result in ours)


def test_G04_name_label_matches_node(node_validation: dict[str, list[Any]]) -> None:
    ours = [outcome(validate_header_name, text, "Trailer name") for text in DIFF_STRINGS]
    assert _mismatches(ours, node_validation["labelled"]) == []


def test_G04_validate_header_value_matches_node(node_validation: dict[str, list[Any]]) -> None:
    ours = [outcome(validate_header_value, "X-Test", text) for text in DIFF_STRINGS]
    assert _mismatches(ours, node_validation["values"]) == []
    assert None in ours
    assert ["ERR_INVALID_CHAR", 'Invalid character in header content ["X-Test"]'] in ours


def test_G04_undefined_value_matches_node() -> None:
    script = r"""
const http = require("http");
try { http.validateHeaderValue("X-Test", undefined); console.log("null"); }
catch (e) { console.log(JSON.stringify([e.code, e.message])); }
"""
    assert outcome(validate_header_value, "X-Test", None) == run_node(script, None)


def test_G03_max_header_size() -> None:
    assert trio_nodehttp.max_header_size == 16384
    assert run_node('console.log(require("http").maxHeaderSize)', None) == 16384


# --- R09 / R12 / R13: OutgoingHeaders --------------------------------------------------------


def test_R09_case_insensitive_set_get_has_remove() -> None:
    headers = OutgoingHeaders()
    headers.set("Content-Type", "text/plain")
    for spelling in ("Content-Type", "content-type", "CONTENT-TYPE", "cOnTeNt-TyPe"):
        assert headers.get(spelling) == "text/plain"
        assert headers.has(spelling)
    assert headers.get("Content-Length") is None
    assert not headers.has("Content-Length")
    headers.remove("CONTENT-type")
    assert not headers.has("content-type")
    assert headers.get("content-type") is None
    assert len(headers) == 0


def test_R09_empty_store() -> None:
    headers = OutgoingHeaders()
    assert len(headers) == 0
    assert headers.names() == []
    assert headers.raw_names() == []
    assert headers.to_dict() == {}
    assert list(headers.items()) == []
    headers.remove("absent")  # no error


def test_R09_reset_keeps_position_and_takes_new_casing_and_value() -> None:
    headers = OutgoingHeaders()
    headers.set("X-First", "1")
    headers.set("X-Second", "2")
    headers.set("X-Third", "3")
    headers.set("x-FIRST", "one")
    assert headers.names() == ["x-first", "x-second", "x-third"]
    assert headers.raw_names() == ["x-FIRST", "X-Second", "X-Third"]
    assert headers.to_dict() == {"x-first": "one", "x-second": "2", "x-third": "3"}
    assert list(headers.items()) == [
        ("x-first", "x-FIRST", "one"),
        ("x-second", "X-Second", "2"),
        ("x-third", "X-Third", "3"),
    ]
    assert len(headers) == 3


def test_R09_remove_then_set_goes_to_the_end() -> None:
    headers = OutgoingHeaders()
    headers.set("A", "1")
    headers.set("B", "2")
    headers.remove("a")
    headers.set("a", "3")
    assert headers.names() == ["b", "a"]
    assert headers.raw_names() == ["B", "a"]


def test_R09_values_are_kept_as_given() -> None:
    headers = OutgoingHeaders()
    headers.set("Content-Length", 42)
    cookies = ["a=1", "b=2"]
    headers.set("Set-Cookie", cookies)
    headers.set("X-Mixed", ["a", 1])
    headers.set("X-Empty", [])
    headers.set("X-Zero", 0)
    length = headers.get("content-length")
    assert length == 42
    assert type(length) is int
    assert headers.get("set-cookie") == ["a=1", "b=2"]
    assert headers.get("set-cookie") is cookies  # Node keeps the same array
    assert headers.get("x-mixed") == ["a", 1]
    assert headers.get("x-empty") == []
    assert headers.get("x-zero") == 0


def test_R09_a_tuple_value_is_stored_as_a_list() -> None:
    headers = OutgoingHeaders()
    headers.set("X-T", ("a", "b"))
    assert headers.get("x-t") == ["a", "b"]


def test_R13_to_dict_is_a_copy() -> None:
    headers = OutgoingHeaders()
    headers.set("X-A", "1")
    copy = headers.to_dict()
    copy["x-b"] = "2"
    del copy["x-a"]
    assert headers.to_dict() == {"x-a": "1"}


@pytest.mark.parametrize(
    ("name", "value", "error", "code"),
    [
        ("a b", "v", InvalidHTTPTokenError, "ERR_INVALID_HTTP_TOKEN"),
        ("", "v", InvalidHTTPTokenError, "ERR_INVALID_HTTP_TOKEN"),
        ("X-A", None, InvalidHeaderValueError, "ERR_HTTP_INVALID_HEADER_VALUE"),
        ("X-A", "a\r\nb", InvalidCharError, "ERR_INVALID_CHAR"),
        ("X-A", ["ok", "\n"], InvalidCharError, "ERR_INVALID_CHAR"),
        ("X-A", "あ", InvalidCharError, "ERR_INVALID_CHAR"),
        ("X-A", 1.5, InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    ],
)
@pytest.mark.parametrize("method", ["set", "append"])
def test_R08_set_and_append_validate_and_leave_the_store_unchanged(
    method: str, name: Any, value: Any, error: type[HTTPError], code: str
) -> None:
    headers = OutgoingHeaders()
    headers.set("X-A", "old")
    with pytest.raises(error) as info:
        getattr(headers, method)(name, value)
    assert info.value.code == code
    assert headers.to_dict() == {"x-a": "old"}
    assert headers.raw_names() == ["X-A"]


def test_R12_append_to_absent_acts_like_set() -> None:
    headers = OutgoingHeaders()
    headers.append("X-A", "1")
    assert headers.get("x-a") == "1"
    headers.append("X-L", ["a", "b"])
    assert headers.get("x-l") == ["a", "b"]
    assert headers.raw_names() == ["X-A", "X-L"]


def test_R12_append_makes_a_list_and_spreads_lists() -> None:
    headers = OutgoingHeaders()
    headers.set("Set-Cookie", "a=1")
    headers.append("set-cookie", "b=2")
    assert headers.get("Set-Cookie") == ["a=1", "b=2"]
    headers.append("SET-COOKIE", ["c=3", "d=4"])
    assert headers.get("set-cookie") == ["a=1", "b=2", "c=3", "d=4"]
    headers.append("Set-Cookie", 5)
    assert headers.get("set-cookie") == ["a=1", "b=2", "c=3", "d=4", 5]


def test_R12_append_keeps_the_casing_and_position_of_the_first_set() -> None:
    headers = OutgoingHeaders()
    headers.set("X-A", "1")
    headers.set("X-B", "2")
    headers.append("x-a", "3")
    assert headers.raw_names() == ["X-A", "X-B"]
    assert headers.names() == ["x-a", "x-b"]
    assert headers.get("x-a") == ["1", "3"]


def test_R12_append_to_an_int_keeps_the_int() -> None:
    headers = OutgoingHeaders()
    headers.set("X-N", 1)
    headers.append("X-N", 2)
    assert headers.get("x-n") == [1, 2]


def test_R12_append_to_an_empty_list() -> None:
    headers = OutgoingHeaders()
    headers.set("X-E", [])
    headers.append("X-E", "a")
    assert headers.get("x-e") == ["a"]


def test_R12_append_an_empty_list_to_a_value() -> None:
    headers = OutgoingHeaders()
    headers.set("X-E", "a")
    headers.append("X-E", [])
    assert headers.get("x-e") == ["a"]


def test_R12_append_does_not_change_a_list_the_caller_passed_to_set() -> None:
    headers = OutgoingHeaders()
    mine = ["a"]
    headers.set("X-L", mine)
    headers.append("X-L", "b")
    assert headers.get("x-l") == ["a", "b"]
    assert mine == ["a"]


# --- differential: OutgoingMessage's header API in node ---------------------------------------

_NODE_OUTGOING = r"""
const http = require("http");
const scripts = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(scripts.map(({ ops, queries }) => {
  const m = new http.OutgoingMessage();
  const errors = ops.map(([op, name, value]) => {
    try {
      if (op === "set") m.setHeader(name, value);
      else if (op === "append") m.appendHeader(name, value);
      else m.removeHeader(name);
      return null;
    } catch (e) { return e.code; }
  });
  return {
    errors,
    headers: Object.entries(m.getHeaders()),
    names: m.getHeaderNames(),
    raw: m.getRawHeaderNames(),
    got: queries.map((q) => m.getHeader(q) === undefined ? null : m.getHeader(q)),
    has: queries.map((q) => m.hasHeader(q)),
  };
})));
"""

OUTGOING_SCRIPTS: list[dict[str, Any]] = [
    {
        "ops": [
            ["set", "Content-Type", "text/plain"],
            ["set", "X-Num", 42],
            ["set", "Set-Cookie", ["a=1", "b=2"]],
            ["set", "content-TYPE", "text/html"],
        ],
        "queries": ["content-type", "CONTENT-TYPE", "x-num", "set-cookie", "absent"],
    },
    {
        "ops": [
            ["append", "X-A", "1"],
            ["append", "x-a", "2"],
            ["append", "X-A", ["3", 4]],
            ["set", "X-B", 5],
            ["append", "x-b", 6],
            ["set", "X-C", []],
            ["append", "X-C", "c"],
            ["set", "X-D", "d"],
            ["append", "X-D", []],
        ],
        "queries": ["x-a", "X-B", "x-c", "x-d"],
    },
    {
        "ops": [
            ["set", "A", "1"],
            ["set", "B", "2"],
            ["set", "C", "3"],
            ["remove", "a"],
            ["set", "a", "4"],
            ["set", "b", "5"],
            ["remove", "never-set"],
            ["append", "C", "6"],
            ["set", "c", "7"],
        ],
        "queries": ["a", "b", "c"],
    },
    {
        "ops": [
            ["set", "X-Good", "ok"],
            ["set", "bad name", "v"],
            ["set", "", "v"],
            ["set", "X-Bad", "a\r\nb"],
            ["set", "X-Bad", ["ok", "a\nb"]],
            ["set", "X-Bad", "\u0100"],
            ["append", "X-Good", "\u0000"],
            ["append", "bad:name", "v"],
            ["set", "X-Obs", "caf\u00e9\t\u00ff"],
        ],
        "queries": ["x-good", "x-bad", "x-obs"],
    },
]


def _run_outgoing_script(script: dict[str, Any]) -> dict[str, Any]:
    headers = OutgoingHeaders()
    errors: list[str | None] = []
    for op, name, *rest in script["ops"]:
        try:
            if op == "set":
                headers.set(name, rest[0])
            elif op == "append":
                headers.append(name, rest[0])
            else:
                headers.remove(name)
            errors.append(None)
        except HTTPError as exc:
            errors.append(exc.code)
    result = {
        "errors": errors,
        "headers": list(headers.to_dict().items()),
        "names": headers.names(),
        "raw": headers.raw_names(),
        "got": [headers.get(query) for query in script["queries"]],
        "has": [headers.has(query) for query in script["queries"]],
    }
    # Through JSON, as node's answer is (tuples become lists).
    normalized: dict[str, Any] = json.loads(json.dumps(result))
    return normalized


@pytest.fixture(scope="module")
def node_outgoing() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = run_node(_NODE_OUTGOING, OUTGOING_SCRIPTS)
    return result


@pytest.mark.parametrize("index", range(len(OUTGOING_SCRIPTS)))
def test_R09_R12_outgoing_headers_match_node(
    index: int, node_outgoing: list[dict[str, Any]]
) -> None:
    assert _run_outgoing_script(OUTGOING_SCRIPTS[index]) == node_outgoing[index]


# --- check_header_pairs (R04) ----------------------------------------------------------------


def test_R04_flat_list() -> None:
    assert check_header_pairs(["A", "1", "b", 2]) == [("A", "1"), ("b", 2)]


def test_R04_flat_tuple() -> None:
    assert check_header_pairs(("A", "1")) == [("A", "1")]


def test_R04_flat_keeps_duplicates_and_order() -> None:
    assert check_header_pairs(["Set-Cookie", "a", "X", "x", "set-cookie", "b"]) == [
        ("Set-Cookie", "a"),
        ("X", "x"),
        ("set-cookie", "b"),
    ]


def test_R04_flat_with_list_values() -> None:
    # Node: res.writeHead(200, ['Set-Cookie', ['a=1', 'b=2'], 'X-A', 1]) sends two
    # Set-Cookie lines; a value may be an array in the flat form too.
    assert check_header_pairs(["Set-Cookie", ["a=1", "b=2"], "X-A", 1]) == [
        ("Set-Cookie", ["a=1", "b=2"]),
        ("X-A", 1),
    ]
    assert check_header_pairs(["X-T", ("a", "b")]) == [("X-T", ["a", "b"])]


def test_R04_pairs() -> None:
    assert check_header_pairs([("A", "1"), ["B", 2], ("a", "3")]) == [
        ("A", "1"),
        ("B", 2),
        ("a", "3"),
    ]


def test_R04_pairs_with_list_values() -> None:
    assert check_header_pairs([("Set-Cookie", ["a", "b"])]) == [("Set-Cookie", ["a", "b"])]


def test_R04_empty() -> None:
    assert check_header_pairs([]) == []
    assert check_header_pairs(()) == []


@pytest.mark.parametrize("flat", [["A"], ["A", "1", "B"], ["A", "1", "B", "2", "C"]])
def test_R04_odd_length_flat_list(flat: list[str]) -> None:
    with pytest.raises(InvalidArgValueError) as info:
        check_header_pairs(flat)
    assert info.value.code == "ERR_INVALID_ARG_VALUE"
    assert isinstance(info.value, ValueError)
    assert "headers" in info.value.args[0]


@pytest.mark.parametrize(
    "pairs",
    [
        [("A", "1"), ("B",)],
        [("A", "1"), ("B", "2", "3")],
        [("A", "1"), "B"],
        [("A", "1"), None],
        [()],
    ],
)
def test_R04_malformed_pairs(pairs: list[Any]) -> None:
    with pytest.raises(InvalidArgValueError) as info:
        check_header_pairs(pairs)
    assert info.value.code == "ERR_INVALID_ARG_VALUE"


@pytest.mark.parametrize("headers", ["A: 1", b"A", {"A": "1"}, 5, None])
def test_R04_not_a_list(headers: object) -> None:
    with pytest.raises(InvalidArgTypeError) as info:
        check_header_pairs(headers)
    assert info.value.code == "ERR_INVALID_ARG_TYPE"


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        (["bad name", "1"], InvalidHTTPTokenError),
        ([("bad:name", "1")], InvalidHTTPTokenError),
        ([5, "1"], InvalidHTTPTokenError),
        ([None, "1"], InvalidHTTPTokenError),
        (["A", "x\r\n"], InvalidCharError),
        ([("A", ["ok", "\n"])], InvalidCharError),
        (["A", None], InvalidHeaderValueError),
        ([("A", None)], InvalidHeaderValueError),
        (["A", 1.5], InvalidArgTypeError),
    ],
)
def test_R04_pairs_are_validated(pairs: list[Any], error: type[HTTPError]) -> None:
    with pytest.raises(error):
        check_header_pairs(pairs)


# --- M02-M05: folding incoming headers -------------------------------------------------------

FIRST_WINS = [
    "age",
    "authorization",
    "content-length",
    "content-type",
    "etag",
    "expires",
    "from",
    "host",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "retry-after",
    "server",
    "user-agent",
]


def test_fold_single_values_lowercased_in_order() -> None:
    raw = [("Host", "example.com"), ("X-Custom", "v"), ("Accept", "*/*")]
    assert list(fold_headers(raw).items()) == [
        ("host", "example.com"),
        ("x-custom", "v"),
        ("accept", "*/*"),
    ]


def test_fold_empty() -> None:
    assert fold_headers([]) == {}
    assert distinct_headers([]) == {}


@pytest.mark.parametrize("name", FIRST_WINS)
def test_M02_first_value_wins(name: str) -> None:
    raw = [(name.upper(), "first"), (name, "second"), (name.title(), "third")]
    assert fold_headers(raw) == {name: "first"}


@pytest.mark.parametrize("name", FIRST_WINS)
def test_M04_join_duplicates_joins_first_wins_names(name: str) -> None:
    raw = [(name.upper(), "first"), (name, "second"), (name.title(), "third")]
    assert fold_headers(raw, join_duplicates=True) == {name: "first, second, third"}


def test_M02_empty_first_value_still_wins() -> None:
    assert fold_headers([("Host", ""), ("host", "b")]) == {"host": ""}


@pytest.mark.parametrize("join", [False, True])
def test_M03_set_cookie_is_always_a_list(join: bool) -> None:
    assert fold_headers([("Set-Cookie", "a=1")], join) == {"set-cookie": ["a=1"]}
    raw = [("Set-Cookie", "a=1"), ("X", "x"), ("SET-COOKIE", "b=2"), ("set-cookie", "")]
    assert fold_headers(raw, join) == {"set-cookie": ["a=1", "b=2", ""], "x": "x"}


@pytest.mark.parametrize("join", [False, True])
def test_M03_cookie_joined_with_semicolon(join: bool) -> None:
    raw = [("Cookie", "a=1"), ("cookie", "b=2"), ("COOKIE", "c=3")]
    assert fold_headers(raw, join) == {"cookie": "a=1; b=2; c=3"}
    assert fold_headers([("Cookie", "a=1")], join) == {"cookie": "a=1"}


@pytest.mark.parametrize("join", [False, True])
def test_M03_others_joined_with_comma(join: bool) -> None:
    raw = [("Accept", "a"), ("X-Custom", "1"), ("accept", "b"), ("x-custom", "2")]
    assert fold_headers(raw, join) == {"accept": "a, b", "x-custom": "1, 2"}


def test_M03_empty_values_are_joined_too() -> None:
    assert fold_headers([("X", ""), ("x", "a")]) == {"x": ", a"}
    assert fold_headers([("X", "a"), ("x", "")]) == {"x": "a, "}
    assert fold_headers([("Cookie", ""), ("cookie", "b")]) == {"cookie": "; b"}


def test_M03_key_position_is_the_first_occurrence() -> None:
    raw = [("A", "1"), ("B", "2"), ("a", "3"), ("Host", "h"), ("b", "4"), ("host", "x")]
    assert list(fold_headers(raw).items()) == [("a", "1, 3"), ("b", "2, 4"), ("host", "h")]


def test_fold_does_not_touch_its_input() -> None:
    raw = [("Set-Cookie", "a"), ("Set-Cookie", "b")]
    before = list(raw)
    fold_headers(raw)
    distinct_headers(raw)
    assert raw == before


def test_fold_returns_fresh_lists() -> None:
    raw = [("Set-Cookie", "a")]
    first = fold_headers(raw)
    first["set-cookie"].append("mutated")  # type: ignore[union-attr]
    assert fold_headers(raw) == {"set-cookie": ["a"]}


def test_M05_distinct_headers() -> None:
    raw = [
        ("Host", "h1"),
        ("host", "h2"),
        ("Set-Cookie", "a"),
        ("Cookie", "c1"),
        ("COOKIE", "c2"),
        ("X", "1"),
        ("Y", ""),
    ]
    assert list(distinct_headers(raw).items()) == [
        ("host", ["h1", "h2"]),
        ("set-cookie", ["a"]),
        ("cookie", ["c1", "c2"]),
        ("x", ["1"]),
        ("y", [""]),
    ]


# --- differential: IncomingMessage's headers in node ------------------------------------------

_NODE_INCOMING = r"""
const http = require("http");
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map((raw) => {
  const flat = raw.flat();
  const plain = new http.IncomingMessage(null);
  plain._addHeaderLines(flat, flat.length);
  const joined = new http.IncomingMessage(null);
  joined.joinDuplicateHeaders = true;
  joined._addHeaderLines(flat, flat.length);
  return {
    headers: Object.entries(plain.headers),
    joined: Object.entries(joined.headers),
    distinct: Object.entries(plain.headersDistinct),
  };
})));
"""

INCOMING_CASES: list[list[tuple[str, str]]] = [
    [(name.upper(), "1") for name in FIRST_WINS] + [(name, "2") for name in FIRST_WINS],
    [("Set-Cookie", "a")],
    [("Set-Cookie", "a"), ("set-cookie", "b"), ("SET-COOKIE", "")],
    [("Cookie", "a=1"), ("cookie", "b=2"), ("Cookie", "c=3")],
    [("Accept", "a"), ("ACCEPT", "b"), ("X-Custom", "1"), ("x-custom", "2")],
    [("Host", ""), ("host", "b"), ("X", ""), ("x", "a"), ("Cookie", ""), ("cookie", "b")],
    [
        ("Transfer-Encoding", "gzip"),
        ("transfer-encoding", "chunked"),
        ("Connection", "keep-alive"),
        ("connection", "upgrade"),
        ("Vary", "a"),
        ("vary", "b"),
        ("Cache-Control", "no-cache"),
        ("cache-control", "no-store"),
        ("Date", "d1"),
        ("date", "d2"),
        ("Content-Disposition", "x"),
        ("content-disposition", "y"),
        ("Accept-Encoding", "gzip"),
        ("accept-encoding", "br"),
        ("WWW-Authenticate", "Basic"),
        ("www-authenticate", "Bearer"),
    ],
    [("A", "1"), ("B", "2"), ("a", "3"), ("Host", "h"), ("b", "4"), ("host", "x")],
    [("X-Latin1", "caf\xe9"), ("x-latin1", "\xff")],
    [],
]


@pytest.fixture(scope="module")
def node_incoming() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = run_node(_NODE_INCOMING, INCOMING_CASES)
    return result


@pytest.mark.parametrize("index", range(len(INCOMING_CASES)))
def test_M02_M05_folding_matches_node(index: int, node_incoming: list[dict[str, Any]]) -> None:
    raw = INCOMING_CASES[index]
    expected = node_incoming[index]
    assert [list(item) for item in fold_headers(raw).items()] == expected["headers"]
    joined = fold_headers(raw, join_duplicates=True)
    assert [list(item) for item in joined.items()] == expected["joined"]
    assert [list(item) for item in distinct_headers(raw).items()] == expected["distinct"]
