"""watch: file-system events and directory walks turn into hints on a queue.

The watchdog observer thread only enqueues ``(path, hint)`` pairs; all work
happens on the service's main thread.  Events are hints: the rescan (at start,
periodically, and after a watched folder reappears) is what guarantees that
nothing is missed when inotify overflows, while the service is down, or on
network filesystems, where ``mode = "polling"`` replaces inotify.

Never followed: symbolic links to folders, and temporary or hidden names
(``*.part``, ``*.tmp``, dot-files, editor swap files) until they are renamed.
Folders whose name starts with a dot (the staging areas) are not entered.
"""

from __future__ import annotations

import errno
import os
import queue
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from pfswatchd import faults
from pfswatchd.files.names import is_temporary
from pfswatchd.nametext import bad_name, bad_name_reason, escaped
from pfswatchd.service import inotifymoves
from pfswatchd.service.settle import Hint

WALK = "walk"  # pseudo-hint: walk this folder (a folder was created: its files may still be written)
WALK_MOVED = "walk-moved"  # walk this folder: it was renamed into place, so its files are complete

# The events asked of the kernel.  Not IN_MODIFY (one per write() of every download), IN_OPEN,
# IN_CLOSE_NOWRITE or IN_ATTRIB (pfswatchd's own header reads and hard links cause those): files
# still being written are re-examined by the settle rules from their size, mtime and ctime.
EVENTS = (FileCreatedEvent, FileMovedEvent, FileClosedEvent, DirCreatedEvent, DirMovedEvent)

HintQueue = queue.Queue[tuple[str, str]]


class _Handler(FileSystemEventHandler):
    def __init__(self, sink: Callable[[str, str], None], root: Path) -> None:
        self.sink = sink
        self.root = str(root).rstrip(os.sep) + os.sep
        # FSEvents (macOS) reports paths under the root's real location (/private/tmp for /tmp,
        # gorakhargosh/watchdog#821): they are put back under the root as configured, which is how the
        # rescan spells them and so how the ledger keys them.
        real = os.path.realpath(root).rstrip(os.sep) + os.sep
        self.real_root = real if real != self.root else None

    def _configured(self, path: str) -> str:
        if self.real_root is not None and path.startswith(self.real_root):
            return self.root + path[len(self.real_root):]
        return path

    def _hidden(self, path: str) -> bool:
        """True inside a dot-folder under the root (staging areas), or for a dot-file."""
        relative = path[len(self.root):] if path.startswith(self.root) else os.path.basename(path)
        return any(part.startswith(".") for part in relative.split(os.sep))

    def on_any_event(self, event: FileSystemEvent) -> None:
        faults.fail("watch.event")  # a test kills the observer thread here (it must be noticed and restarted)
        if isinstance(event, FileClosedEvent):
            self._file(event.src_path, Hint.CLOSED)
        elif isinstance(event, FileMovedEvent):
            if event.dest_path:  # empty when a file was moved out of the watched folders
                self._file(event.dest_path, Hint.MOVED)
        elif isinstance(event, FileCreatedEvent):
            self._file(event.src_path, Hint.CREATED)
        elif isinstance(event, DirMovedEvent):
            folder = self._configured(_text(event.dest_path))
            if event.dest_path and not self._hidden(folder):
                self.sink(folder, WALK_MOVED)
        elif isinstance(event, DirCreatedEvent):
            folder = self._configured(_text(event.src_path))
            if not self._hidden(folder):
                self.sink(folder, WALK)

    def _file(self, path: bytes | str, hint: Hint) -> None:
        text = self._configured(_text(path))
        if not is_temporary(os.path.basename(text)) and not self._hidden(text):
            self.sink(text, hint.value)


def _text(path: bytes | str) -> str:
    return os.fsdecode(path)


