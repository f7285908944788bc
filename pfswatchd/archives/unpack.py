"""Safe extraction of downloaded tar archives into a private staging folder, and publishing the result.

``extract`` unpacks into a new 0o700 staging folder and refuses anything that could write or point
outside it; ``publish`` moves the staged tree into place without overwriting; ``unpack`` does both for
``pfswatchd unpack ARCHIVE DEST``.  tarfile only parses headers here; it never extracts.

Every member header is checked against a model of the tree the earlier members made (no absolute path,
no ``..``, no path through a symlink or file, links must stay inside, only files, directories and
links) before anything is written for it.  An uncompressed tar is seekable, so all headers, the member
count and the declared sizes are checked before the first write, and data is copied in the kernel
(``copy_file_range``).  A compressed tar is one stream and decompressing it twice would halve the
throughput, so each header is checked just before its member is written, and any refusal removes the
whole staging folder.  Either way writes go through directory descriptors opened with O_NOFOLLOW and
files are created with O_EXCL|O_NOFOLLOW, so no write follows a symlink even if the model were wrong;
after the last member every symlink is resolved on disk and must land inside.

The tar reading, stream decompression, limit accounting and O_NOFOLLOW writing live in
``pfswatchd.archives.tarstream``; ``publish`` lives in ``pfswatchd.archives.publish`` and is re-exported here.
"""

from __future__ import annotations

import errno
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pfswatchd import faults
from pfswatchd.archives.checksums import verify_tree
from pfswatchd.archives.publish import PublishConflictError, publish
from pfswatchd.archives.staging import new_work_folder, remove_tree
from pfswatchd.archives.stars import ScriptResult, is_stars_bundle, run_unpack_script
from pfswatchd.archives.tarstream import (
    ArchiveEndsEarly,
    Extracted,
    MemberWriter,
    TarReader,
    TreeTotals,
    UnpackLimits,
)
from pfswatchd.errors import ArchiveLimitError, CorruptArchiveError, UnpackScriptError, UnsafeArchiveError, transient
from pfswatchd.files.names import ARCHIVE_CODECS, split_archive_name

__all__ = [
    "STAGING_DIR_NAME",
    "Extracted",
    "PublishConflictError",
    "UnpackLimits",
    "UnpackResult",
    "archive_complete",
    "archive_stem",
    "extract",
    "is_archive_name",
    "publish",
    "unpack",
]

STAGING_DIR_NAME = ".pfswatchd-staging"
_SPECIAL = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
            tarfile.FIFOTYPE: "a fifo", tarfile.GNUTYPE_SPARSE: "a sparse file"}


@dataclass(frozen=True, slots=True)
class UnpackResult:
    """What ``unpack`` did.

    Attributes:
        archive: the archive.
        dest: the folder the inner layout was published into (``DEST/<archive stem>``).
        published: files now in ``dest`` (moved there, or already there with the same content).
        failed: ``(path inside the archive, reason)`` for files held back by a checksum mismatch.
        stars_bundle: the archive is a STARS2 download bundle (it holds ``zadmin/unpack.py``).
        members: members read, nested archives included.
        bytes: bytes of file data extracted, nested archives included.
        script: what zadmin/unpack.py did, when it was run (``stars_script``) and succeeded.
        script_error: why it failed, when it was run and failed (the bundle is published as it came).
    """

    archive: Path
    dest: Path
    published: tuple[Path, ...]
    failed: tuple[tuple[Path, str], ...]
    stars_bundle: bool
    members: int
    bytes: int
    script: ScriptResult | None = None
    script_error: str | None = None


def is_archive_name(path: Path | str) -> bool:
    """True for ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``/``.tbz2`` and ``.tar.xz``/``.txz`` (any case)."""
    return split_archive_name(Path(path).name) is not None


def archive_stem(path: Path | str) -> str:
    """The archive's name without its archive extension (``S2Query.tar`` -> ``S2Query``)."""
    return _split(path)[0]


def archive_complete(path: Path | str, *, limits: UnpackLimits = UnpackLimits()) -> bool:
    """True when ``path`` holds a whole tar stream; reads it once, writes nothing.

    Compressed archives must end their (last) compressed stream properly, CRC and size included, and the
    tar inside must reach its end-of-archive marker or end right after the last member's data.  An
    uncompressed tar has no other end signal, so it needs both zero blocks of the marker.  A file cut at
    any byte gives False, except inside the zero padding after the marker, where every member is there.

    Raises:
        CorruptArchiveError: bad data before the end (a CRC error, invalid compressed data, a bad tar
            header): no amount of waiting makes such an archive whole.
        ArchiveLimitError: the stream expands past ``limits.max_ratio`` (a bomb, complete or not).
        UnsafeArchiveError: a header already read is refused whatever follows (old GNU sparse member).
        OSError: the file cannot be read.
    """
    path = Path(path)
    codec = _split(path)[1]
    with open(path, "rb") as raw:
        try:
            for _member in TarReader(raw, codec, path.name, limits):
                pass
        except ArchiveEndsEarly:
            return False
    return True


