"""Headers: validation, the outgoing header store, and Node's folding of incoming headers.

Outgoing headers live in :class:`OutgoingHeaders`: case-insensitive, remembering the
caller's casing and first-insertion order, values kept as given (``str``, ``int`` or a list
of those) until they are rendered as latin-1 lines.

Incoming headers arrive as a list of ``(name, value)`` pairs exactly as received (the
``raw_headers``); :func:`fold_headers` and :func:`distinct_headers` build Node's
``headers`` and ``headersDistinct`` views from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeAlias

from ._errors import (
    InvalidArgTypeError,
    InvalidArgValueError,
    InvalidCharError,
    InvalidHeaderValueError,
    InvalidHTTPTokenError,
)

#: What a header value may be: a string, an integer, or a list of those (one line each).
HeaderValue: TypeAlias = "str | int | Sequence[str | int]"
#: Node's ``headers`` dict: ``set-cookie`` is always a list, every other name a string.
IncomingHeaders: TypeAlias = "dict[str, str | list[str]]"
RawHeaders: TypeAlias = "list[tuple[str, str]]"

#: Node's default limit on the size of a message head. Node: ``http.maxHeaderSize``.
max_header_size: int = 16384

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Strict mode (Node's default): HTAB, visible ASCII, space and obs-text 0x80-0xFF.
_INVALID_VALUE_CHAR = re.compile(r"[^\t\x20-\x7e\x80-\xff]")

# Names whose duplicates Node drops (the first value wins), unless join_duplicate_headers.
_FIRST_WINS = frozenset(
    {
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
    }
)


def is_token(text: str) -> bool:
    """Whether ``text`` is an RFC 7230 token (a valid method or header name)."""
    return _TOKEN.fullmatch(text) is not None


def validate_header_name(name: object, label: str = "Header name") -> None:
    """Raise :class:`InvalidHTTPTokenError` unless ``name`` is a valid header name.

    Node: ``http.validateHeaderName(name[, label])``.
    """
    if not isinstance(name, str) or not is_token(name):
        raise InvalidHTTPTokenError(f'{label} must be a valid HTTP token ["{_js_text(name)}"]')


def _js_text(value: object) -> str:
    """``value`` as Node's ``%s`` would print it (``None`` is ``undefined``)."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def validate_header_value(name: str, value: object, label: str = "header content") -> None:
    """Raise unless ``value`` may be sent as the value of header ``name``.

    ``None`` raises :class:`InvalidHeaderValueError`; a character outside HTAB, 0x20–0x7E
    and 0x80–0xFF raises :class:`InvalidCharError`; a type other than ``str``, ``int`` or
    a list of those raises :class:`InvalidArgTypeError`.
    Node: ``http.validateHeaderValue(name, value)``.
    """
    if value is None:
        raise InvalidHeaderValueError(f'Invalid value "undefined" for header "{name}"')
    for item in _value_items(name, value):
        if isinstance(item, str) and _INVALID_VALUE_CHAR.search(item):
            raise InvalidCharError(f'Invalid character in {label} ["{name}"]')


def _value_items(name: str, value: object) -> Sequence[str | int]:
    if isinstance(value, bool):
        raise InvalidArgTypeError(f'The value of header "{name}" must be a str or int')
    if isinstance(value, (str, int)):
        return (value,)
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise InvalidArgTypeError(
                    f'The values of header "{name}" must be str or int, got {type(item).__name__}'
                )
        return value
    raise InvalidArgTypeError(
        f'The value of header "{name}" must be a str, int or list, got {type(value).__name__}'
    )