def _native_observer(poll_interval: float) -> tuple[BaseObserver, str | None]:
    """The platform's own observer, and a warning when there is none and polling replaces it.

    inotify on Linux, reporting a file renamed in from an unwatched folder as a move (it is complete),
    not as a creation (which would have to settle).  Elsewhere watchdog's choice: FSEvents or kqueue
    on macOS, polling where it has nothing better.  Off Linux, importing watchdog's inotify module
    raises UnsupportedLibcError (a plain Exception, not an ImportError), so any failure counts.
    """
    try:
        from watchdog.observers.inotify import InotifyObserver
    except Exception:
        observer = Observer()
        if isinstance(observer, PollingObserver):
            return PollingObserver(timeout=poll_interval), (
                f"no native file-system events on this platform: polling every {poll_interval} s instead")
        return observer, None
    inotifymoves.install()  # watchdog's move pairing without a scan of its queue per rename
    return InotifyObserver(generate_full_events=True), None


class Watcher:
    """Observers for the watched folders, feeding one queue."""

    def __init__(
        self,
        roots: tuple[Path, ...],
        sink: Callable[[str, str], None],
        *,
        recursive: bool = True,
        mode: str = "native",
        poll_interval: float = 2.0,
    ) -> None:
        self.roots = roots
        self.sink = sink
        self.recursive = recursive
        self.mode = mode
        self.poll_interval = poll_interval
        self._observer: BaseObserver | None = None
        self._watched: set[Path] = set()
        self.warning: str | None = None  # why native mode is polling, for the service's start-up log

    def start(self) -> list[Path]:
        """Start watching every root that exists; return the roots that are missing."""
        if self.mode == "polling":
            self._observer = PollingObserver(timeout=self.poll_interval)
        else:
            self._observer, self.warning = _native_observer(self.poll_interval)
        self._observer.daemon = True
        missing = self.refresh()
        self._observer.start()
        return missing

    def refresh(self) -> list[Path]:
        """(Re)schedule roots: a removed and recreated folder is watched again.  Returns missing roots."""
        assert self._observer is not None
        missing = []
        for root in self.roots:
            exists = root.is_dir()
            if exists and root not in self._watched:
                self._observer.schedule(_Handler(self.sink, root), str(root), recursive=self.recursive,
                                        event_filter=list(EVENTS))
                self._watched.add(root)
            elif not exists:
                missing.append(root)
                if root in self._watched:
                    self._unschedule(root)
        return missing

    def _unschedule(self, root: Path) -> None:
        assert self._observer is not None
        for watch in list(self._observer.emitters):
            if Path(watch.watch.path) == root:
                self._observer.unschedule(watch.watch)
        self._watched.discard(root)

    def wait_started(self, timeout: float) -> bool:
        """Wait until every observer has placed its watches (True), at most ``timeout`` seconds.

        watchdog places an inotify watch on every folder of a tree in the observer's own thread after
        start(); a file renamed into a folder before its watch exists makes no event (the rescan finds
        it, later).  So READY waits for this.  watchdog says it only through a private attribute
        (``_inotify``, set once the watches are placed; polling: ``_snapshot``, set once the first
        snapshot is taken): where neither exists, there is nothing to wait for.
        """
        assert self._observer is not None
        deadline = time.monotonic() + timeout
        while True:
            waiting = [e for e in list(self._observer.emitters) if _placing(e)]
            if not waiting:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def dead(self) -> str | None:
        """Why watching stopped, if a watchdog thread died (an exception in it: it would stay deaf), else None.

        An emitter that watchdog stopped itself (its root was removed) is not dead: refresh() handles it.
        """
        observer = self._observer
        if observer is None or observer.ident is None:
            return None  # not started yet
        if not observer.is_alive():
            return "the watchdog observer thread has died"
        for emitter in list(observer.emitters):
            if emitter.ident is not None and not emitter.is_alive() and not emitter.stopped_event.is_set():
                return f"the watchdog thread watching {emitter.watch.path} has died"
        return None

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            if self._observer.ident is not None:  # never started (start() failed): nothing to join
                self._observer.join(timeout=5)
            self._observer = None
            self._watched.clear()


