"""Staging folders: each extraction's own folder, named after the process that made it, and their removal.

An extraction works in ``<staging root>/<host>.pid<pid>.<archive stem>-<random>``.  When that process
is killed the folder stays; ``remove_abandoned`` finds the folders of this host whose process is gone
and removes them (the service calls it at start and from time to time, so a restart cleans up at once
instead of waiting for a claim timeout).  Folders of other hosts are left alone: their process cannot
be checked from here.

``remove_tree`` removes a tree without recursion and without following links, so a tree of any depth
(an archive member 1,100 levels deep; ``shutil.rmtree`` raises RecursionError near 1,000) goes.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from pfswatchd.processes import alive

__all__ = ["new_work_folder", "remove_abandoned", "remove_tree"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OWNER = re.compile(r"^(?P<host>.+)\.pid(?P<pid>\d+)\.")


def _host() -> str:
    return os.uname().nodename


def new_work_folder(staging_root: Path, stem: str) -> Path:
    """A new private folder in ``staging_root`` for one extraction by this process."""
    return Path(tempfile.mkdtemp(prefix=f"{_host()}.pid{os.getpid()}.{stem}-", dir=staging_root))


def owner(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` of the process that made staging folder ``name``, or None for another name."""
    match = _OWNER.match(name)
    return (match["host"], int(match["pid"])) if match else None



def remove_abandoned(staging_root: Path) -> list[Path]:
    """Remove the staging folders made by processes of this host that are gone; return them."""
    try:
        names = os.listdir(staging_root)
    except FileNotFoundError:
        return []
    host, removed = _host(), []
    for name in sorted(names):
        made_by = owner(name)
        if made_by is None or made_by[0] != host or made_by[1] == os.getpid() or alive(made_by[1]):
            continue
        remove_tree(staging_root / name)
        removed.append(staging_root / name)
    return removed


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything under it, at any depth; links are removed, never followed.

    Only one directory descriptor is open at a time: the walk goes down by name and back up through
    ``..`` of the directory it just emptied.  Errors (a file that vanished meanwhile) are ignored, as
    ``shutil.rmtree(..., ignore_errors=True)`` does.
    """
    path = Path(path)
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return
    except OSError:  # a file or a link, not a directory
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    below: list[str] = []  # the names from ``path`` down to the directory ``fd`` is open on
    stuck: set[tuple[str, ...]] = set()  # directories that could not be opened or removed: left, not retried
    try:
        while True:
            child = _subdirectory_after_emptying(fd, below, stuck)
            if child is not None:
                try:
                    next_fd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    stuck.add((*below, child))
                    continue
                os.close(fd)
                fd = next_fd
                below.append(child)
                continue
            if not below:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            name = below.pop()
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                stuck.add((*below, name))
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _subdirectory_after_emptying(fd: int, below: list[str], stuck: set[tuple[str, ...]]) -> str | None:
    """Unlink everything but directories in the directory ``fd``; return a subdirectory not ``stuck``, or None."""
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if not is_dir:
                with contextlib.suppress(OSError):
                    os.unlink(entry.name, dir_fd=fd)
            elif (*below, entry.name) not in stuck:
                return entry.name
    return None
