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
"""

from __future__ import annotations

import bz2
import errno
import io
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Self, TypeAlias, TypeVar

from pfswatchd.checksums import ChecksumReport, verify_tree
from pfswatchd.errors import (
    ArchiveLimitError,
    ConflictError,
    CorruptArchiveError,
    PfsWatchError,
    UnsafeArchiveError,
)
from pfswatchd.stars import is_stars_bundle
from pfswatchd.transfer import same_content, transient

STAGING_DIR_NAME = ".pfswatchd-staging"
_SUFFIXES = {".tar": "tar", ".tar.gz": "gzip", ".tgz": "gzip", ".tar.bz2": "bzip2", ".tbz2": "bzip2",
             ".tar.xz": "xz", ".txz": "xz"}
_IN_CHUNK = 1 << 20  # compressed bytes read at a time
_OUT_CHUNK = 4 << 20  # decompressed bytes per call: bounds memory whatever the ratio
_COPY_CHUNK = 8 << 20
_RATIO_SLACK = 1 << 20  # ratio limits apply past the first MiB: a tiny archive is mostly tar padding
_MAX_EXTENDED = 1 << 20  # tarfile reads GNU long names and pax headers into memory
_EXTENDED = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
             tarfile.SOLARIS_XHDTYPE)
_SPECIAL = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
            tarfile.FIFOTYPE: "a fifo", tarfile.GNUTYPE_SPARSE: "a sparse file"}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}
_T = TypeVar("_T")
# How tarfile's member list ended; tarfile raises these but its type stubs do not export them.
_EOF_HEADER: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_EMPTY_HEADER: type[Exception] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]
_INVALID_HEADER: type[Exception] = tarfile.InvalidHeaderError  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class UnpackLimits:
    """Limits that stop a hostile or broken archive before it fills the disk.

    Attributes:
        max_members: members over the whole tree, nested archives included.
        max_total_bytes: bytes of file data over the whole tree.
        max_ratio: uncompressed bytes per byte of archive on disk, checked for each archive (its declared
            sizes and its decompressed stream) and for the whole tree against the top archive; the first
            MiB is not counted.
        max_depth: archive levels that are opened; the top archive is level 1.
        max_member_bytes: the largest single file, or None for no limit.
    """

    max_members: int = 100_000
    max_total_bytes: int = 200 * 2**30
    max_ratio: float = 200.0
    max_depth: int = 3
    max_member_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Extracted:
    """An archive unpacked into its staging folder.

    Attributes:
        archive: the archive that was read.
        root: the staging folder; it holds the archive's inner layout.
        members: members read, nested archives included.
        bytes: bytes of file data written, nested archives included.
        nested: nested archives that were expanded (relative to ``root``; the archive files are gone).
    """

    archive: Path
    root: Path
    members: int
    bytes: int
    nested: tuple[Path, ...] = ()


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
    """

    archive: Path
    dest: Path
    published: tuple[Path, ...]
    failed: tuple[tuple[Path, str], ...]
    stars_bundle: bool
    members: int
    bytes: int


class PublishConflictError(ConflictError):
    """Staged files that differ from files already at their destination.

    The other files were published; the conflicting ones stay at their staged paths (``conflicts``).
    """

    def __init__(self, message: str, *, published: list[Path], conflicts: list[Path]) -> None:
        super().__init__(message)
        self.published = tuple(published)
        self.conflicts = tuple(conflicts)