def _placing(emitter: object) -> bool:
    """True while a watchdog emitter is still placing its watches (see Watcher.wait_started)."""
    if not getattr(emitter, "is_alive", lambda: False)():
        return False  # stopped (a folder removed meanwhile), or not started: nothing more will come
    if hasattr(emitter, "_inotify"):
        return getattr(emitter, "_inotify", None) is None
    snapshot = getattr(emitter, "_snapshot", None)
    return type(snapshot).__name__ == "EmptyDirectorySnapshot"


MAX_DEPTH = 64  # watch.max_depth's default: folders more than this far below a watched folder are not entered
PATH_MAX = 4096  # bytes, with the final NUL (Linux): a longer path cannot be opened, listed or watched
NAME_MAX = 255  # bytes in one name

Unreadable = Callable[[Path, str, str], None]  # (folder, error kind, reason)
BAD_NAME = "bad_name"  # the kind passed to Unreadable for a file or folder whose name is not UTF-8


def walk(root: Path, *, recursive: bool = True, unreadable: Unreadable | None = None,
         roots: tuple[Path, ...] = (), max_depth: int = MAX_DEPTH) -> Iterator[Path]:
    """Regular files (and links to files) under ``root``, not entering dot-folders or linked folders.

    Iterative (a tree 1,100 levels deep costs no stack).  A folder that cannot be listed (its mode, its
    owner), one deeper than ``max_depth`` below its watched root in ``roots``, one whose path is too long,
    and one that is (or has become) a link out of ``roots`` are passed to ``unreadable`` with a reason.
    """
    base = depth_below(str(root), roots) or 0
    if base > max_depth:
        if unreadable is not None:
            unreadable(*too_deep(str(root), roots, max_depth))
        return
    stack = [(str(root), base)]
    while stack:
        folder, depth = stack.pop()
        found, folders = list_folder(folder, unreadable, roots)
        for path, _ in found:
            yield Path(path)
        if not recursive:
            continue
        for sub in reversed(folders):
            if depth + 1 > max_depth:
                if unreadable is not None:
                    unreadable(*too_deep(sub, roots, max_depth))
            else:
                stack.append((sub, depth + 1))


