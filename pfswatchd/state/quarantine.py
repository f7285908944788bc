"""quarantine: move a rejected file aside with its reason, or bring it back.

With ``quarantine.policy = "move"`` a permanently failed file leaves the watched
folder for ``quarantine.path``, keeping its path relative to the watched folder
it came from, next to a ``<name>.reason`` text file (error kind, message,
original path).  Nothing is ever deleted; ``pfswatchd retry`` moves it back.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from pfswatchd import faults
from pfswatchd.permissions import DEFAULT, Permissions

REASON_SUFFIX = ".reason"


def _relative(path: Path, roots: tuple[Path, ...]) -> Path:
    for root in roots:
        try:
            return path.relative_to(root)
        except ValueError:
            continue
    return Path(path.name)


def _move(source: Path, dest: Path) -> None:
    """Rename ``source`` to ``dest``, or copy and unlink it when rename fails (another filesystem)."""
    try:
        os.rename(source, dest)
    except OSError:
        shutil.copy2(source, dest)
        os.unlink(source)

def destination(path: Path, *, roots: tuple[Path, ...], folder: Path) -> Path:
    """Where :func:`relocate` puts ``path``: its path relative to the watched folder, under ``folder``,
    with a suffix when that name is taken (nothing is overwritten).  Decided before the move, so that
    the ledger can say where a file is going before it goes."""
    dest = folder / _relative(path, roots)
    if dest.exists() or dest.is_symlink():
        dest = dest.with_name(f"{dest.name}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}.{time.monotonic_ns()}")
    return dest


def relocate(path: Path, *, roots: tuple[Path, ...], folder: Path, perms: Permissions = DEFAULT,
             dest: Path | None = None) -> Path:
    """Move ``path`` into ``folder``, keeping its path relative to the watched folder; never overwrite
    (``dest``: the :func:`destination` decided earlier; a partial copy there from a killed move is replaced)."""
    dest = dest or destination(path, roots=roots, folder=folder)
    perms.makedirs(dest.parent)
    _move(path, dest)
    return dest


def quarantine(path: Path, *, roots: tuple[Path, ...], folder: Path, kind: str, reason: str,
               perms: Permissions = DEFAULT, dest: Path | None = None) -> Path:
    """Move ``path`` into ``folder`` (same relative layout) and write its reason; return the new path."""
    dest = relocate(path, roots=roots, folder=folder, perms=perms, dest=dest)
    faults.pause("quarantine.moved")  # a test kills the service between the move and its record
    write_reason(dest, path, kind, reason, perms)
    return dest


def write_reason(dest: Path, original: Path, kind: str, reason: str, perms: Permissions = DEFAULT) -> None:
    """The ``<name>.reason`` note next to a quarantined file."""
    note = dest.with_name(dest.name + REASON_SUFFIX)
    note.write_text(f"error_kind: {kind}\nreason: {reason}\noriginal: {original}\nwhen: {time.ctime()}\n")
    perms.file(note)


def release(quarantined: Path, original: Path) -> Path:
    """Move a quarantined file back to ``original`` (or next to it if that name is taken)."""
    target = original
    if target.exists():
        target = original.with_name(f"{original.name}.retry-{time.strftime('%Y%m%dT%H%M%S')}")
    target.parent.mkdir(parents=True, exist_ok=True)
    _move(quarantined, target)
    note = quarantined.with_name(quarantined.name + REASON_SUFFIX)
    if note.exists():
        note.unlink()
    return target