def is_archive_name(path: Path | str) -> bool:
    """True for ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``/``.tbz2`` and ``.tar.xz``/``.txz`` (any case)."""
    return _split_name(Path(path).name) is not None


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
        ArchiveLimitError: the stream expands past ``limits.max_ratio`` (a bomb, complete or not).
        UnsafeArchiveError: a header already read is refused whatever follows (old GNU sparse member).
        OSError: the file cannot be read.
    """
    path = Path(path)
    codec = _split(path)[1]
    with open(path, "rb") as raw:
        try:
            for _member in _Archive(raw, codec, path.name, limits):
                pass
        except CorruptArchiveError:
            return False
    return True


def extract(
    archive: Path, staging: Path, limits: UnpackLimits = UnpackLimits(), *,
    file_mode: int = 0o644, dir_mode: int = 0o755,
) -> Extracted:
    """Unpack ``archive`` into ``staging``, a new private folder, expanding nested archives.

    Files get ``file_mode`` (its read bits also become execute bits when the member is executable:
    0o644 -> 0o755); directories get ``dir_mode`` (owner rwx always kept); setuid/setgid/sticky bits and
    ownership are never restored.  A nested archive is expanded into a folder named after it, next to
    it, and then removed.

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
            totals = _Totals(limits, archive.name, os.fstat(raw.fileno()).st_size)
            modes = (file_mode, dir_mode | 0o700)
            _extract_tree(_Archive(raw, codec, archive.name, limits), staging, (), totals, 1, modes)
        return Extracted(archive, staging, totals.members, totals.bytes, tuple(totals.nested))
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno == errno.ENAMETOOLONG:  # the archive's fault: retrying cannot help
            raise CorruptArchiveError(f"{archive.name}: a member name is too long for this filesystem "
                                      f"({exc.filename}); expected names of at most 255 bytes") from None
        raise transient(exc, f"extracting {archive.name} into {staging}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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


def unpack(
    archive: Path, dest: Path, *, limits: UnpackLimits = UnpackLimits(), staging_root: Path | None = None,
    verify: bool = True,
) -> UnpackResult:
    """Extract, verify checksums and publish ``archive`` under ``dest/<archive stem>/``.

    Staging is a new folder in ``staging_root`` (default ``dest/.pfswatchd-staging``, same filesystem),
    removed at the end whatever happens; files held back by a checksum mismatch, and conflicting files
    of a PublishConflictError, go with it (the archive still holds them).

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
    work = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=staging_root))
    try:
        extracted = extract(archive, work / "tree", limits)
        report = verify_tree(extracted.root) if verify else None
        stars = is_stars_bundle(extracted)
        published = publish(extracted, target, checksums=report)
        failed: dict[Path, str] = {}
        for result in report.mismatched if report is not None else ():
            failed.setdefault(result.path.relative_to(extracted.root), str(result.error))
        return UnpackResult(archive, target, tuple(published), tuple(failed.items()), stars,
                            extracted.members, extracted.bytes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _split_name(name: str) -> tuple[str, str] | None:
    lower = name.lower()
    for suffix, codec in _SUFFIXES.items():
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], codec
    return None


def _split(path: Path | str) -> tuple[str, str]:
    split = _split_name(Path(path).name)
    if split is None:
        raise ValueError(f"{path}: not an archive name; expected {', '.join(_SUFFIXES)}")
    return split


def _check_ratio(label: str, expanded: int, size: int, max_ratio: float) -> None:
    if expanded > max_ratio * size + _RATIO_SLACK:
        raise ArchiveLimitError(
            f"{label}: expands to more than {expanded} bytes from {size} bytes on disk "
            f"(ratio {expanded / max(size, 1):.0f}); limit max_ratio = {max_ratio:g}"
        )


class _Refusal(Exception):
    """A header refused inside tarfile's parser; ``_Archive`` re-raises it with the archive's name."""

    def __init__(self, error: type[PfsWatchError], detail: str) -> None:
        super().__init__(detail)
        self.error, self.detail = error, detail


class _Member(tarfile.TarInfo):
    """TarInfo that records why the member list ended and refuses what tarfile would load into memory."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        assert isinstance(tarfile_, _TarFile) and tarfile_.fileobj is not None
        start = tarfile_.fileobj.tell()
        try:
            member = cls.frombuf(tarfile_.fileobj.read(tarfile.BLOCKSIZE), tarfile_.encoding, tarfile_.errors)
        except tarfile.HeaderError as exc:
            tarfile_.end = (exc, tarfile_.offset)  # offset: where the header should have been
            raise
        member.offset = start
        if member.type == tarfile.GNUTYPE_SPARSE:  # its extension blocks are read into an unbounded list
            raise _Refusal(UnsafeArchiveError,
                           f"member {member.name!r} is a GNU sparse file; expected a plain regular file")
        if member.type in _EXTENDED and member.size > _MAX_EXTENDED:
            raise _Refusal(ArchiveLimitError,
                           f"extended header at byte {start} declares {member.size} bytes; limit "
                           f"{_MAX_EXTENDED}")
        # _proc_member is tarfile's documented hook for TarInfo subclasses (see its comment above _proc_*).
        processed = member._proc_member(tarfile_)  # type: ignore[attr-defined]
        assert isinstance(processed, cls)
        return processed


class _TarFile(tarfile.TarFile):
    tarinfo = _Member
    end: tuple[Exception, int] | None = None


class _Archive:
    """One open archive: its members in order, their data, and a check that it ends properly."""

    def __init__(self, raw: BinaryIO, codec: str, label: str, limits: UnpackLimits) -> None:
        self.raw, self.label = raw, label
        self.size = os.fstat(raw.fileno()).st_size
        self.declared = 0
        self._buffer: bytearray | None = None  # one copy buffer per archive, allocated on first use
        self.stream = None
        with self._errors():
            if codec == "tar":
                self.tar = _TarFile.open(fileobj=raw, mode="r:")
            else:
                self.stream = _Decompressed(raw, codec, label, self.size, limits.max_ratio)
                # The stubs want a writable, seekable file object; stream mode only ever calls read().
                self.tar = _TarFile.open(fileobj=self.stream, mode="r|", bufsize=_IN_CHUNK)  # type: ignore[call-overload]

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except _Refusal as exc:
            raise exc.error(f"{self.label}: {exc.detail}") from None
        except (tarfile.TarError, ValueError, RecursionError) as exc:
            raise CorruptArchiveError(f"{self.label}: unreadable tar data ({exc}); expected a tar archive") \
                from None

    def __iter__(self) -> Iterator[tarfile.TarInfo]:
        while True:
            with self._errors():
                member = self.tar.next()
            if member is None:
                break
            yield member
        self._check_end()

    def _check_end(self) -> None:
        error, offset = self.tar.end or (None, -1)
        if isinstance(error, _INVALID_HEADER):
            raise CorruptArchiveError(f"{self.label}: bad tar header at byte {offset} ({error}); expected a "
                                      "valid header or the end-of-archive marker")
        if self.stream is not None:
            self.stream.drain()  # raises unless the compressed data ends properly, CRC included
            at_member_end = isinstance(error, _EMPTY_HEADER) and offset == self.stream.produced
            if isinstance(error, _EOF_HEADER) or at_member_end:
                return  # an end marker, or the stream ends right after the last member's data
        elif isinstance(error, _EOF_HEADER):
            assert self.tar.fileobj is not None
            if self.tar.fileobj.read(tarfile.BLOCKSIZE) == bytes(tarfile.BLOCKSIZE):
                return  # both zero blocks of the end-of-archive marker are there
        length = self.size if self.stream is None else self.stream.produced
        raise CorruptArchiveError(f"{self.label}: the tar data stops at byte {length} before its "
                                  "end-of-archive marker (truncated, or still being written); expected a "
                                  "whole archive")

    def copy_data(self, member: tarfile.TarInfo, fd: int) -> None:
        """Write ``member``'s data to ``fd``: in the kernel when seekable, else 8 MiB at a time."""
        if self.stream is None:
            _copy_range(self.raw.fileno(), fd, member.offset_data, member.size)
            return
        if member.size == 0:
            return
        if self._buffer is None:
            self._buffer = bytearray(_COPY_CHUNK)
        view = memoryview(self._buffer)
        with self._errors():
            source = self.tar.extractfile(member)
            assert isinstance(source, io.BufferedReader)
            while count := source.readinto(view):
                _write_all(fd, view[:count])


_Decompressor: TypeAlias = "zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor"


class _Decompressed:
    """The decompressed bytes of a gzip, bzip2 or xz file, read by tarfile's stream mode.

    Concatenated streams (pigz, pbzip2, parallel xz) and zero padding after a stream are accepted; a cut
    stream raises CorruptArchiveError, and expanding past the ratio limit raises ArchiveLimitError.
    """

    def __init__(self, raw: BinaryIO, codec: str, label: str, size: int, max_ratio: float) -> None:
        self._raw, self._codec, self.label = raw, codec, label
        self._size, self._max_ratio = size, max_ratio
        self._in = b""
        self._out, self._pos = b"", 0
        self._decompressor: _Decompressor | None = self._new()
        self.produced = 0

    def _new(self) -> _Decompressor:
        if self._codec == "gzip":
            return zlib.decompressobj(wbits=31)  # gzip header, and the CRC and size trailer are checked
        if self._codec == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` decompressed bytes; b"" only at the proper end of the last stream."""
        if self._pos >= len(self._out):
            self._out, self._pos = self._next(), 0
        end = len(self._out) if size < 0 else self._pos + size
        data = self._out[self._pos : end]
        self._pos += len(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the last stream's end (and CRC) is checked."""
        self._out, self._pos = b"", 0
        while self._next():
            pass

    def _next(self) -> bytes:
        while self._decompressor is not None or self._start_next_stream():
            at_end = False
            if not self._in:
                self._in = self._raw.read(_IN_CHUNK)
                at_end = not self._in
            try:
                out = self._step()
            except (zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
                where = self._raw.tell()
                raise CorruptArchiveError(f"{self.label}: corrupt {self._codec} data near byte {where} "
                                          f"({exc}); expected a valid {self._codec} stream") from None
            if out:
                self.produced += len(out)
                _check_ratio(self.label, self.produced, self._size, self._max_ratio)
                return out
            if at_end and self._decompressor is not None:
                raise CorruptArchiveError(f"{self.label}: the {self._codec} stream stops at byte "
                                          f"{self._raw.tell()} before its end (truncated, or still being "
                                          "written); expected a whole stream")
        return b""

    def _step(self) -> bytes:
        decompressor = self._decompressor
        assert decompressor is not None
        if isinstance(decompressor, (bz2.BZ2Decompressor, lzma.LZMADecompressor)):
            if decompressor.needs_input:
                out = decompressor.decompress(self._in, _OUT_CHUNK)
                self._in = b""
            else:
                out = decompressor.decompress(b"", _OUT_CHUNK)
        else:
            out = decompressor.decompress(self._in, _OUT_CHUNK)
            self._in = decompressor.unconsumed_tail
        if decompressor.eof:
            self._in = decompressor.unused_data + self._in
            self._decompressor = None
        return out

    def _start_next_stream(self) -> bool:
        """After a stream ended: skip zero padding; start a new stream if more data follows."""
        while not (rest := self._in.lstrip(b"\0")):
            self._in = self._raw.read(_IN_CHUNK)
            if not self._in:
                return False
        self._in, self._decompressor = rest, self._new()
        return True


class _Totals:
    """Counts over the whole tree, checked against the limits as members are read."""

    def __init__(self, limits: UnpackLimits, label: str, size: int) -> None:
        self.limits, self.label, self.size = limits, label, size
        self.members = self.bytes = 0
        self.nested: list[Path] = []

    def add(self, member: tarfile.TarInfo, archive: _Archive) -> None:
        limits = self.limits
        self.members += 1
        if self.members > limits.max_members:
            raise ArchiveLimitError(f"{archive.label}: more than {limits.max_members} members (member "
                                    f"{self.members} is {member.name!r}); limit max_members = "
                                    f"{limits.max_members}")
        if not member.isreg():
            return
        if limits.max_member_bytes is not None and member.size > limits.max_member_bytes:
            raise ArchiveLimitError(f"{archive.label}: member {member.name!r} has {member.size} bytes; limit "
                                    f"max_member_bytes = {limits.max_member_bytes}")
        self.bytes += member.size
        archive.declared += member.size
        if self.bytes > limits.max_total_bytes:
            raise ArchiveLimitError(f"{archive.label}: members hold more than {self.bytes} bytes; limit "
                                    f"max_total_bytes = {limits.max_total_bytes}")
        _check_ratio(archive.label, archive.declared, archive.size, limits.max_ratio)
        _check_ratio(self.label, self.bytes, self.size, limits.max_ratio)


@dataclass
class _Layout:
    """The tree the members so far describe: path parts -> "d" (directory), "f" (file) or "l" (symlink)."""

    label: str
    kinds: dict[tuple[str, ...], str] = field(default_factory=dict)

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
        parts = self.parts(member.name, "member")
        what = f"{self.label}: member {member.name!r}"
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
        for end in range(1, len(parts)):
            self.kinds.setdefault(parts[:end], "d")
        self.kinds[parts] = kind
        return parts

    def check_symlinks(self, root: Path) -> None:
        """Resolve every symlink on disk: chains of links inside must still land inside."""
        top = os.path.realpath(root)
        for parts in [parts for parts, kind in self.kinds.items() if kind == "l"]:
            real = os.path.realpath(root.joinpath(*parts))
            if real != top and not real.startswith(top + os.sep):
                raise UnsafeArchiveError(f"{self.label}: symlink {'/'.join(parts)!r} resolves to {real} "
                                         "through other links, outside the extraction folder; expected a "
                                         "target inside it")


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


class _Writer:
    """Creates members under ``root`` through directory descriptors that never follow a symlink."""

    def __init__(self, root: Path, label: str, modes: tuple[int, int]) -> None:
        self.label = label
        self.file_mode, self.dir_mode = modes
        self.exec_mode = self.file_mode | (self.file_mode & 0o444) >> 2
        self._dirs: dict[tuple[str, ...], int] = {(): os.open(root, _DIR_FLAGS)}

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def dir_fd(self, parts: tuple[str, ...]) -> int:
        """The descriptor of directory ``parts``, creating missing directories."""
        known = len(parts)
        while parts[:known] not in self._dirs:
            known -= 1
        fd = self._dirs[parts[:known]]
        for end in range(known + 1, len(parts) + 1):
            name = parts[end - 1]
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
                created = True
            except FileExistsError:
                created = False
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise UnsafeArchiveError(f"{self.label}: {'/'.join(parts[:end])!r} is a symlink or file on "
                                         "disk; expected a directory (no write goes through a link)") \
                    from None
            if created:
                os.fchmod(fd, self.dir_mode)
            self._dirs[parts[:end]] = fd
        return fd

    def write(self, archive: _Archive, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        """Create one checked member (a later member of the same name replaces a file or link)."""
        if len(self._dirs) > 256:  # keep descriptors bounded on archives with many folders
            for key in [key for key in self._dirs if key]:
                os.close(self._dirs.pop(key))
        if member.isdir():
            self.dir_fd(parts)
            return
        parent, leaf = self.dir_fd(parts[:-1]), parts[-1]
        if member.issym():
            _replacing(parent, leaf, lambda: os.symlink(member.linkname, leaf, dir_fd=parent))
        elif member.islnk():
            target = tuple(part for part in member.linkname.split("/") if part not in ("", "."))
            source_dir = self.dir_fd(target[:-1])
            _replacing(parent, leaf, lambda: os.link(target[-1], leaf, src_dir_fd=source_dir,
                                                     dst_dir_fd=parent, follow_symlinks=False))
        else:
            fd: int = _replacing(parent, leaf, lambda: os.open(leaf, _NEW_FILE, 0o600, dir_fd=parent))
            try:
                archive.copy_data(member, fd)
                os.fchmod(fd, self.exec_mode if member.mode & 0o111 else self.file_mode)
                if 0 <= member.mtime < 2**34:
                    os.utime(fd, (member.mtime, member.mtime))
            finally:
                os.close(fd)


def _replacing(parent: int, leaf: str, create: Callable[[], _T]) -> _T:
    try:
        return create()
    except FileExistsError:  # an earlier file or link of the same name (the layout refused directories)
        os.unlink(leaf, dir_fd=parent)
        return create()


def _extract_tree(
    archive: _Archive, root: Path, base: tuple[str, ...], totals: _Totals, depth: int, modes: tuple[int, int],
) -> None:
    """Extract one archive into the existing folder ``root``, then the archives it holds."""
    layout = _Layout(archive.label)
    writer = _Writer(root, archive.label, modes)
    try:
        checked = _checked(archive, layout, totals)
        if archive.stream is None:
            checked = iter(list(checked))  # seekable: every header is checked before the first write
        for member, parts in checked:
            writer.write(archive, member, parts)
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
                inner = _Archive(raw, codec, where, totals.limits)
                _extract_tree(inner, root.joinpath(*folder), (*base, *folder), totals, depth + 1, modes)
            os.unlink(name, dir_fd=parent)
            totals.nested.append(Path(*base, *parts))
    finally:
        writer.close()


def _checked(
    archive: _Archive, layout: _Layout, totals: _Totals,
) -> Iterator[tuple[tarfile.TarInfo, tuple[str, ...]]]:
    """Each member with its path parts, once it passed the limits and the layout checks."""
    for member in archive:
        totals.add(member, archive)
        yield member, layout.check(member)


def _copy_range(source: int, target: int, offset: int, size: int) -> None:
    """Copy ``size`` bytes at ``offset`` of ``source`` in the kernel, with a read/write fallback."""
    end = offset + size
    while offset < end:
        try:
            count = os.copy_file_range(source, target, min(end - offset, 1 << 30), offset_src=offset)
        except OSError as exc:
            if exc.errno not in _NO_COPY_RANGE:
                raise
            count = _write_all(target, memoryview(os.pread(source, min(end - offset, _COPY_CHUNK), offset)))
        if count == 0:
            raise CorruptArchiveError(f"the archive shrank while it was read (byte {offset} of {end} "
                                      "missing); expected an archive that is no longer written")
        offset += count


def _write_all(fd: int, data: memoryview) -> int:
    done = 0
    while done < len(data):
        done += os.write(fd, data[done:])
    return done


def _make_dir(path: Path, mode: int) -> bool:
    """Make sure ``path`` is a directory (new ones get ``mode``); False when a non-directory is there."""
    if path.is_dir():
        return True
    if os.path.lexists(path):
        return False
    _make_dir(path.parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return path.is_dir()
    os.chmod(path, mode)
    return True


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