class OutgoingHeaders:
    """The headers of a message being written, keyed case-insensitively.

    Re-setting a name keeps its first position and takes the new casing, as Node does.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, HeaderValue]] = {}

    def set(self, name: str, value: HeaderValue) -> None:
        validate_header_name(name)
        validate_header_value(name, value)
        if isinstance(value, tuple):
            value = list(value)
        self._entries[name.lower()] = (name, value)

    def append(self, name: str, value: HeaderValue) -> None:
        validate_header_name(name)
        validate_header_value(name, value)
        key = name.lower()
        existing = self._entries.get(key)
        if existing is None:
            self.set(name, value)
            return
        old = existing[1]
        merged: list[str | int] = [old] if isinstance(old, (str, int)) else list(old)
        if isinstance(value, (str, int)):
            merged.append(value)
        else:
            merged.extend(value)
        self._entries[key] = (existing[0], merged)

    def get(self, name: str) -> HeaderValue | None:
        entry = self._entries.get(name.lower())
        return None if entry is None else entry[1]

    def has(self, name: str) -> bool:
        return name.lower() in self._entries

    def remove(self, name: str) -> None:
        self._entries.pop(name.lower(), None)

    def names(self) -> list[str]:
        return list(self._entries)

    def raw_names(self) -> list[str]:
        return [raw for raw, _ in self._entries.values()]

    def to_dict(self) -> dict[str, HeaderValue]:
        return {key: value for key, (_, value) in self._entries.items()}

    def items(self) -> Iterator[tuple[str, str, HeaderValue]]:
        """``(lowercase name, name as set, value)`` in insertion order."""
        for key, (raw, value) in self._entries.items():
            yield key, raw, value

    def __len__(self) -> int:
        return len(self._entries)


def check_header_pairs(
    pairs: object, name_label: str = "Header name", value_label: str = "header content"
) -> list[tuple[str, HeaderValue]]:
    """Validate a flat ``[name, value, ...]`` list or a ``[(name, value), ...]`` list.

    As in Node, the list holds pairs when its first item is a list or tuple, and is flat
    otherwise; a value may itself be a list (one line each). Used for ``write_head``
    arrays, trailers and client array headers; raises :class:`InvalidArgValueError` for
    an odd-length flat list or an item of a pair list that is not a pair.
    """
    if not isinstance(pairs, (list, tuple)):
        raise InvalidArgTypeError("headers must be a dict or a list")
    candidates: Iterable[object]
    if pairs and isinstance(pairs[0], (list, tuple)):
        candidates = pairs
    else:
        if len(pairs) % 2:
            raise InvalidArgValueError(f"The argument 'headers' is invalid. Received {pairs!r}")
        flat = list(pairs)
        candidates = zip(flat[0::2], flat[1::2], strict=True)
    out: list[tuple[str, HeaderValue]] = []
    for pair in candidates:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InvalidArgValueError(f"The argument 'headers' is invalid. Received {pairs!r}")
        name, value = pair
        validate_header_name(name, name_label)
        validate_header_value(name, value, value_label)
        out.append((name, list(value) if isinstance(value, tuple) else value))
    return out


# --- incoming ------------------------------------------------------------------------


def fold_headers(raw: RawHeaders, join_duplicates: bool = False) -> IncomingHeaders:
    """Node's ``message.headers`` from the raw pairs.

    Duplicates of the names in Node's first-wins list are dropped (joined with ``", "``
    when ``join_duplicates``); ``set-cookie`` is always a list; ``cookie`` duplicates are
    joined with ``"; "``; every other duplicate is joined with ``", "``.
    """
    headers: IncomingHeaders = {}
    for raw_name, value in raw:
        name = raw_name.lower()
        if name == "set-cookie":
            existing = headers.get(name)
            if isinstance(existing, list):
                existing.append(value)
            else:
                headers[name] = [value]
            continue
        previous = headers.get(name)
        if previous is None:
            headers[name] = value
        elif name == "cookie":
            headers[name] = f"{previous}; {value}"
        elif name in _FIRST_WINS and not join_duplicates:
            continue
        else:
            headers[name] = f"{previous}, {value}"
    return headers


_CLOSE_TOKEN = re.compile(rb"(?:^|\W)close(?:$|\W)", re.IGNORECASE)
_KEEP_ALIVE_TOKEN = re.compile(rb"(?:^|\W)keep-alive(?:$|\W)", re.IGNORECASE)


def keeps_alive(connection: list[bytes], http_version: bytes | str) -> bool:
    """Whether a received message lets its connection carry another, from its
    ``Connection`` values (llhttp's rule): HTTP/1.1 unless ``close``; HTTP/1.0 only with
    ``keep-alive``."""
    modern = http_version in (b"1.1", "1.1")
    if not connection:
        return modern
    joined = b", ".join(connection)
    if modern:
        return not _CLOSE_TOKEN.search(joined)
    return bool(_KEEP_ALIVE_TOKEN.search(joined))


def has_token(values: list[bytes], token: bytes) -> bool:
    """Whether comma-separated header ``values`` hold ``token`` (case-insensitive)."""
    return any(part.strip().lower() == token for value in values for part in value.split(b","))


def distinct_headers(raw: RawHeaders) -> dict[str, list[str]]:
    """Node's ``message.headersDistinct``: every value of every name, as a list."""
    out: dict[str, list[str]] = {}
    for raw_name, value in raw:
        out.setdefault(raw_name.lower(), []).append(value)
    return out
