"""Put a file into the datastore the way a transfer mode says, crash-safely.

pfswatchd places files itself and then registers them with
``Butler.ingest(..., transfer=None)`` (files already inside the datastore).  It
does so for two reasons the butler's own transfers do not cover:

- *move never loses a file.*  The butler renames the source into the
  datastore before the registry commits, so a crash in between leaves the only
  copy unregistered.  Here ``move`` is a hard link (same filesystem) or a
  copy + fsync + verify (across filesystems) before the commit, and the source
  is unlinked only after the commit.
- *a crash leaves nothing that blocks a retry.*  Every destination is created
  exclusively and only when whole (copies go to a temporary name first).  A
  destination left by a killed process is recognised on the next attempt: if it
  has the source's content it is reused, otherwise it is replaced once it is
  older than ``ORPHAN_GRACE`` seconds (a younger one may be another instance's
  ingest in flight).

*What is placed is what was examined.*  :func:`place` takes the identity the file had when its
headers were read (size, mtime, inode); a file renamed onto the source path, or rewritten, since then
is not placed (:class:`~pfswatchd.errors.SourceChangedError`: it is examined again as the new file it
is).  A hard link is checked after it is made (it is the very inode); a copy is made from a descriptor
whose identity is checked before and after the copy; a symbolic link is checked before and after.
*A move removes only what it placed*: :meth:`Placement.finish` unlinks the source only while it is
still the placed inode with the placed size, so a new file renamed onto the source meanwhile stays.

Modes as ``butler ingest-raws --transfer`` spells them: ``auto`` (link for files
outside the datastore, in place for files inside), ``link`` (hard link, else
symbolic), ``symlink``, ``relsymlink``, ``hardlink``, ``copy``, ``move``,
``direct`` (nothing is placed; the butler records the absolute path).
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cachetools import LRUCache

from pfswatchd import faults
from pfswatchd.butler.filecopy import copy_data, same_bytes
from pfswatchd.errors import ErrorKind, SourceChangedError, TransientError, transient
from pfswatchd.permissions import DEFAULT, Permissions
from pfswatchd.processes import alive

TRANSFER_MODES: tuple[str, ...] = ("auto", "link", "symlink", "relsymlink", "hardlink", "copy", "move", "direct")
ORPHAN_GRACE = 600.0

# (size, mtime_ns, ctime_ns, inode) as examined; ctime is not compared (making a hard link changes it).
Identity = tuple[int, int, int, int]


def _same_file(st: os.stat_result, expect: Identity) -> bool:
    return (st.st_size, st.st_mtime_ns, st.st_ino) == (expect[0], expect[1], expect[3])


def _changed(source: Path) -> SourceChangedError:
    return SourceChangedError(f"{source.name}: the file at {source} is not the one that was examined (replaced "
                              "or rewritten since); expected the file that was examined, and nothing of it was written")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a source file now also is, and whether this call created it."""

    source: Path
    dest: Path
    created: bool
    unlink_source_after_commit: bool
    placed: tuple[int, int] | None = None  # (inode, size) of the source file that was placed

    def undo(self) -> None:
        """Remove what this placement created (after a failed commit)."""
        if self.created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.dest)

    def finish(self) -> bool:
        """After the commit: complete a move by unlinking the source, if it is still the file placed.

        Returns False when the source path now holds another file (renamed onto it since): that file
        is left alone, to be examined as the new file it is.
        """
        if not self.unlink_source_after_commit or self.source == self.dest:
            return True
        try:
            st = os.lstat(self.source)
        except FileNotFoundError:
            return True
        if self.placed is not None and (st.st_ino, st.st_size) != self.placed:
            return False
        # What is left: the microseconds between this lstat and the unlink (POSIX has no unlink of an
        # inode; see the README's Guarantees).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.source)
        return True


