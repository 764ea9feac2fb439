"""Exception classes that carry Node's error codes.

Every error this package raises is an :class:`HTTPError` with a ``code`` attribute holding
the string Node uses (``"ERR_HTTP_HEADERS_SENT"``, ``"ECONNRESET"``, ``"HPE_HEADER_OVERFLOW"``
…). Errors about bad arguments also derive from :class:`TypeError` or :class:`ValueError`,
as Node's do from ``TypeError`` and ``RangeError``, so either style of ``except`` works.
"""

from __future__ import annotations

import builtins
import errno
from typing import Any, ClassVar


class HTTPError(Exception):
    """Base class of every error raised by this package.

    Node: the ``err.code`` property of errors thrown or emitted by ``node:http``.
    """

    default_code: ClassVar[str] = "ERR_HTTP"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code: str = code if code is not None else self.default_code

    def __str__(self) -> str:
        return f"{self.args[0]} [{self.code}]" if self.args else self.code


# --- bad arguments -------------------------------------------------------------------


class InvalidArgTypeError(HTTPError, TypeError):
    """An argument has the wrong type. Node: ``ERR_INVALID_ARG_TYPE``."""

    default_code = "ERR_INVALID_ARG_TYPE"


class InvalidArgValueError(HTTPError, ValueError):
    """An argument has a value that is not allowed. Node: ``ERR_INVALID_ARG_VALUE``."""

    default_code = "ERR_INVALID_ARG_VALUE"


class OutOfRangeError(HTTPError, ValueError):
    """A number is outside its allowed range. Node: ``ERR_OUT_OF_RANGE`` (a ``RangeError``)."""

    default_code = "ERR_OUT_OF_RANGE"


class InvalidHTTPTokenError(HTTPError, TypeError):
    """A header name or method is not an RFC 7230 token. Node: ``ERR_INVALID_HTTP_TOKEN``."""

    default_code = "ERR_INVALID_HTTP_TOKEN"


class InvalidCharError(HTTPError, TypeError):
    """A header value or status message holds a forbidden character.

    Node: ``ERR_INVALID_CHAR``.
    """

    default_code = "ERR_INVALID_CHAR"


class InvalidHeaderValueError(HTTPError, TypeError):
    """A header value is missing (``None``). Node: ``ERR_HTTP_INVALID_HEADER_VALUE``."""

    default_code = "ERR_HTTP_INVALID_HEADER_VALUE"


class InvalidStatusCodeError(HTTPError, ValueError):
    """A status code outside 100–999. Node: ``ERR_HTTP_INVALID_STATUS_CODE`` (a RangeError)."""

    default_code = "ERR_HTTP_INVALID_STATUS_CODE"


class UnescapedCharactersError(HTTPError, TypeError):
    """A request path holds characters that must be escaped.

    Node: ``ERR_UNESCAPED_CHARACTERS``.
    """

    default_code = "ERR_UNESCAPED_CHARACTERS"


class InvalidProtocolError(HTTPError, TypeError):
    """A URL scheme this module does not serve. Node: ``ERR_INVALID_PROTOCOL``."""

    default_code = "ERR_INVALID_PROTOCOL"


class InvalidURLError(HTTPError, TypeError):
    """A URL that cannot be parsed. Node: ``ERR_INVALID_URL``."""

    default_code = "ERR_INVALID_URL"


# --- misuse of a message -------------------------------------------------------------


class HeadersSentError(HTTPError):
    """Headers were changed after they were sent. Node: ``ERR_HTTP_HEADERS_SENT``."""

    default_code = "ERR_HTTP_HEADERS_SENT"


class BodyNotAllowedError(HTTPError):
    """A body was written to a response that cannot have one (HEAD, 204, 304).

    Node: ``ERR_HTTP_BODY_NOT_ALLOWED``.
    """

    default_code = "ERR_HTTP_BODY_NOT_ALLOWED"


