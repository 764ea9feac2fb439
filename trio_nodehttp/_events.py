"""EventEmitter: Node's listener registry, with async listeners awaited in order."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("trio_nodehttp")

#: A listener: a plain function, or an async function whose result is awaited.
Listener = Callable[..., "Awaitable[Any] | Any"]


class EventEmitter:
    """Named events with listeners. Node: ``EventEmitter`` from ``node:events``.

    :meth:`emit` is async: it calls the listeners in the order they were added, in the
    emitting task, and awaits those that return an awaitable, so a listener is supervised
    by whoever emitted (for a server, the connection's task). An exception raised by a
    listener propagates out of :meth:`emit`, like a throw from Node's ``emit``.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[tuple[Listener, bool]]] = {}

    def on(self, event: str, listener: Listener) -> EventEmitter:
        """Add ``listener`` for ``event``; returns ``self``. Node: ``emitter.on()``."""
        self._listeners.setdefault(event, []).append((listener, False))
        self._listener_added(event)
        return self

    add_listener = on

    def once(self, event: str, listener: Listener) -> EventEmitter:
        """Add ``listener`` to be called at most once. Node: ``emitter.once()``."""
        self._listeners.setdefault(event, []).append((listener, True))
        self._listener_added(event)
        return self

    def _listener_added(self, event: str) -> None:
        """Called after a listener for ``event`` is added: for emitters whose events
        cost something to watch for (a ``"close"`` that needs the connection watched)."""

    def off(self, event: str, listener: Listener) -> EventEmitter:
        """Remove the most recently added registration of ``listener``.

        Node: ``emitter.off()`` / ``removeListener()``.
        """
        entries = self._listeners.get(event)
        if entries:
            for index in range(len(entries) - 1, -1, -1):
                if entries[index][0] == listener:
                    del entries[index]
                    break
            if not entries:
                del self._listeners[event]
        return self

    remove_listener = off

    def remove_all_listeners(self, event: str | None = None) -> EventEmitter:
        """Remove every listener of ``event``, or of every event.

        Node: ``emitter.removeAllListeners()``.
        """
        if event is None:
            self._listeners.clear()
        else:
            self._listeners.pop(event, None)
        return self

    def listeners(self, event: str) -> list[Listener]:
        """A copy of the listeners of ``event``. Node: ``emitter.listeners()``."""
        return [listener for listener, _ in self._listeners.get(event, ())]

    def listener_count(self, event: str) -> int:
        """How many listeners ``event`` has. Node: ``emitter.listenerCount()``."""
        return len(self._listeners.get(event, ()))

    def event_names(self) -> list[str]:
        """Events that have listeners. Node: ``emitter.eventNames()``."""
        return list(self._listeners)

    async def emit(self, event: str, *args: Any) -> bool:
        """Call the listeners of ``event`` in order; return whether there were any.

        Node: ``emitter.emit()``.
        """
        entries = self._listeners.get(event)
        if not entries:
            return False
        # Listeners added or removed while emitting take effect from the next emit.
        for entry in list(entries):
            listener, once = entry
            if once:
                # Like Node's once-wrapper: unregister just before the call, so a
                # listener that never ran (an earlier one raised) stays registered.
                self._discard(event, entry)
            result = listener(*args)
            if inspect.isawaitable(result):
                await result
        return True

    def _discard(self, event: str, entry: tuple[Listener, bool]) -> None:
        entries = self._listeners.get(event)
        if entries is None:
            return
        for index, candidate in enumerate(entries):
            if candidate is entry:
                del entries[index]
                if not entries:
                    del self._listeners[event]
                return


async def emit_in_background(
    emit: Callable[[], Awaitable[bool]], deliver: Callable[[Exception], bool], what: str
) -> bool | None:
    """Run ``emit`` (which calls listeners) from a background task: the one policy for
    user code that no request's own await is running, such as a ``"timeout"`` listener
    called by an inactivity watcher.

    A listener's exception must not end the task it runs in (an agent's nursery, or a
    system task for the global agent, would take the whole run with it). It goes to
    ``deliver``, which ends the request or connection the listener belongs to and returns
    whether the exception will surface from an await of that request (``end()``,
    ``read()``); if not, it is logged on the ``trio_nodehttp`` logger. Cancellation (any
    ``BaseException`` that is not an ``Exception``) propagates.

    Returns what ``emit`` returned, or ``None`` if a listener raised.
    """
    try:
        return await emit()
    except Exception as exc:
        if not deliver(exc):
            logger.error("Error in a %s listener", what, exc_info=exc)
        return None
