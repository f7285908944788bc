"""inotifymoves: watchdog's pairing of inotify move events without a scan of its queue per rename.

watchdog (7.x, ``observers/inotify_move_event_grouper.py``) pairs an IN_MOVED_TO with its IN_MOVED_FROM
by walking its whole queue of events not yet handed on, twice, for every IN_MOVED_TO: once to find
the source path, once to remove the source event.  A file renamed in from outside the watched
folders (the common case: downloads are renamed into place) has no IN_MOVED_FROM to find, and a
burst of 2,000 renames queues up to 2,000 events: the scans cost more than a tenth of a CPU second,
in a thread that takes the interpreter's lock from the service's.

:func:`install` lets each grouper keep the cookies of the IN_MOVED_FROM events it holds, and skips the
scans when an IN_MOVED_TO's cookie is not among them.  A rename inside the watched folders still
pairs as before (its cookie is held, so watchdog's own code runs).  It is installed once, and only
where watchdog's grouper has exactly the methods this relies on; elsewhere watchdog is left as it is.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

_METHODS = ("__init__", "put_event", "read_event", "_group_moved_to_event", "get_queued_moved_from_event",
            "discard_pending_events")
_installed = False
_install_lock = threading.Lock()


def install() -> bool:
    """Install the cookie index in watchdog's inotify move grouper (once); True if it is in place."""
    global _installed
    with _install_lock:
        if _installed:
            return True
        try:
            from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper, PathedInotifyEvent
        except Exception:  # another watchdog (or no inotify here): nothing to change
            return False
        if not all(callable(getattr(InotifyMoveEventGrouper, name, None)) for name in _METHODS):
            return False
        _patch(InotifyMoveEventGrouper, PathedInotifyEvent)
        _installed = True
        return True


def _patch(grouper: Any, pathed: type) -> None:
    original: dict[str, Callable[..., Any]] = {name: getattr(grouper, name) for name in _METHODS}

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original["__init__"](self, *args, **kwargs)
        self._held_cookies = Counter()  # cookies of the IN_MOVED_FROM events in the queue
        self._held_lock = threading.Lock()

    def _release(self: Any, cookie: int) -> None:
        with self._held_lock:
            self._held_cookies[cookie] -= 1
            if self._held_cookies[cookie] <= 0:
                del self._held_cookies[cookie]

    def _held(self: Any, cookie: int) -> bool:
        with self._held_lock:
            return cookie in self._held_cookies

    def put_event(self: Any, event: Any) -> None:
        if event.ev.is_moved_from:
            with self._held_lock:  # counted before it is queued: a pairing never misses it
                self._held_cookies[event.ev.cookie] += 1
        original["put_event"](self, event)

    def _group_moved_to_event(self: Any, to_event: Any) -> Any:
        if not _held(self, to_event.ev.cookie):
            return to_event  # moved in from outside: no IN_MOVED_FROM to pair it with
        grouped = original["_group_moved_to_event"](self, to_event)
        if isinstance(grouped, tuple):
            _release(self, to_event.ev.cookie)  # its IN_MOVED_FROM left the queue with it
        return grouped

    def get_queued_moved_from_event(self: Any, cookie: int) -> Any:
        if not _held(self, cookie):
            return None
        return original["get_queued_moved_from_event"](self, cookie)

    def read_event(self: Any) -> Any:
        event = original["read_event"](self)
        if isinstance(event, pathed) and event.ev.is_moved_from:
            _release(self, event.ev.cookie)  # handed on unpaired (moved out of the watched folders)
        return event

    def discard_pending_events(self: Any) -> None:
        with self._held_lock:
            self._held_cookies.clear()
        original["discard_pending_events"](self)

    for name, function in (("__init__", __init__), ("put_event", put_event), ("read_event", read_event),
                           ("_group_moved_to_event", _group_moved_to_event),
                           ("get_queued_moved_from_event", get_queued_moved_from_event),
                           ("discard_pending_events", discard_pending_events)):
        setattr(grouper, name, function)
