"""OutgoingMessage: the header API, framing and body writing shared by ServerResponse
and ClientRequest.

The head is rendered once, by the first of ``write_head``/``flush_headers``/``write``/
``end``, following Node's ``_storeHeader``: user headers in insertion order, then the
automatic ``Date``, ``Connection``, ``Keep-Alive`` and, last, ``Content-Length`` or
``Transfer-Encoding``. Rendering and sending are apart: ``write_head`` renders into
``_pending_head`` synchronously (so ``headers_sent`` is true at once, as in Node), and the
next write sends the head together with the first body bytes in one ``send_all``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import trio

from ._errors import (
    BodyNotAllowedError,
    ContentLengthMismatchError,
    HeadersSentError,
    InvalidArgTypeError,
    StreamDestroyedError,
    TrailerInvalidError,
    WriteAfterEndError,
)
from ._events import EventEmitter
from ._headers import (
    HeaderValue,
    OutgoingHeaders,
    check_header_pairs,
)

if TYPE_CHECKING:
    from ._connection import HTTPConnection

#: A body chunk: bytes-like, or text encoded with the given encoding (UTF-8 by default).
Chunk = "bytes | bytearray | memoryview | str"

_CLOSE_TOKEN = re.compile(r"(?:^|\W)close(?:$|\W)", re.IGNORECASE)
_CHUNKED_TOKEN = re.compile(r"(?:^|\W)chunked(?:$|\W)", re.IGNORECASE)
# Above this, head and body go out in separate sends instead of one joined copy.
_JOIN_LIMIT = 65536

_date_second = -1
_date_line = ""


def http_date() -> str:
    """The current IMF-fixdate, computed at most once a second."""
    global _date_second, _date_line
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_line = formatdate(now, usegmt=True)
    return _date_line


def to_bytes(chunk: object, encoding: str = "utf-8") -> bytes:
    """A body chunk as bytes; ``str`` is encoded. Anything else raises Node's errors."""
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode(encoding)
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    if chunk is None:
        raise InvalidArgTypeError(
            "May not write null values to stream", code="ERR_STREAM_NULL_VALUES"
        )
    raise InvalidArgTypeError(
        'The "chunk" argument must be of type str or bytes-like. '
        f"Received an instance of {type(chunk).__name__}"
    )


def _text(value: str | int) -> str:
    return value if isinstance(value, str) else str(value)


