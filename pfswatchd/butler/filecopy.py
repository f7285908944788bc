"""Copy a file's bytes at the kernel's speed, and compare two files, for the copying transfers.

``copy`` and ``move`` across filesystems write a full-size raw (12 MB for a CCD frame, 120 MB for a
NIR ramp) into the datastore.  Through a Python read/write loop that ran at a quarter of what ``cp``
does on the same files; here the kernel moves the bytes:

- ``copy_file_range`` (Linux >= 4.5): no copy through user space, and a reflink on XFS/Btrfs or a
  server-side copy on NFS 4.2 where the filesystem offers one;
- ``sendfile`` (Linux), when the two files are on filesystems ``copy_file_range`` cannot join
  (``EXDEV``, e.g. a tmpfs drop folder and a disk datastore);
- a read/write loop with one reused buffer everywhere else (macOS, BSD), the portable fallback.

:func:`same_bytes` maps both files and compares them with the C library's ``memcmp`` (no hash: the
bytes themselves are compared, at memory speed, and a source still changing while it was copied is
caught as well); where files cannot be mapped it reads them in blocks.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import sys
from collections.abc import Callable
from typing import cast

BLOCK = 2**20  # bytes per call (larger blocks read no faster: they fall out of the CPU caches)
WINDOW = 64 * 2**20  # bytes mapped at a time to compare two files (a multiple of mmap.ALLOCATIONGRANULARITY)
# Errors that mean "this kernel or this pair of filesystems cannot do it": try the next way.
_UNSUPPORTED = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP,
                          errno.EBADF, errno.EPERM})


def copy_data(source_fd: int, dest_fd: int) -> None:
    """Copy everything from ``source_fd``'s position to its end into ``dest_fd`` at its position."""
    if hasattr(os, "copy_file_range") and _kernel_copy(os.copy_file_range, source_fd, dest_fd):
        return
    if sys.platform.startswith("linux") and _kernel_copy(_sendfile, source_fd, dest_fd):
        return
    _loop_copy(source_fd, dest_fd)


def _sendfile(source_fd: int, dest_fd: int, count: int) -> int:
    return os.sendfile(dest_fd, source_fd, None, count)


def _kernel_copy(call: Callable[[int, int, int], int], source_fd: int, dest_fd: int) -> bool:
    """Copy with ``call(source, dest, count)``; False (nothing copied) when it is not supported here."""
    copied = 0
    while True:
        try:
            done = call(source_fd, dest_fd, BLOCK)
        except OSError as exc:
            if copied == 0 and exc.errno in _UNSUPPORTED:
                return False
            raise
        if done == 0:
            return True
        copied += done


def _loop_copy(source_fd: int, dest_fd: int) -> None:
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    while True:
        count = os.readv(source_fd, [buffer])
        if count == 0:
            return
        written = 0
        while written < count:
            written += os.write(dest_fd, view[written:count])


def same_bytes(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """True if the two files hold the same bytes (sizes first, then the contents)."""
    with open(first, "rb", buffering=0) as a, open(second, "rb", buffering=0) as b:
        size = os.fstat(a.fileno()).st_size
        if os.fstat(b.fileno()).st_size != size:
            return False
        if _MEMCMP is not None and size:
            try:
                return _mapped_equal(a.fileno(), b.fileno(), size, _MEMCMP)
            except (OSError, ValueError):  # a filesystem that cannot map files: read them instead
                pass
        return _read_equal(a.fileno(), b.fileno())


def _mapped_equal(a: int, b: int, size: int, memcmp: Callable[[int, int, int], int]) -> bool:
    """Compare two files of ``size`` bytes through memory maps, ``WINDOW`` bytes at a time, with the C
    library's memcmp: each page is read once, straight from the page cache (three times the speed of
    reading into buffers, on the machine the benchmarks ran on)."""
    for offset in range(0, size, WINDOW):
        length = min(WINDOW, size - offset)
        # ACCESS_COPY: a private mapping, which ctypes may point into; nothing is written to it.
        with mmap.mmap(a, length, access=mmap.ACCESS_COPY, offset=offset) as left, \
                mmap.mmap(b, length, access=mmap.ACCESS_COPY, offset=offset) as right:
            left_bytes = ctypes.c_char.from_buffer(left)
            right_bytes = ctypes.c_char.from_buffer(right)
            try:
                if memcmp(ctypes.addressof(left_bytes), ctypes.addressof(right_bytes), length) != 0:
                    return False
            finally:
                del left_bytes, right_bytes  # the maps cannot close while ctypes points into them
    return True


def _read_equal(a: int, b: int) -> bool:
    left, right = bytearray(BLOCK), bytearray(BLOCK)
    while True:
        got = _fill(a, left)
        if _fill(b, right) != got:
            return False
        if got < BLOCK:  # the last block: compare what was read
            return left[:got] == right[:got]
        if left != right:  # bytearray equality is one memcmp (a memoryview's is per element)
            return False


def _fill(fd: int, buffer: bytearray) -> int:
    """Read into ``buffer`` until it is full or the file ends; how many bytes were read."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        count = os.readv(fd, [view[filled:]])
        if count == 0:
            break
        filled += count
    return filled


def _libc_memcmp() -> Callable[[int, int, int], int] | None:
    """The C library's memcmp (Linux and macOS alike), or None where ctypes cannot reach it."""
    try:
        memcmp = ctypes.CDLL(None).memcmp
    except (OSError, AttributeError):
        return None
    memcmp.restype = ctypes.c_int
    memcmp.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return cast("Callable[[int, int, int], int]", memcmp)


_MEMCMP = _libc_memcmp()
