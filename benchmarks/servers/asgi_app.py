"""The hypercorn side: a bare ASGI app (no framework) answering like the other servers.

Run with ``python -m hypercorn --worker-class trio --workers 0 --bind 127.0.0.1:PORT
asgi_app:app`` from this folder (``--workers 0`` serves in hypercorn's own process).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

HELLO = b"hello world"
BIG = b"x" * (1024 * 1024)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = BIG if scope["path"] == "/big" else HELLO
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