def extract(
    archive: Path, staging: Path, limits: UnpackLimits = UnpackLimits(), *,
    file_mode: int = 0o644, dir_mode: int = 0o755,
) -> Extracted:
    """Unpack ``archive`` into ``staging``, a new private folder, expanding nested archives.

    Files get exactly ``file_mode`` (a downloaded archive's execute bits are not trusted; the STARS2
    script is run as ``python3 zadmin/unpack.py``); directories get ``dir_mode`` (owner rwx always
    kept); setuid/setgid/sticky bits and ownership are never restored.  A nested archive is expanded
    into a folder named after it, next to it, and then removed.

    Raises:
        FileExistsError: ``staging`` exists (it must be new, so only this call's output is removed).
        UnsafeArchiveError: a member would escape the folder, or is not a file, directory or safe link.
        ArchiveLimitError: a limit in ``limits`` is exceeded.
        CorruptArchiveError: bad compression, truncated or unreadable tar.
        TransientError: the disk is full or another I/O error happened.
        On every error ``staging`` is removed.
    """
    archive, staging = Path(archive), Path(staging)
    codec = _split(archive)[1]
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir(mode=0o700)
    try:
        os.chmod(staging, 0o700)
        with open(archive, "rb") as raw:
            reader = TarReader(raw, codec, archive.name, limits)
            totals = TreeTotals(limits, archive.name, reader.size)
            _extract_tree(reader, staging, (), totals, 1, (file_mode, dir_mode | 0o700))
        return Extracted(archive, staging, totals.members, totals.bytes, tuple(totals.nested))
    except OSError as exc:
        remove_tree(staging)
        if exc.errno == errno.ENAMETOOLONG:  # the archive's fault: retrying cannot help
            raise CorruptArchiveError(f"{archive.name}: a member name is too long for this filesystem "
                                      f"({exc.filename}); expected names of at most 255 bytes") from None
        raise transient(exc, f"extracting {archive.name} into {staging}") from exc
    except RecursionError:  # defensive: the path limits keep trees shallow, and nothing here recurses per level
        remove_tree(staging)
        raise CorruptArchiveError(f"{archive.name}: its tree is too deep to handle; expected at most "
                                  f"{limits.max_path_parts} levels") from None
    except BaseException:
        remove_tree(staging)
        raise


def unpack(
    archive: Path, dest: Path, *, limits: UnpackLimits = UnpackLimits(), staging_root: Path | None = None,
    verify: bool = True, stars_script: tuple[str, float] | None = None, file_mode: int = 0o644,
    dir_mode: int = 0o755,
) -> UnpackResult:
    """Extract, verify checksums and publish ``archive`` under ``dest/<archive stem>/``.

    Staging is a new folder in ``staging_root`` (default ``dest/.pfswatchd-staging``, same filesystem),
    removed at the end whatever happens; files held back by a checksum mismatch, and conflicting files
    of a PublishConflictError, go with it (the archive still holds them).  With ``stars_script`` =
    ``(network, timeout)``, a STARS2 bundle's ``zadmin/unpack.py`` runs in staging first and what it
    fetched is verified and published with the rest.

    Raises:
        ValueError: ``archive`` has no archive extension, or ``staging_root`` is on another filesystem.
        Everything ``extract`` and ``publish`` raise.
    """
    archive, dest = Path(archive), Path(dest)
    target = dest / archive_stem(archive)
    dest.mkdir(parents=True, exist_ok=True)
    staging_root = Path(staging_root) if staging_root is not None else dest / STAGING_DIR_NAME
    staging_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.stat(staging_root).st_dev != os.stat(dest).st_dev:
        raise ValueError(f"staging folder {staging_root} is on another filesystem than {dest}; expected the "
                         "same one (files are published by rename)")
    work = new_work_folder(staging_root, target.name)
    try:
        extracted = extract(archive, work / "tree", limits, file_mode=file_mode, dir_mode=dir_mode)
        stars = is_stars_bundle(extracted)
        script: ScriptResult | None = None
        script_error: str | None = None
        if stars and stars_script is not None:
            network, timeout = stars_script
            bundle = {p for p in extracted.root.rglob("*")}
            try:
                script = run_unpack_script(extracted.root, network=network, timeout=timeout)
            except UnpackScriptError as exc:
                # Publish the bundle as it came, without what a failed run left half-fetched, so the
                # operator can run the script by hand.
                script_error = str(exc)
                for leftover in sorted(set(extracted.root.rglob("*")) - bundle, reverse=True):
                    remove_tree(leftover)
        report = verify_tree(extracted.root) if verify else None
        published = publish(extracted, target, checksums=report, dir_mode=dir_mode)
        failed: dict[Path, str] = {}
        for result in report.mismatched if report is not None else ():
            failed.setdefault(result.path.relative_to(extracted.root), str(result.error))
        return UnpackResult(archive, target, tuple(published), tuple(failed.items()), stars,
                            extracted.members, extracted.bytes, script, script_error)
    finally:
        remove_tree(work)