class ContentLengthMismatchError(HTTPError):
    """The body does not match the Content-Length header (with ``strict_content_length``).

    Node: ``ERR_HTTP_CONTENT_LENGTH_MISMATCH``.
    """

    default_code = "ERR_HTTP_CONTENT_LENGTH_MISMATCH"


class TrailerInvalidError(HTTPError):
    """A ``Trailer`` header on a message that is not chunked. Node: ``ERR_HTTP_TRAILER_INVALID``."""

    default_code = "ERR_HTTP_TRAILER_INVALID"


class WriteAfterEndError(HTTPError):
    """``write()`` or ``end(data)`` after ``end()``. Node: ``ERR_STREAM_WRITE_AFTER_END``."""

    default_code = "ERR_STREAM_WRITE_AFTER_END"


class StreamDestroyedError(HTTPError):
    """A write on a message whose connection is gone. Node: ``ERR_STREAM_DESTROYED``."""

    default_code = "ERR_STREAM_DESTROYED"


# --- the wire ------------------------------------------------------------------------


class ParseError(HTTPError):
    """The peer sent bytes that are not valid HTTP/1.1.

    ``code`` is llhttp's name for the fault (``"HPE_HEADER_OVERFLOW"``,
    ``"HPE_INVALID_METHOD"``, ``"HPE_UNEXPECTED_CONTENT_LENGTH"`` …) and ``raw_packet``
    the bytes that were being parsed. Node: ``Error: Parse Error: <reason>`` with
    ``err.code = 'HPE_*'``.
    """

    default_code = "HPE_INVALID_CONSTANT"

    def __init__(self, reason: str, *, code: str | None = None, raw_packet: bytes = b"") -> None:
        super().__init__(f"Parse Error: {reason}", code=code)
        self.reason = reason
        self.raw_packet = raw_packet

    def __reduce__(self) -> tuple[Any, ...]:
        # The default would call ParseError(args[0]) and prefix "Parse Error: " twice.
        return (type(self), (self.reason,), self.__dict__)


class RequestTimeoutError(HTTPError):
    """The request's head or body did not arrive in time (``headers_timeout``,
    ``request_timeout``). Node: ``ERR_HTTP_REQUEST_TIMEOUT``."""

    default_code = "ERR_HTTP_REQUEST_TIMEOUT"


class ConnectionResetError(HTTPError, builtins.ConnectionResetError):
    """The peer closed the connection in the middle of a message.

    ``str(err)`` reads ``socket hang up`` (closed before a response) or ``aborted``
    (closed mid-body), as in Node. It is also a builtin :class:`ConnectionResetError`
    (so an :class:`OSError`) with ``errno`` set to ``ECONNRESET``. Node: ``ECONNRESET``.
    """

    default_code = "ECONNRESET"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.errno = errno.ECONNRESET
        self.strerror = message


def check_number(name: str, value: object, minimum: float = 0, *, integer: bool = False) -> float:
    """``value`` if it is a number (an integer, with ``integer``) of at least ``minimum``;
    else Node's ``ERR_INVALID_ARG_TYPE`` or ``ERR_OUT_OF_RANGE``. Booleans and NaN are
    refused."""
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "integer" if integer else "number"
        raise InvalidArgTypeError(f'The "{name}" argument must be of type {kind}')
    assert isinstance(value, (int, float))
    if value != value or value < minimum:
        raise OutOfRangeError(
            f'The value of "{name}" is out of range. It must be >= {minimum:g}. Received {value!r}'
        )
    return value


__all__ = [
    "BodyNotAllowedError",
    "ConnectionResetError",
    "ContentLengthMismatchError",
    "HTTPError",
    "HeadersSentError",
    "InvalidArgTypeError",
    "InvalidArgValueError",
    "InvalidCharError",
    "InvalidHTTPTokenError",
    "InvalidHeaderValueError",
    "InvalidProtocolError",
    "InvalidStatusCodeError",
    "InvalidURLError",
    "OutOfRangeError",
    "ParseError",
    "RequestTimeoutError",
    "StreamDestroyedError",
    "TrailerInvalidError",
    "UnescapedCharactersError",
    "WriteAfterEndError",
]
