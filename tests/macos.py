"""Run a pfswatchd command as it runs on macOS, on Linux: a test double of the platform's interface.

    python tests/macos.py [--fsevents] .venv/bin/pfswatchd run --config FILE

What differs on macOS, and how it is reproduced here before pfswatchd is imported:

- watchdog's inotify modules cannot be imported: off Linux, ``watchdog/observers/inotify_c.py`` raises
  ``UnsupportedLibcError`` (a plain Exception) when libc has no ``inotify_init``.  An import hook raises
  the same error for them.  watchdog's own platform choice then finds no native observer and picks
  polling, as it does where it has nothing better.
- ``os.copy_file_range`` does not exist (it is Linux only): it is deleted from ``os``.
- With ``--fsevents``, watchdog's native observer is FSEvents, which reports paths under the real
  location of a watched folder (``/private/tmp/...`` for a folder configured as ``/tmp/...``;
  gorakhargosh/watchdog#821 and #822, "the events will contain the real file paths").  Here it is a
  polling observer whose events carry ``os.path.realpath`` of the paths it saw, standing in for
  ``watchdog.observers.Observer``.
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import os
import sys

from watchdog.utils import UnsupportedLibcError

INOTIFY = frozenset({"watchdog.observers.inotify", "watchdog.observers.inotify_c", "watchdog.observers.inotify_buffer"})


class NoInotify(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # noqa: ARG002 - the finder protocol
        if name in INOTIFY:
            raise UnsupportedLibcError("Unsupported libc version found: libc.so.6 (as off Linux: no inotify_init)")
        return None


def fsevents_like_observer() -> type:
    from watchdog.observers.api import BaseObserver
    from watchdog.observers.polling import PollingEmitter

    class RealPathEmitter(PollingEmitter):
        def queue_event(self, event):
            changes = {"src_path": os.path.realpath(event.src_path)}
            if event.dest_path:
                changes["dest_path"] = os.path.realpath(event.dest_path)
            super().queue_event(dataclasses.replace(event, **changes))

    class FSEventsLikeObserver(BaseObserver):
        def __init__(self, timeout: float = 1.0) -> None:
            super().__init__(RealPathEmitter, timeout=timeout)

    return FSEventsLikeObserver


def main() -> None:
    args = sys.argv[1:]
    fsevents = args[:1] == ["--fsevents"]
    if fsevents:
        args = args[1:]
    for name in INOTIFY:
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, NoInotify())
    del os.copy_file_range
    import watchdog.observers

    if fsevents:
        watchdog.observers.Observer = fsevents_like_observer()
    from pfswatchd.cli import main as pfswatchd

    sys.argv = args
    sys.exit(pfswatchd(args[1:]))


if __name__ == "__main__":
    main()
