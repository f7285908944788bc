"""Reading tar members safely, as one stream, and writing them through descriptors that never follow a link.

``TarReader`` lists one archive's members with tarfile's header parser (a TarInfo subclass refuses
what tarfile would otherwise load into memory: GNU sparse maps and oversized extended headers), copies
their data (``copy_file_range`` for an uncompressed tar, 8 MiB at a time from the decompressed stream
otherwise) and, once the member list ends, checks that the archive ends properly.  gzip, bzip2 and xz
are decompressed here, ``_OUT_CHUNK`` at a time, with the ratio limit checked as bytes come out.
``TreeTotals`` counts members and bytes over a whole tree against ``UnpackLimits``.  ``MemberWriter``
creates checked members through directory descriptors opened with O_NOFOLLOW and files created with
O_EXCL|O_NOFOLLOW.  Deciding which members are safe is ``pfswatchd.archives.unpack``'s job.

``UnpackLimits`` and ``Extracted`` are defined here, at the bottom of the archive modules, because
unpack, publish and stars all use them and this module is the one they all stand on.
"""

from __future__ import annotations

import bz2
import errno
import io
import lzma
import os
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self, TypeAlias, TypeVar

from pfswatchd.errors import ArchiveLimitError, CorruptArchiveError, PfsWatchError, UnsafeArchiveError

__all__ = ["ArchiveEndsEarly", "Extracted", "MemberWriter", "TarReader", "TreeTotals", "UnpackLimits"]

_IN_CHUNK = 1 << 20  # compressed bytes read at a time
_OUT_CHUNK = 4 << 20  # decompressed bytes per call: bounds memory whatever the ratio
_COPY_CHUNK = 8 << 20
_RATIO_SLACK = 1 << 20  # ratio limits apply past the first MiB: a tiny archive is mostly tar padding
_MAX_EXTENDED = 1 << 20  # tarfile reads GNU long names and pax headers into memory
_EXTENDED = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
             tarfile.SOLARIS_XHDTYPE)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}
_T = TypeVar("_T")
# How tarfile's member list ended; tarfile raises these but its type stubs do not export them.
_EOF_HEADER: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_EMPTY_HEADER: type[Exception] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]
_INVALID_HEADER: type[Exception] = tarfile.InvalidHeaderError  # type: ignore[attr-defined]


def _check_ratio(label: str, expanded: int, size: int, max_ratio: float) -> None:
    if expanded > max_ratio * size + _RATIO_SLACK:
        raise ArchiveLimitError(
            f"{label}: expands to more than {expanded} bytes from {size} bytes on disk "
            f"(ratio {expanded / max(size, 1):.0f}); limit max_ratio = {max_ratio:g}"
        )


_ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)
_SHORT_READS = frozenset({"unexpected end of data", "empty file", "truncated header"})



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
        max_path_parts: path components of a member, counted from the top archive's folder (nested
            archives' folders included); PFS layouts are a handful deep.
        max_path_bytes: bytes of a member's path from the top archive's folder (UTF-8), so that staging and
            published paths stay well under PATH_MAX.
    """

    max_members: int = 100_000
    max_total_bytes: int = 200 * 2**30
    max_ratio: float = 200.0
    max_depth: int = 3
    max_member_bytes: int | None = None
    max_path_parts: int = 64
    max_path_bytes: int = 1024



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


class ArchiveEndsEarly(CorruptArchiveError):
    """The archive stops before its stream ends: cut short, or still being written."""

class _Refusal(Exception):
    """A header refused inside tarfile's parser; ``TarReader`` re-raises it with the archive's name."""

    def __init__(self, error: type[PfsWatchError], detail: str) -> None:
        super().__init__(detail)
        self.error, self.detail = error, detail


class _Member(tarfile.TarInfo):
    """TarInfo that records why the member list ended and refuses what tarfile would load into memory."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        assert isinstance(tarfile_, _TarFile) and tarfile_.fileobj is not None
        fileobj = tarfile_.fileobj
        start = fileobj.tell()
        block = fileobj.read(tarfile.BLOCKSIZE)
        zeros = 0
        # Zero blocks end a tar; past them, another tar may follow (two tars concatenated with cat, or
        # gzip streams of tars concatenated): read on, as `tar --ignore-zeros` does, so that no member is
        # silently dropped.  Only zeros to the end of the data is the end of the archive.
        while block == _ZERO_BLOCK:
            zeros += 1
            block = fileobj.read(tarfile.BLOCKSIZE)
        if zeros and not block.strip(b"\0"):
            tarfile_.end = (_EOF_HEADER("end of file header"), start, zeros)
            raise tarfile_.end[0]
        offset = fileobj.tell() - len(block)
        try:
            member = cls.frombuf(block, tarfile_.encoding, tarfile_.errors)
        except tarfile.HeaderError as exc:
            tarfile_.end = (exc, offset if zeros else tarfile_.offset, zeros)  # where the header should be
            if zeros and isinstance(exc, _INVALID_HEADER):
                raise _Refusal(CorruptArchiveError,
                               f"{zeros} zero blocks at byte {start} (an end-of-archive marker) are followed by "
                               f"data that is not a tar header at byte {offset}; expected only zeros after "
                               "the marker, or another tar") from None
            raise
        member.offset = offset
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
    end: tuple[Exception, int, int] | None = None  # how the member list ended, where, after how many zero blocks