class OutgoingMessage(EventEmitter):
    """A message being sent: header store, framing and a streamed body.

    ``await write()`` returns once the bytes are handed to the kernel (backpressure);
    ``await end()`` sends what is left and the end of the body. Node:
    ``http.OutgoingMessage``.
    """

    # Defaults live on the class; an instance stores only what it changes (a message
    # is made per request, so this is on the hot path).
    #: Add a ``Date`` header (responses). Node: ``sendDate``.
    send_date: bool = False
    #: Whether the connection may carry another message after this one.
    #: Node: ``shouldKeepAlive``.
    should_keep_alive: bool = True
    #: Chunked framing is possible when the length is unknown.
    #: Node: ``useChunkedEncodingByDefault``.
    use_chunked_encoding_by_default: bool = True
    #: Check the body against Content-Length. Node: ``strictContentLength``.
    strict_content_length: bool = False
    #: Chunked framing in use (decided when the head is rendered).
    #: Node: ``chunkedEncoding``.
    chunked_encoding: bool = False
    #: ``end()`` was called. Node: ``writableEnded``.
    writable_ended: bool = False
    #: The last bytes were handed to the kernel. Node: ``writableFinished``.
    writable_finished: bool = False
    #: Node: ``destroyed``.
    destroyed: bool = False
    _connection: HTTPConnection | None = None
    _pending_head: bytes | None = None
    _head_rendered: bool = False
    _has_body: bool = True
    _last: bool = False
    _removed_connection: bool = False
    _removed_content_length: bool = False
    _removed_transfer_encoding: bool = False
    _content_length: int | None = None
    _declared_length: int | None = None
    _bytes_written: int = 0
    _keep_alive_header: str | None = None
    _max_requests_reached: bool = False
    _uses_agent: bool = False
    _reject_body_writes: bool = False
    _unique_headers: frozenset[str] = frozenset()
    _trailers: list[tuple[str, HeaderValue]] = []  # shared default: replaced, never mutated
    _destroy_hook: Callable[[], None] | None = None
    # Header lines to send exactly in this order (a client's array-form headers).
    _ordered_headers: list[tuple[str, HeaderValue]] | None = None

    def __init__(self) -> None:
        super().__init__()
        self._store = OutgoingHeaders()

    # --- header API -------------------------------------------------------------------

    def _check_not_sent(self, action: str) -> None:
        if self._head_rendered:
            raise HeadersSentError(f"Cannot {action} headers after they are sent to the client")

    def set_header(self, name: str, value: HeaderValue) -> OutgoingMessage:
        """Set one header (replacing any value of that name); returns ``self``.

        Node: ``setHeader(name, value)``.
        """
        self._check_not_sent("set")
        self._store.set(name, value)
        return self

    def append_header(self, name: str, value: HeaderValue) -> OutgoingMessage:
        """Add a value to a header, making it a list. Node: ``appendHeader()``."""
        self._check_not_sent("append")
        self._store.append(name, value)
        return self

    def set_headers(
        self, headers: Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]]
    ) -> OutgoingMessage:
        """Set several headers; ``set-cookie`` entries are gathered into one list.

        Node: ``setHeaders(headers)`` (a ``Map`` or ``Headers``).
        """
        self._check_not_sent("set")
        if isinstance(headers, Mapping):
            pairs: Iterable[Any] = headers.items()
        elif isinstance(headers, Iterable) and not isinstance(headers, (str, bytes)):
            pairs = headers
        else:
            raise InvalidArgTypeError(
                'The "headers" argument must be a mapping or an iterable of pairs. '
                f"Received {type(headers).__name__}"
            )
        checked = check_header_pairs([tuple(pair) for pair in pairs] or [])
        cookies: list[str | int] = []
        for name, value in checked:
            if name.lower() == "set-cookie":
                cookies.extend([value] if isinstance(value, (str, int)) else value)
            else:
                self._store.set(name, value)
        if cookies:
            self._store.set("set-cookie", cookies)
        return self

    def get_header(self, name: str) -> HeaderValue | None:
        """The value as set, or ``None``. Node: ``getHeader(name)``."""
        if not isinstance(name, str):
            raise InvalidArgTypeError('The "name" argument must be of type string')
        return self._store.get(name)

    def get_headers(self) -> dict[str, HeaderValue]:
        """A copy of all headers with lowercase names. Node: ``getHeaders()``."""
        return self._store.to_dict()

    def get_header_names(self) -> list[str]:
        """Lowercase names in insertion order. Node: ``getHeaderNames()``."""
        return self._store.names()

    def get_raw_header_names(self) -> list[str]:
        """Names with their casing as last set. Node: ``getRawHeaderNames()``."""
        return self._store.raw_names()

    def has_header(self, name: str) -> bool:
        """Case-insensitive presence test. Node: ``hasHeader(name)``."""
        if not isinstance(name, str):
            raise InvalidArgTypeError('The "name" argument must be of type string')
        return self._store.has(name)

    def remove_header(self, name: str) -> None:
        """Remove a header. Removing ``Date``, ``Connection``, ``Content-Length`` or
        ``Transfer-Encoding`` also stops the automatic one. Node: ``removeHeader(name)``."""
        if not isinstance(name, str):
            raise InvalidArgTypeError('The "name" argument must be of type string')
        self._check_not_sent("remove")
        key = name.lower()
        if key == "connection":
            self._removed_connection = True
        elif key == "content-length":
            self._removed_content_length = True
        elif key == "transfer-encoding":
            self._removed_transfer_encoding = True
        elif key == "date":
            self.send_date = False
        self._store.remove(name)

    @property
    def headers_sent(self) -> bool:
        """True once the head is rendered (even if not yet flushed). Node: ``headersSent``."""
        return self._head_rendered

    def add_trailers(self, headers: Mapping[str, HeaderValue] | Sequence[Any]) -> None:
        """Trailers sent after a chunked body (dropped otherwise); replaces earlier ones.

        ``headers`` is a mapping or a list of pairs. Declare them with a ``Trailer``
        header. Node: ``addTrailers(headers)``.
        """
        if self.writable_ended:
            raise HeadersSentError("Cannot set trailing headers after they are sent to the client")
        if isinstance(headers, Mapping):
            pairs: object = list(headers.items())
        else:
            pairs = headers
        self._trailers = (
            check_header_pairs(pairs, "Trailer name", "trailer content") if pairs else []
        )

    # --- rendering --------------------------------------------------------------------

    def _first_line(self) -> str:  # pragma: no cover - every subclass defines it
        raise TypeError("OutgoingMessage is abstract: use ServerResponse or ClientRequest")

    def _render_head(self) -> None:
        """Render the head into ``_pending_head``, deciding framing and persistence."""
        lines = [self._first_line()]
        saw_date = saw_connection = saw_length = saw_te = saw_trailer = saw_keep_alive = False
        unique = self._unique_headers
        entries: Iterable[tuple[str, str, HeaderValue]]
        if self._ordered_headers is not None:
            entries = ((name.lower(), name, value) for name, value in self._ordered_headers)
        else:
            entries = self._store.items()
        for key, raw, value in entries:
            if key == "date":
                saw_date = True
            elif key == "connection":
                saw_connection = True
                if _CLOSE_TOKEN.search(_joined(value)):
                    self._last = True
                else:
                    self.should_keep_alive = True
            elif key == "content-length":
                saw_length = True
                try:
                    self._declared_length = int(_joined(value))
                except ValueError:
                    self._declared_length = None
            elif key == "transfer-encoding":
                saw_te = True
                if _CHUNKED_TOKEN.search(_joined(value)):
                    self.chunked_encoding = True
            elif key == "trailer":
                saw_trailer = True
            elif key == "keep-alive":
                saw_keep_alive = True
            if isinstance(value, (str, int)):
                lines.append(f"{raw}: {_text(value)}")
            elif (key == "cookie" and len(value) > 1) or key in unique:
                lines.append(f"{raw}: {'; '.join(_text(item) for item in value)}")
            else:
                lines.extend(f"{raw}: {_text(item)}" for item in value)

        if self.send_date and not saw_date:
            lines.append(f"Date: {http_date()}")

        if saw_te and self.chunked_encoding and not self._has_body:
            # A user "Transfer-Encoding: chunked" on a 204/304: no body is sent, so the
            # peer cannot find where this message ends; close the connection after it.
            self.chunked_encoding = False
            self.should_keep_alive = False
        if self._removed_connection:
            self._last = not self.should_keep_alive
        elif not saw_connection:
            keep_alive = self.should_keep_alive and (
                saw_length or self.use_chunked_encoding_by_default or self._uses_agent
            )
            if keep_alive and self._max_requests_reached:
                lines.append("Connection: close")
            elif keep_alive:
                lines.append("Connection: keep-alive")
                if self._keep_alive_header is not None and not saw_keep_alive:
                    lines.append(f"Keep-Alive: {self._keep_alive_header}")
            else:
                self._last = True
                lines.append("Connection: close")

        if not saw_length and not saw_te:
            if not self._has_body:
                self.chunked_encoding = False
            elif not self.use_chunked_encoding_by_default:
                self._last = True
            elif (
                not saw_trailer
                and not self._removed_content_length
                and self._content_length is not None
            ):
                lines.append(f"Content-Length: {self._content_length}")
            elif not self._removed_transfer_encoding:
                lines.append("Transfer-Encoding: chunked")
                self.chunked_encoding = True
            else:
                self._last = True

        if saw_trailer and not self.chunked_encoding:
            raise TrailerInvalidError("Trailers are invalid with this transfer encoding")
        lines.append("\r\n")
        self._pending_head = "\r\n".join(lines).encode("latin-1")
        self._head_rendered = True

    def _render_implicit_head(self) -> None:
        self._render_head()

    def _take_head(self) -> list[bytes]:
        """The rendered head still to be sent (rendering it first if needed), as the
        first of a list of parts to send."""
        if not self._head_rendered:
            self._render_implicit_head()
        head = self._pending_head
        if head is None:
            return []
        self._pending_head = None
        return [head]

    # --- writing ----------------------------------------------------------------------

    async def _send(self, parts: list[bytes]) -> None:
        connection = self._connection
        if connection is None or self.destroyed:
            raise StreamDestroyedError("Cannot call write after a stream was destroyed")
        total = sum(map(len, parts))
        if total == 0:
            return
        try:
            if len(parts) == 1:
                await connection.send_all(parts[0])
            elif total <= _JOIN_LIMIT:
                await connection.send_all(b"".join(parts))
            else:
                for part in parts:
                    if part:
                        await connection.send_all(part)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._send_failed(exc)
            raise

    def _send_failed(self, exc: Exception) -> None:
        """The stream failed under a send; may raise the error the caller should see
        instead (the server's responses raise ``ERR_STREAM_DESTROYED``)."""

    def _check_length(self, adding: int, ending: bool) -> None:
        if not (
            self.strict_content_length
            and self._declared_length is not None
            and self._has_body
            and not self.chunked_encoding
        ):
            return
        total = self._bytes_written + adding
        if total > self._declared_length or (ending and total != self._declared_length):
            raise ContentLengthMismatchError(
                f"Response body's content-length of {total} byte(s) does not match the "
                f"content-length of {self._declared_length} byte(s) set in header"
            )

    def _frame(self, data: bytes, parts: list[bytes]) -> None:
        if self.chunked_encoding:
            parts.append(b"%x\r\n" % len(data))
            parts.append(data)
            parts.append(b"\r\n")
        else:
            parts.append(data)
        self._bytes_written += len(data)

    def _check_writable(self) -> None:
        if self.writable_ended:
            raise WriteAfterEndError("write after end")
        if self.destroyed:
            raise StreamDestroyedError("Cannot call write after a stream was destroyed")

    def _body_allowed(self, data: bytes) -> bool:
        if self._has_body:
            return True
        if data and self._reject_body_writes:
            raise BodyNotAllowedError(
                "Adding content for this request method or response status is not allowed."
            )
        return False

    async def write(
        self, chunk: bytes | bytearray | memoryview | str, encoding: str = "utf-8"
    ) -> None:
        """Send a piece of the body (the head first, if not sent yet).

        Returns once the bytes are with the kernel. An empty chunk sends no body bytes (it
        never ends a chunked body); a head still pending goes out.
        Node: ``write(chunk[, encoding])``.
        """
        self._check_writable()
        data = to_bytes(chunk, encoding)
        if not self._head_rendered:
            self._render_implicit_head()
        send_data = bool(data) and self._body_allowed(data)
        if send_data:
            self._check_length(len(data), ending=False)
        parts = self._take_head()
        if send_data:
            self._frame(data, parts)
        if parts:
            await self._send(parts)

    async def end(
        self, chunk: bytes | bytearray | memoryview | str | None = None, encoding: str = "utf-8"
    ) -> None:
        """Send the last piece of the body (if any) and finish the message.

        If the head has not been rendered yet, a body given here is framed with
        ``Content-Length``. Calling ``end()`` again does nothing; ``end(data)`` again
        raises :class:`WriteAfterEndError`. Node: ``end([data[, encoding]])``.
        """
        if self.writable_ended:
            if chunk:
                raise WriteAfterEndError("write after end")
            return
        if self.destroyed:
            raise StreamDestroyedError("Cannot call end after a stream was destroyed")
        data = b"" if chunk is None else to_bytes(chunk, encoding)
        if not self._head_rendered:
            self._content_length = len(data) if self._has_body else None
            self._render_implicit_head()
        send_data = bool(data) and self._body_allowed(data)
        self._check_length(len(data) if send_data else 0, ending=True)
        parts = self._take_head()
        if send_data:
            self._frame(data, parts)
        if self.chunked_encoding and self._has_body:
            parts.append(self._last_chunk())
        self.writable_ended = True
        await self._send(parts)
        self.writable_finished = True
        await self.emit("finish")
        await self._finished()

    async def _finished(self) -> None:
        """After ``"finish"``: what a kind of message does once it is all sent."""

    def _last_chunk(self) -> bytes:
        if not self._trailers:
            return b"0\r\n\r\n"
        lines = "".join(header_lines(name, value) for name, value in self._trailers)
        return b"0\r\n" + lines.encode("latin-1") + b"\r\n"

    async def flush_headers(self) -> None:
        """Send the head now. Node: ``flushHeaders()``."""
        parts = self._take_head()
        if parts:
            await self._send(parts)

    def destroy(self, error: BaseException | None = None) -> OutgoingMessage:
        """Abandon the message and close its connection. Node: ``destroy([error])``."""
        if not self.destroyed:
            self.destroyed = True
            self._on_destroy(error)
        return self

    def _on_destroy(self, error: BaseException | None) -> None:
        if self._connection is not None:
            self._connection.mark_broken()
        if self._destroy_hook is not None:
            self._destroy_hook()


def header_lines(name: str, value: HeaderValue) -> str:
    """One header as wire lines: a list value gives one line per item."""
    if isinstance(value, (str, int)):
        return f"{name}: {_text(value)}\r\n"
    return "".join(f"{name}: {_text(item)}\r\n" for item in value)


def _joined(value: HeaderValue) -> str:
    if isinstance(value, (str, int)):
        return _text(value)
    return ", ".join(_text(item) for item in value)


__all__ = ["OutgoingMessage", "http_date", "to_bytes"]
