"""Publishing an extracted tree: move the staged files into place by rename, never overwriting anything."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pfswatchd.archives.checksums import ChecksumReport
from pfswatchd.butler.transfer import same_content
from pfswatchd.errors import ConflictError, transient
from pfswatchd.permissions import Permissions

if TYPE_CHECKING:
    from pfswatchd.archives.tarstream import Extracted

__all__ = ["PublishConflictError", "publish"]


class PublishConflictError(ConflictError):
    """Staged files that differ from files already at their destination.

    The other files were published; the conflicting ones stay at their staged paths (``conflicts``).
    """

    def __init__(self, message: str, *, published: list[Path], conflicts: list[Path]) -> None:
        super().__init__(message)
        self.published = tuple(published)
        self.conflicts = tuple(conflicts)


def publish(
    extracted: Extracted, dest: Path, *, checksums: ChecksumReport | None = None, dir_mode: int = 0o755,
) -> list[Path]:
    """Move the staged tree into ``dest`` by rename, without overwriting anything; nothing is copied.

    A staged folder whose destination does not exist yet is renamed whole.  Otherwise each file (or
    symlink) is placed by a no-replace rename: a hard link to the destination name, then the staged name
    is unlinked (a check and a plain rename where the filesystem has no hard links).  A destination that
    already holds identical content is kept and the staged copy dropped.  Files that failed their
    checksum in ``checksums`` are left staged.  Published directories get ``dir_mode``.

    Returns:
        The destination paths of the published files, in walk order.

    Raises:
        PublishConflictError: (a ConflictError) a destination holds different content; every other file
            was still published, and each conflicting file stays at its staged path, listed in
            ``conflicts``.
        TransientError: an I/O error (such as a staging folder on another filesystem: EXDEV).
    """
    root, dest = extracted.root, Path(dest)
    held = checksums.failed_paths if checksums is not None else frozenset()
    placed: list[tuple[Path, Path]] = []
    conflicts: list[tuple[Path, Path]] = []
    try:
        for folder, dirnames, filenames in os.walk(root):
            source_dir = Path(folder)
            target_dir = dest / source_dir.relative_to(root)
            if _move_dir(source_dir, target_dir, held, dir_mode):
                placed.extend(_moved_files(source_dir, target_dir, dir_mode))
                dirnames.clear()
                continue
            if not _make_dir(target_dir, dir_mode):
                conflicts.append((source_dir, target_dir))
                dirnames.clear()
                continue
            links = [name for name in dirnames if (source_dir / name).is_symlink()]
            dirnames[:] = sorted(set(dirnames) - set(links))
            for name in sorted(filenames + links):
                source, target = source_dir / name, target_dir / name
                if source not in held:
                    (placed if _place(source, target) else conflicts).append((source, target))
    except OSError as exc:
        raise transient(exc, f"publishing {extracted.archive.name} into {dest}") from exc
    if conflicts:
        source, target = conflicts[0]
        more = f"; {len(conflicts) - 1} more conflicts" if len(conflicts) > 1 else ""
        raise PublishConflictError(
            f"{target} already exists with other content than {source.relative_to(root)} of "
            f"{extracted.archive.name}; expected no file or an identical one (staged copy kept at "
            f"{source}{more})",
            published=[target for _, target in placed],
            conflicts=[source for source, _ in conflicts],
        )
    return [target for _, target in placed]


def _make_dir(path: Path, mode: int) -> bool:
    """Make sure ``path`` is a directory (new ones get ``mode``); False when a non-directory is there."""
    if path.is_dir():
        return True
    if os.path.lexists(path):
        return False
    Permissions(dir_mode=mode).makedirs(path)
    return path.is_dir()


def _move_dir(source: Path, target: Path, held: frozenset[Path], mode: int) -> bool:
    """Rename a whole staged folder into place when nothing is at ``target`` and nothing in it is held back.

    rename() only replaces an empty directory, so a folder created meanwhile is not clobbered: a non-empty
    one makes the rename fail and the caller merges file by file.
    """
    if os.path.lexists(target) or any(path.is_relative_to(source) for path in held):
        return False
    _make_dir(target.parent, mode)
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
            raise
        return False
    return True


def _moved_files(source: Path, target: Path, mode: int) -> list[tuple[Path, Path]]:
    """The ``(staged, published)`` files of a renamed folder; its directories get ``mode``."""
    moved = []
    for folder, dirnames, filenames in os.walk(target):
        os.chmod(folder, mode)
        links = [name for name in dirnames if os.path.islink(os.path.join(folder, name))]
        dirnames[:] = sorted(set(dirnames) - set(links))
        for name in sorted(filenames + links):
            path = Path(folder, name)
            moved.append((source / path.relative_to(target), path))
    return moved


def _place(source: Path, target: Path) -> bool:
    """Move ``source`` to ``target`` unless something is there; True if moved or already identical."""
    try:
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        return _drop_if_same(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if os.path.lexists(target):  # no hard links here: check, then rename
            return _drop_if_same(source, target)
        os.rename(source, target)
        return True
    os.unlink(source)
    return True


def _drop_if_same(source: Path, target: Path) -> bool:
    if source.is_symlink() or target.is_symlink():
        same = source.is_symlink() and target.is_symlink() and os.readlink(source) == os.readlink(target)
    else:
        same = same_content(source, target)
    if same:
        os.unlink(source)
    return same