def _split(path: Path | str) -> tuple[str, str]:
    split = split_archive_name(Path(path).name)
    if split is None:
        raise ValueError(f"{path}: not an archive name; expected {', '.join(ARCHIVE_CODECS)}")
    return split


@dataclass
class _Layout:
    """The tree the members so far describe: path parts -> "d" (directory), "f" (file) or "l" (symlink)."""

    label: str
    limits: UnpackLimits = UnpackLimits()
    base: tuple[str, ...] = ()  # where this archive is expanded, from the top archive's folder (nested ones)
    kinds: dict[tuple[str, ...], str] = field(default_factory=dict)
    explicit: set[tuple[str, ...]] = field(default_factory=set)  # names that a member of this archive made

    def parts(self, name: str, what: str) -> tuple[str, ...]:
        if name.startswith("/"):
            raise UnsafeArchiveError(f"{self.label}: {what} {name!r} is an absolute path; expected a "
                                     "relative one")
        parts = tuple(part for part in name.split("/") if part not in ("", "."))
        if ".." in parts:
            raise UnsafeArchiveError(f"{self.label}: {what} {name!r} has a '..' component; expected a path "
                                     "inside the archive")
        return parts

    def check(self, member: tarfile.TarInfo) -> tuple[str, ...]:
        """Refuse ``member`` unless it is safe after the earlier ones; return its path parts."""
        what = f"{self.label}: member {member.name!r}"
        if "\0" in member.name or ((member.issym() or member.islnk()) and "\0" in member.linkname):
            # Only a pax record can carry a NUL; the OS would refuse the name with a ValueError.
            raise CorruptArchiveError(f"{what} has a NUL byte in its name or link target; expected names "
                                      "without NUL bytes")
        parts = self.parts(member.name, "member")
        self._check_length(member, parts)
        if not parts:
            if member.isdir():
                return parts
            raise UnsafeArchiveError(f"{what} names the extraction folder itself; expected a path inside it")
        for end in range(1, len(parts)):
            if self.kinds.get(parts[:end], "d") != "d":
                raise UnsafeArchiveError(f"{what} goes through {'/'.join(parts[:end])!r}, an earlier "
                                         "symlink or file; expected a directory")
        if member.isdir():
            kind = "d"
        elif member.issym():
            if not _link_inside(parts[:-1], member.linkname):
                raise UnsafeArchiveError(f"{what} is a symlink to {member.linkname!r}, outside the "
                                         "extraction folder; expected a target inside it")
            kind = "l"
        elif member.islnk():
            target = self.parts(member.linkname, "hard link target")
            if self.kinds.get(target) != "f" or target == parts:
                raise UnsafeArchiveError(f"{what} is a hard link to {member.linkname!r}, which is not an "
                                         "earlier file of the archive; expected an earlier regular file")
            kind = "f"
        elif member.isreg() and member.sparse is None:
            kind = "f"
        else:
            description = _SPECIAL.get(member.type, f"of tar type {member.type!r}")
            raise UnsafeArchiveError(f"{what} is {description}; expected a regular file, directory or link")
        earlier = self.kinds.get(parts)
        if earlier is not None and (earlier == "d") != (kind == "d"):
            replaced = "directory" if earlier == "d" else "file"
            raise UnsafeArchiveError(f"{what} would replace an earlier {replaced} of the same name with "
                                     "another kind; expected one kind per name")
        if parts in self.explicit and kind != "d":
            # tar would keep the last one and silently lose the first (tar -r appends a newer copy): which
            # one is meant cannot be told, so neither is published.
            raise CorruptArchiveError(f"{what} appears twice in the archive; expected each file name once")
        for end in range(1, len(parts)):
            self.kinds.setdefault(parts[:end], "d")
        self.kinds[parts] = kind
        self.explicit.add(parts)
        return parts

    def _check_length(self, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        full = (*self.base, *parts)
        if len(full) > self.limits.max_path_parts:
            raise ArchiveLimitError(f"{self.label}: member {_shown(member.name)} is {len(full)} levels deep; "
                                    f"limit max_path_parts = {self.limits.max_path_parts}")
        size = len("/".join(full).encode("utf-8", "surrogateescape"))
        if size > self.limits.max_path_bytes:
            raise ArchiveLimitError(f"{self.label}: member {_shown(member.name)} has a path of {size} bytes; "
                                    f"limit max_path_bytes = {self.limits.max_path_bytes}")

    def check_symlinks(self, root: Path) -> None:
        """Resolve every symlink on disk: chains of links inside must still land inside."""
        top = os.path.realpath(root)
        for parts in [parts for parts, kind in self.kinds.items() if kind == "l"]:
            real = os.path.realpath(root.joinpath(*parts))
            if real != top and not real.startswith(top + os.sep):
                raise UnsafeArchiveError(f"{self.label}: symlink {'/'.join(parts)!r} resolves to {real} "
                                         "through other links, outside the extraction folder; expected a "
                                         "target inside it")


def _shown(name: str, keep: int = 80) -> str:
    """A member name for a one-line reason: in full when short, else its start and end."""
    if len(name) <= keep:
        return repr(name)
    return f"{name[: keep // 2]!r}...{name[-keep // 2 :]!r} ({len(name)} characters)"


def _link_inside(folder: tuple[str, ...], target: str) -> bool:
    """True when ``target``, read from ``folder``, stays inside the tree (textually)."""
    if not target or target.startswith("/"):
        return False
    stack = list(folder)
    for part in target.split("/"):
        if part == "..":
            if not stack:
                return False
            stack.pop()
        elif part not in ("", "."):
            stack.append(part)
    return True


def _extract_tree(
    archive: TarReader, root: Path, base: tuple[str, ...], totals: TreeTotals, depth: int,
    modes: tuple[int, int],
) -> None:
    """Extract one archive into the existing folder ``root``, then the archives it holds."""
    layout = _Layout(archive.label, totals.limits, base)
    writer = MemberWriter(root, archive.label, modes)
    try:
        checked = _checked(archive, layout, totals)
        if archive.stream is None:
            checked = iter(list(checked))  # seekable: every header is checked before the first write
        for member, parts in checked:
            writer.write(archive, member, parts)
            faults.pause("unpack.member")
        layout.check_symlinks(root)
        nested = [parts for parts, kind in layout.kinds.items() if kind == "f" and is_archive_name(parts[-1])]
        for parts in nested:
            where = f"{archive.label}/{'/'.join(parts)}"
            if depth >= totals.limits.max_depth:
                raise ArchiveLimitError(f"{where}: nested archive at level {depth + 1}; limit max_depth = "
                                        f"{totals.limits.max_depth}")
            name, codec = parts[-1], _split(parts[-1])[1]
            folder = (*parts[:-1], archive_stem(name))
            if folder in layout.kinds:
                raise UnsafeArchiveError(f"{where}: would be expanded into {'/'.join(folder)!r}, which the "
                                         "archive already holds; expected a free folder name")
            layout.kinds[folder] = "d"
            writer.dir_fd(folder)
            parent = writer.dir_fd(parts[:-1])
            with open(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent), "rb") as raw:
                try:
                    inner = TarReader(raw, codec, where, totals.limits)
                    _extract_tree(inner, root.joinpath(*folder), (*base, *folder), totals, depth + 1, modes)
                except ArchiveEndsEarly as exc:
                    # The outer archive already ended properly, so a short inner one is damaged, not
                    # still being written: waiting would not help.
                    raise CorruptArchiveError(str(exc)) from None
            os.unlink(name, dir_fd=parent)
            totals.nested.append(Path(*base, *parts))
    finally:
        writer.close()


def _checked(
    archive: TarReader, layout: _Layout, totals: TreeTotals,
) -> Iterator[tuple[tarfile.TarInfo, tuple[str, ...]]]:
    """Each member with its path parts, once it passed the limits and the layout checks."""
    for member in archive:
        totals.add(member, archive)
        yield member, layout.check(member)