class TarReader:
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
        except tarfile.ReadError as exc:
            if str(exc) in _SHORT_READS:  # tarfile's words for data that stops early
                raise ArchiveEndsEarly(f"{self.label}: the tar data stops early ({exc}; truncated, or still "
                                       "being written); expected a whole archive") from None
            raise CorruptArchiveError(f"{self.label}: unreadable tar data ({exc}); expected a tar archive") \
                from None
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
        error, offset, zeros = self.tar.end or (None, -1, 0)
        if isinstance(error, _INVALID_HEADER):
            raise CorruptArchiveError(f"{self.label}: bad tar header at byte {offset} ({error}); expected a "
                                      "valid header or the end-of-archive marker")
        if self.stream is not None:
            self.stream.drain()  # raises unless the compressed data ends properly, CRC included
            at_member_end = isinstance(error, _EMPTY_HEADER) and offset == self.stream.produced
            if isinstance(error, _EOF_HEADER) or at_member_end:
                return  # an end marker, or the stream ends right after the last member's data
        elif isinstance(error, _EOF_HEADER) and zeros >= 2:
            return  # both zero blocks of the end-of-archive marker are there
        length = self.size if self.stream is None else self.stream.produced
        raise ArchiveEndsEarly(f"{self.label}: the tar data stops at byte {length} before its "
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
            except EOFError as exc:
                raise ArchiveEndsEarly(f"{self.label}: the {self._codec} stream stops near byte "
                                       f"{self._raw.tell()} ({exc}); expected a whole stream") from None
            except (zlib.error, lzma.LZMAError, OSError) as exc:
                where = self._raw.tell()
                raise CorruptArchiveError(f"{self.label}: corrupt {self._codec} data near byte {where} "
                                          f"({exc}); expected a valid {self._codec} stream") from None
            if out:
                self.produced += len(out)
                _check_ratio(self.label, self.produced, self._size, self._max_ratio)
                return out
            if at_end and self._decompressor is not None:
                raise ArchiveEndsEarly(f"{self.label}: the {self._codec} stream stops at byte "
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


class TreeTotals:
    """Counts over the whole tree, checked against the limits as members are read."""

    def __init__(self, limits: UnpackLimits, label: str, size: int) -> None:
        self.limits, self.label, self.size = limits, label, size
        self.members = self.bytes = 0
        self.nested: list[Path] = []

    def add(self, member: tarfile.TarInfo, archive: TarReader) -> None:
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


class MemberWriter:
    """Creates members under ``root`` through directory descriptors that never follow a symlink."""

    def __init__(self, root: Path, label: str, modes: tuple[int, int]) -> None:
        self.label = label
        self.file_mode, self.dir_mode = modes
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

    def write(self, archive: TarReader, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
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
                os.fchmod(fd, self.file_mode)  # exactly the configured mode: no set-id, no execute bits
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


def _copy_range(source: int, target: int, offset: int, size: int) -> None:
    """Copy ``size`` bytes at ``offset`` of ``source`` in the kernel, with a read/write fallback (other
    platforms, or filesystems that refuse it)."""
    end = offset + size
    kernel_copy = getattr(os, "copy_file_range", None)  # Linux only: macOS and the BSDs copy through memory
    while offset < end:
        count = -1
        if kernel_copy is not None:
            try:
                count = kernel_copy(source, target, min(end - offset, 1 << 30), offset_src=offset)
            except OSError as exc:
                if exc.errno not in _NO_COPY_RANGE:
                    raise
                kernel_copy = None
        if count < 0:
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