def inside(path: Path, root: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        return False
    return True


class DestinationExists(Exception):
    """``dest`` exists with other content and the caller has not checked that it is an orphan."""


def place(source: Path, dest: Path, mode: str, *, datastore_root: Path, replace_orphans: bool = True,
          perms: Permissions = DEFAULT, expect: Identity | None = None) -> Placement:
    """Make ``dest`` hold ``source`` according to ``mode`` (not ``direct``).

    An existing ``dest`` with the same content is reused.  One with other
    content is replaced (when stale) only with ``replace_orphans``, i.e. when
    the caller knows no registered dataset uses it; otherwise
    DestinationExists is raised and nothing is touched.  ``expect``: the
    identity the source had when it was examined (see the module docstring).

    Raises:
        TransientError: the destination is busy, the disk is full, permission
            is denied or another I/O error happened; nothing was left behind.
        SourceChangedError: the source is not the examined file; nothing was left behind.
        DestinationExists: see above.
    """
    if mode == "auto":
        if inside(source, datastore_root):
            check_source(source, expect)
            return Placement(source, source, created=False, unlink_source_after_commit=False)
        mode = "link"
    try:
        _make_parent(dest, perms)
        try:
            scratch = scratch_folder(datastore_root)
            try:
                _create(source, dest, mode, scratch, perms, expect)
            except FileNotFoundError:
                if not os.path.exists(source):
                    raise
                with _made_lock:
                    _made.pop(str(dest.parent), None)  # the folder was removed since we made it
                _make_parent(dest, perms)
                _create(source, dest, mode, scratch, perms, expect)
            created = True
        except FileExistsError:
            if not replace_orphans and not same_content(source, dest):
                raise DestinationExists(f"{dest} exists with other content") from None
            check_source(source, expect)
            created = _adopt_or_replace(source, dest, mode, scratch_folder(datastore_root), perms, expect)
    except FileNotFoundError as exc:
        if expect is not None and not os.path.lexists(source):
            raise _changed(source) from exc  # renamed away or deleted since it was examined
        raise transient(exc, f"placing {source.name} at {dest}") from exc
    except OSError as exc:
        raise transient(exc, f"placing {source.name} at {dest}") from exc
    placed = None
    if expect is not None:
        placed = (expect[3], expect[0])
    else:
        with contextlib.suppress(OSError):
            st = os.stat(source)
            placed = (st.st_ino, st.st_size)
    return Placement(source, dest, created=created, unlink_source_after_commit=mode == "move", placed=placed)


def check_source(source: Path, expect: Identity | None) -> None:
    """Raise SourceChangedError unless ``source`` is (still) the examined file."""
    if expect is None:
        return
    try:
        st = os.stat(source)
    except FileNotFoundError:
        raise _changed(source) from None
    if not _same_file(st, expect):
        raise _changed(source)


# Folders this process made (a visit's files share one): the most recent ones, so that a year of
# visits does not grow the set without bound.  Kept as text (a Path keeps its parts too: ~1 KiB each).
_made: LRUCache[str, bool] = LRUCache(maxsize=4096)
_made_lock = threading.Lock()  # several copies are placed at once (the cache itself is not thread-safe)


def _make_parent(dest: Path, perms: Permissions) -> None:
    """Create ``dest``'s folder once per process (a visit's files share it)."""
    parent = dest.parent
    key = str(parent)
    with _made_lock:
        if key in _made:
            return
    perms.makedirs(parent)  # safe when another thread or process makes it at the same moment
    with _made_lock:
        _made[key] = True


SCRATCH = ".pfswatchd-tmp"  # in the datastore root: copies are written here, then linked into place


def scratch_folder(datastore_root: Path) -> Path:
    return datastore_root / SCRATCH


def clean_scratch(datastore_root: Path, *, max_age: float = 86400.0) -> int:
    """Remove copies left by killed processes: this host's whose process is gone, anyone's after a day."""
    folder = scratch_folder(datastore_root)
    removed = 0
    host = os.uname().nodename
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    now = time.time()
    for entry in entries:
        owner_host, _, rest = entry.name.rpartition(".pid")
        pid = rest.split(".", 1)[0]
        stale = now - entry.stat(follow_symlinks=False).st_mtime > max_age
        dead = owner_host == host and pid.isdigit() and not alive(int(pid))
        if stale or dead:
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed



def _create(source: Path, dest: Path, mode: str, scratch: Path, perms: Permissions,
            expect: Identity | None = None) -> None:
    """Create ``dest`` exclusively (FileExistsError when it is already there) from the examined file."""
    if mode in ("hardlink", "link", "move"):
        faults.pause("transfer.placing")  # a test renames another file onto the source here
        try:
            os.link(source, dest)  # follows a link at the source, as linking its real path would
        except FileExistsError:
            raise
        except OSError as exc:
            if mode == "hardlink" or exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
        else:
            if expect is not None and not _same_file(os.lstat(dest), expect):
                os.unlink(dest)  # the link is the very inode now at the source: not the one examined
                raise _changed(source)
            return
        real = os.path.realpath(source)
        if mode == "link":
            _symlink(real, real, dest, source, expect)
            return
        _copy_exclusive(Path(real), dest, scratch, perms, verify=True, expect=expect)  # move across filesystems
    elif mode == "symlink":
        real = os.path.realpath(source)
        _symlink(real, real, dest, source, expect)
    elif mode == "relsymlink":
        real = os.path.realpath(source)
        _symlink(os.path.relpath(real, dest.parent), real, dest, source, expect)
    elif mode == "copy":
        faults.pause("transfer.placing")
        _copy_exclusive(Path(os.path.realpath(source)), dest, scratch, perms, verify=False, expect=expect)
    else:
        raise ValueError(f"transfer mode {mode!r}; expected one of {', '.join(TRANSFER_MODES)}")


def _symlink(target: str, real: str, dest: Path, source: Path, expect: Identity | None) -> None:
    """A symbolic link to the examined file: checked before and after it is made (a link names a path,
    not an inode, so a file renamed onto the source later is what the link shows; see the README)."""
    check_source(Path(real), expect)
    faults.pause("transfer.placing")
    os.symlink(target, dest)
    try:
        check_source(Path(real), expect)
    except SourceChangedError:
        os.unlink(dest)
        raise _changed(source) from None


def _copy_exclusive(source: Path, dest: Path, scratch: Path, perms: Permissions, *, verify: bool,
                    expect: Identity | None = None) -> None:
    """Copy to a temporary file in ``scratch`` (by the kernel), fsync, optionally verify, then link
    into place.

    A kill at any moment leaves either nothing at ``dest`` or the whole file; the temporary copy is
    removed by :func:`clean_scratch` at the next start.  ``verify`` compares the copy with the source
    byte for byte (a move must not drop a source whose copy differs).  With ``expect``, the bytes
    copied are the examined file's: the descriptor copied from has its identity before and after.
    """
    scratch.mkdir(exist_ok=True)
    temp = scratch / f"{os.uname().nodename}.pid{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}.tmp"
    try:
        with open(source, "rb", buffering=0) as src, open(temp, "xb", buffering=0) as out:
            if expect is not None and not _same_file(os.fstat(src.fileno()), expect):
                raise _changed(source)
            copy_data(src.fileno(), out.fileno())
            os.fsync(out.fileno())
            if expect is not None and not _same_file(os.fstat(src.fileno()), expect):
                raise _changed(source)  # written to while it was copied
        perms.file(temp)
        if verify and not same_bytes(source, temp):
            if expect is not None:
                check_source(source, expect)
            raise OSError(errno.EIO, f"copy of {source} to {temp} does not match its source")
        os.link(temp, dest)
        _fsync_dir(dest.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def same_content(source: Path, other: Path) -> bool:
    """True if ``other`` is ``source`` (same inode, or a link to it) or has identical bytes."""
    try:
        if os.path.samefile(source, other):
            return True
        return filecmp.cmp(source, other, shallow=False)
    except OSError:
        return False


def _adopt_or_replace(source: Path, dest: Path, mode: str, scratch: Path, perms: Permissions,
                      expect: Identity | None = None) -> bool:
    """``dest`` exists but is not registered: reuse it, or replace stale debris.

    Returns whether this call created the final ``dest``.
    """
    if same_content(source, dest):
        return False
    age = time.time() - os.lstat(dest).st_mtime
    if age < ORPHAN_GRACE:
        raise TransientError(
            f"{source.name}: {dest} exists with other content and is {age:.0f}s old; another ingest may "
            "be writing it (retried later)",
            kind=ErrorKind.DATASTORE_BUSY,
        )
    os.unlink(dest)
    _create(source, dest, mode, scratch, perms, expect)
    return True
