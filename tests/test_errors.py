"""The error classes: Node codes, Python base classes, ``str()``, pickling."""

from __future__ import annotations

import builtins
import copy
import errno
import inspect
import json
import pickle
import shutil
import subprocess

import pytest

import trio_nodehttp
from trio_nodehttp import (
    BodyNotAllowedError,
    ConnectionResetError,
    ContentLengthMismatchError,
    HeadersSentError,
    HTTPError,
    InvalidArgTypeError,
    InvalidArgValueError,
    InvalidCharError,
    InvalidHeaderValueError,
    InvalidHTTPTokenError,
    InvalidProtocolError,
    InvalidStatusCodeError,
    InvalidURLError,
    OutOfRangeError,
    ParseError,
    RequestTimeoutError,
    StreamDestroyedError,
    TrailerInvalidError,
    UnescapedCharactersError,
    WriteAfterEndError,
    _errors,
)

NODE = shutil.which("node")

# class -> (Node code, the Python built-in it also is: TypeError, ValueError or None)
EXPECTED: dict[type[HTTPError], tuple[str, type[Exception] | None]] = {
    InvalidArgTypeError: ("ERR_INVALID_ARG_TYPE", TypeError),
    InvalidArgValueError: ("ERR_INVALID_ARG_VALUE", ValueError),
    OutOfRangeError: ("ERR_OUT_OF_RANGE", ValueError),
    InvalidHTTPTokenError: ("ERR_INVALID_HTTP_TOKEN", TypeError),
    InvalidCharError: ("ERR_INVALID_CHAR", TypeError),
    InvalidHeaderValueError: ("ERR_HTTP_INVALID_HEADER_VALUE", TypeError),
    InvalidStatusCodeError: ("ERR_HTTP_INVALID_STATUS_CODE", ValueError),
    UnescapedCharactersError: ("ERR_UNESCAPED_CHARACTERS", TypeError),
    InvalidProtocolError: ("ERR_INVALID_PROTOCOL", TypeError),
    InvalidURLError: ("ERR_INVALID_URL", TypeError),
    HeadersSentError: ("ERR_HTTP_HEADERS_SENT", None),
    BodyNotAllowedError: ("ERR_HTTP_BODY_NOT_ALLOWED", None),
    ContentLengthMismatchError: ("ERR_HTTP_CONTENT_LENGTH_MISMATCH", None),
    TrailerInvalidError: ("ERR_HTTP_TRAILER_INVALID", None),
    WriteAfterEndError: ("ERR_STREAM_WRITE_AFTER_END", None),
    StreamDestroyedError: ("ERR_STREAM_DESTROYED", None),
    RequestTimeoutError: ("ERR_HTTP_REQUEST_TIMEOUT", None),
    ParseError: ("HPE_INVALID_CONSTANT", None),
    ConnectionResetError: ("ECONNRESET", None),
}

ALL_CLASSES = list(EXPECTED)
ERR_CLASSES = [cls for cls, (code, _) in EXPECTED.items() if code.startswith("ERR_")]


def make(cls: type[HTTPError], message: str = "boom", **kwargs: str) -> HTTPError:
    return cls(message, **kwargs)


def test_every_error_class_is_covered() -> None:
    defined = {
        obj
        for obj in vars(_errors).values()
        if inspect.isclass(obj) and issubclass(obj, HTTPError) and obj is not HTTPError
    }
    assert defined == set(EXPECTED)
    exported = set(_errors.__all__)
    assert exported == {cls.__name__ for cls in EXPECTED} | {"HTTPError"}
    for cls in EXPECTED:
        assert getattr(trio_nodehttp, cls.__name__) is cls


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_default_code(cls: type[HTTPError]) -> None:
    code, _ = EXPECTED[cls]
    assert cls.default_code == code
    err = make(cls)
    assert err.code == code
    assert isinstance(err, HTTPError)
    assert isinstance(err, Exception)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_builtin_base(cls: type[HTTPError]) -> None:
    _, base = EXPECTED[cls]
    err = make(cls)
    if base is TypeError:
        assert isinstance(err, TypeError)
        assert not isinstance(err, ValueError)
    elif base is ValueError:
        assert isinstance(err, ValueError)
        assert not isinstance(err, TypeError)
    else:
        assert not isinstance(err, (TypeError, ValueError))


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_caught_by_either_style(cls: type[HTTPError]) -> None:
    _, base = EXPECTED[cls]
    with pytest.raises(HTTPError):
        raise make(cls)
    if base is not None:
        with pytest.raises(base):
            raise make(cls)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_docstring_names_the_node_code(cls: type[HTTPError]) -> None:
    code, _ = EXPECTED[cls]
    doc = inspect.getdoc(cls)
    assert doc is not None
    assert "Node" in doc
    if cls is ParseError:
        assert "HPE_" in doc
    else:
        assert code in doc


@pytest.mark.parametrize("cls", [*ALL_CLASSES, HTTPError], ids=lambda cls: cls.__name__)
def test_code_can_be_overridden(cls: type[HTTPError]) -> None:
    err = make(cls, code="ERR_SOMETHING_ELSE")
    assert err.code == "ERR_SOMETHING_ELSE"
    assert str(err).endswith("[ERR_SOMETHING_ELSE]")


def test_http_error_base() -> None:
    err = HTTPError("something failed")
    assert err.code == HTTPError.default_code
    assert str(err) == f"something failed [{HTTPError.default_code}]"
    assert err.args == ("something failed",)
    assert not isinstance(err, (TypeError, ValueError, OSError))