def list_folder(folder: str, unreadable: Unreadable | None = None, roots: tuple[Path, ...] = ()
                ) -> tuple[list[tuple[str, bool]], list[str]]:
    """One folder's entries as the watcher sees them: ([(file or link to a file, is a link)], [sub-folders]).

    Temporary names are left out, and dot-folders (staging areas) and links to folders are not entered.
    The folder itself is opened without following a link (one swapped in for it since its parent was
    listed is refused) and, with ``roots``, must really be inside one of them.  A vanished folder has no
    entries; one that cannot be listed (its mode, its owner, its length) has none either, and is passed
    to ``unreadable``: never skipped without a word.
    """
    too_long = path_limit(folder)
    if too_long is not None:
        if unreadable is not None:
            unreadable(Path(folder), "path_limit", too_long)
        return [], []
    if bad_name(folder) is not None:  # not UTF-8: recorded, not entered (files/names.py says why)
        if unreadable is not None:
            unreadable(Path(bad_name(folder) or folder), BAD_NAME, bad_name_reason(folder, folder=True))
        return [], []
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    except OSError as exc:
        if unreadable is not None:
            if exc.errno == errno.ELOOP:  # a link now stands where a folder was
                unreadable(Path(folder), "link_ignored", "a link to a folder: not entered")
            else:
                unreadable(Path(folder), "permission_denied", f"cannot read the folder: {exc.strerror or exc}")
        return [], []
    try:
        if roots and not _inside(_opened_path(fd, folder), roots):
            if unreadable is not None:
                unreadable(Path(folder), "link_ignored", "reached through a link out of the watched folders")
            return [], []
        entries = list(os.scandir(fd))
    except OSError as exc:
        if unreadable is not None:
            unreadable(Path(folder), "permission_denied", f"cannot read the folder: {exc.strerror or exc}")
        return [], []
    finally:
        os.close(fd)
    found: list[tuple[str, bool]] = []
    folders: list[str] = []
    room = PATH_MAX - 1 - len(os.fsencode(folder)) - 1  # bytes left for a name in this folder
    too_long = 0
    for entry in entries:
        name = entry.name
        if len(os.fsencode(name)) > room:
            too_long += 1
            continue
        if not name.isascii() and escaped(name) != name:
            if unreadable is not None and not name.startswith(".") and not is_temporary(name):
                path = os.path.join(folder, name)
                unreadable(Path(path), BAD_NAME, bad_name_reason(path, folder=_is_folder(entry)))
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if not name.startswith("."):
                    folders.append(os.path.join(folder, name))
            elif not is_temporary(name):
                link = entry.is_symlink()
                if link or entry.is_file(follow_symlinks=False):
                    found.append((os.path.join(folder, name), link))
        except OSError:
            continue
    if too_long and unreadable is not None:
        unreadable(Path(folder), "path_limit", f"{too_long} names here would make paths longer than the "
                                               f"{PATH_MAX - 1} bytes the system allows: not handled")
    return found, folders


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _opened_path(fd: int, folder: str) -> str:
    """Where the folder open at ``fd`` really is: the kernel's word on Linux (no race), else realpath."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(folder)


def path_limit(path: str) -> str | None:
    """Why ``path`` cannot be handled (longer than PATH_MAX, a name longer than NAME_MAX), or None."""
    size = len(os.fsencode(path))
    if size >= PATH_MAX:
        return f"the path is {size} bytes long, the system allows {PATH_MAX - 1}: not entered"
    name = len(os.fsencode(os.path.basename(path)))
    if name > NAME_MAX:
        return f"a name of {name} bytes, the system allows {NAME_MAX}"
    return None


def depth_below(path: str, roots: tuple[Path, ...]) -> int | None:
    """How many folders ``path`` is below the watched root that holds it (0: the root), None if none does."""
    for root in roots:
        base = str(root).rstrip(os.sep)
        if path == base:
            return 0
        if path.startswith(base + os.sep):
            return path[len(base):].count(os.sep)
    return None


def too_deep(path: str, roots: tuple[Path, ...], max_depth: int) -> tuple[Path, str, str]:
    """What to record for ``path``, deeper than ``max_depth``: its ancestor one level too deep (one row
    for the whole tree below it), the error kind and the reason."""
    for root in roots:
        base = str(root).rstrip(os.sep)
        if path.startswith(base + os.sep):
            parts = path[len(base) + 1:].split(os.sep)
            path = os.path.join(base, *parts[:max_depth + 1])
            break
    return Path(path), "path_limit", f"more than watch.max_depth = {max_depth} folders below the watched folder: " \
        "not entered"


def within(path: Path, roots: tuple[Path, ...]) -> bool:
    """True if the real location of ``path`` is inside one of ``roots``: every link on the way, in any
    folder of the path and not only its last name, is resolved (links are not followed out).

    Fast for the usual path, under a root as configured: one lstat per name below the root (~10 us for
    four levels, against ~130 us for realpath); only a link found there costs the full resolution.
    """
    text = os.fspath(path)
    for root in roots:
        base = str(root).rstrip(os.sep)
        if text.startswith(base + os.sep):
            parts = text[len(base) + 1:].split(os.sep)
            if "" in parts or "." in parts or ".." in parts:
                break
            current = base
            try:
                for part in parts:
                    current = current + os.sep + part
                    if stat.S_ISLNK(os.lstat(current).st_mode):
                        break
                else:
                    return True
            except OSError:
                pass  # vanished meanwhile: resolve what is there
            break
    return _inside(os.path.realpath(text), roots)


def _inside(real: str, roots: tuple[Path, ...]) -> bool:
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False
