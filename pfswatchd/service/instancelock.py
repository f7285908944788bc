"""Tell an operator that another pfswatchd already runs on the same ledger.

Several instances on one ledger are correct (claims keep every file to one of them; that is how
PostgreSQL set-ups scale out), but a second ``pfswatchd run`` with the same configuration is more
often a mistake: a forgotten terminal, a test run beside the systemd unit.  Each instance holds a
shared ``flock`` on ``<state.path>/pfswatchd.lock`` for its lifetime (the kernel drops it when the
process dies, even by SIGKILL); one that finds the lock held by someone else says so at start-up,
with the process ids written in the file, and then works on as usual.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from pfswatchd.processes import alive

NAME = "pfswatchd.lock"


class InstanceLock:
    def __init__(self, folder: Path) -> None:
        self.path = folder / NAME
        self._fd: int | None = None

    def acquire(self) -> list[int] | None:
        """Hold the lock; return the process ids of the other instances holding it, or None if alone."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._fd = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_SH)  # others hold it shared: this waits for no one
            others = [pid for pid in _pids(fd) if pid != os.getpid() and alive(pid)]
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, f"{os.getpid()}\n".encode())
            return others or [0]
        os.ftruncate(fd, 0)  # alone: earlier holders are gone
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        fcntl.flock(fd, fcntl.LOCK_SH)  # let later instances in, and let them see this one
        return None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _pids(fd: int) -> list[int]:
    data = os.pread(fd, 1 << 16, 0).decode(errors="replace")
    return [int(word) for word in data.split() if word.isdigit()]


