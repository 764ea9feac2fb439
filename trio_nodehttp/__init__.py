"""trio_nodehttp: Node.js's ``http`` module on trio and h11, with structured concurrency."""

from ._agent import Agent, AgentStatistics, ConnectOptions, PoolStatistics
from ._client import ClientRequest, get, request
from ._errors import (
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
)
from ._events import EventEmitter
from ._headers import max_header_size, validate_header_name, validate_header_value
from ._incoming import IncomingMessage
from ._outgoing import OutgoingMessage
from ._server import Server, ServerResponse, ServerStatistics, create_server
from ._status import METHODS, STATUS_CODES

__version__ = "0.1.0"

#: The agent used by requests that name none: keep-alive, LIFO reuse, 5 s idle
#: timeout, as Node's since v19. Replaceable by assignment. Node: ``http.globalAgent``.
global_agent: Agent = Agent(keep_alive=True, scheduling="lifo", timeout=5.0)

__all__ = [
    "METHODS",
    "STATUS_CODES",
    "Agent",
    "AgentStatistics",
    "BodyNotAllowedError",
    "ClientRequest",
    "ConnectOptions",
    "ConnectionResetError",
    "ContentLengthMismatchError",
    "EventEmitter",
    "HTTPError",
    "HeadersSentError",
    "IncomingMessage",
    "InvalidArgTypeError",
    "InvalidArgValueError",
    "InvalidCharError",
    "InvalidHTTPTokenError",
    "InvalidHeaderValueError",
    "InvalidProtocolError",
    "InvalidStatusCodeError",
    "InvalidURLError",
    "OutOfRangeError",
    "OutgoingMessage",
    "ParseError",
    "PoolStatistics",
    "RequestTimeoutError",
    "Server",
    "ServerResponse",
    "ServerStatistics",
    "StreamDestroyedError",
    "TrailerInvalidError",
    "UnescapedCharactersError",
    "WriteAfterEndError",
    "create_server",
    "get",
    "global_agent",
    "max_header_size",
    "request",
    "validate_header_name",
    "validate_header_value",
]