@pytest.mark.parametrize(
    "cls", [cls for cls in ALL_CLASSES if cls is not ParseError], ids=lambda cls: cls.__name__
)
def test_str_is_message_then_code(cls: type[HTTPError]) -> None:
    code, _ = EXPECTED[cls]
    err = make(cls, "Cannot set headers after they are sent to the client")
    assert str(err) == f"Cannot set headers after they are sent to the client [{code}]"
    assert code in str(err)
    assert err.args[0] == "Cannot set headers after they are sent to the client"
    assert cls.__name__ in repr(err)


def test_str_without_args_is_the_code() -> None:
    err = HeadersSentError("x")
    err.args = ()
    assert str(err) == "ERR_HTTP_HEADERS_SENT"


# --- ParseError ----------------------------------------------------------------------------


def test_parse_error_fields() -> None:
    err = ParseError("Header overflow", code="HPE_HEADER_OVERFLOW", raw_packet=b"GET / HTTP/1.1")
    assert err.code == "HPE_HEADER_OVERFLOW"
    assert err.reason == "Header overflow"
    assert err.raw_packet == b"GET / HTTP/1.1"
    # Node: `Error: Parse Error: Header overflow` with err.code = 'HPE_HEADER_OVERFLOW'.
    assert err.args == ("Parse Error: Header overflow",)
    assert str(err) == "Parse Error: Header overflow [HPE_HEADER_OVERFLOW]"


def test_parse_error_defaults() -> None:
    err = ParseError("Invalid method encountered")
    assert err.code == "HPE_INVALID_CONSTANT"
    assert err.raw_packet == b""
    assert err.reason == "Invalid method encountered"
    assert str(err) == "Parse Error: Invalid method encountered [HPE_INVALID_CONSTANT]"


def test_parse_error_code_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        ParseError("reason", "HPE_X")  # type: ignore[call-arg]


# --- ConnectionResetError --------------------------------------------------------------


@pytest.mark.parametrize("message", ["socket hang up", "aborted"])
def test_connection_reset_is_an_oserror(message: str) -> None:
    err = ConnectionResetError(message)
    assert isinstance(err, HTTPError)
    assert isinstance(err, ConnectionError)
    assert isinstance(err, OSError)
    assert isinstance(err, builtins.ConnectionResetError)
    assert ConnectionResetError is not builtins.ConnectionResetError
    assert err.code == "ECONNRESET"
    assert err.errno == errno.ECONNRESET
    assert err.strerror == message
    assert err.args == (message,)
    assert str(err) == f"{message} [ECONNRESET]"


def test_connection_reset_caught_as_builtin_and_oserror() -> None:
    with pytest.raises(builtins.ConnectionResetError):
        raise ConnectionResetError("aborted")
    with pytest.raises(OSError) as info:
        raise ConnectionResetError("aborted")
    assert info.value.errno == errno.ECONNRESET


# --- copy and pickle keep everything ---------------------------------------------------------


def _roundtrips(err: HTTPError) -> list[HTTPError]:
    return [copy.copy(err), copy.deepcopy(err), pickle.loads(pickle.dumps(err))]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_copy_and_pickle(cls: type[HTTPError]) -> None:
    err = make(cls, "msg", code="ERR_CUSTOM")
    for clone in _roundtrips(err):
        assert type(clone) is cls
        assert clone.code == "ERR_CUSTOM"
        assert str(clone) == str(err)
        assert clone.args == err.args


def test_parse_error_copy_and_pickle() -> None:
    err = ParseError("Header overflow", code="HPE_HEADER_OVERFLOW", raw_packet=b"\x00abc")
    for clone in _roundtrips(err):
        assert isinstance(clone, ParseError)
        assert str(clone) == "Parse Error: Header overflow [HPE_HEADER_OVERFLOW]"
        assert clone.args == ("Parse Error: Header overflow",)
        assert clone.reason == "Header overflow"
        assert clone.raw_packet == b"\x00abc"
        assert clone.code == "HPE_HEADER_OVERFLOW"


def test_connection_reset_copy_and_pickle() -> None:
    for clone in _roundtrips(ConnectionResetError("aborted")):
        assert isinstance(clone, ConnectionResetError)
        assert clone.errno == errno.ECONNRESET
        assert clone.code == "ECONNRESET"
        assert str(clone) == "aborted [ECONNRESET]"


# --- differential: Node's error classes ------------------------------------------------------

# Node's ERR_INVALID_ARG_VALUE is a TypeError; we make it a ValueError on purpose (the
# argument has the right type and a bad value), as the _errors module docstring says.
_DELIBERATE = {"ERR_INVALID_ARG_VALUE": "TypeError"}

_NODE_KIND = """
const { codes } = require("internal/errors");
const out = {};
for (const code of JSON.parse(process.argv[1])) {
  const C = codes[code];
  out[code] = !C ? null
    : C.prototype instanceof TypeError ? "TypeError"
    : C.prototype instanceof RangeError ? "RangeError"
    : "Error";
}
console.log(JSON.stringify(out));
"""


def test_node_error_kinds_match() -> None:
    assert NODE is not None, "node must be installed (the tests use it as the oracle)"
    codes = [EXPECTED[cls][0] for cls in ERR_CLASSES]
    done = subprocess.run(
        [NODE, "--expose-internals", "-e", _NODE_KIND, json.dumps(codes)],
        capture_output=True,
        encoding="utf-8",
        check=True,
        timeout=60,
    )
    kinds: dict[str, str | None] = json.loads(done.stdout)
    ours_to_node: dict[type[Exception] | None, str] = {
        TypeError: "TypeError",
        ValueError: "RangeError",
        None: "Error",
    }
    for cls in ERR_CLASSES:
        code, base = EXPECTED[cls]
        assert kinds[code] is not None, f"{code} is not a Node error code"
        expected = _DELIBERATE.get(code, ours_to_node[base])
        assert kinds[code] == expected, code
