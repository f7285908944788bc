"""The completion hook: a configured program run once for each visit that becomes complete.

An argument list, never a shell: ``{instrument}`` and ``{visit}`` in an argument are replaced by the
visit's data ID (``str.format`` with only those fields, checked when the configuration is read).  The
program gets the service's environment plus PFSWATCHD_INSTRUMENT, PFSWATCHD_VISIT and PFSWATCHD_REPO,
runs in its own process group without blocking the main loop (it is polled), and is killed with its
group after ``timeout`` seconds.  Its outcome (ok, failed with the exit code, timeout) and the end of its
output go to the ledger and the log.  The ledger's due -> running claim (state/visitledger.py) makes
sure only one instance runs it, once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pfswatchd.state.ledger import Ledger
from pfswatchd.state.visitledger import HOOK_INTERRUPTED

TAIL = 2000  # characters of output kept in the ledger


@dataclass(slots=True)
class _Running:
    visit: int
    instrument: str
    process: subprocess.Popen[bytes]
    output: IO[bytes]
    started: float  # monotonic
    deadline: float


class HookRunner:
    def __init__(self, ledger: Ledger, command: Sequence[str], *, timeout: float, parallel: int, repo: Path,
                 log: Any) -> None:
        self.ledger = ledger
        self.command = tuple(command)
        self.timeout = timeout
        self.parallel = parallel
        self.repo = repo
        self.log = log
        self.running: dict[int, _Running] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.command)

    def tick(self) -> None:
        """Reap finished hooks, kill overdue ones, start due ones (never waits)."""
        now = time.monotonic()
        for item in list(self.running.values()):
            code = item.process.poll()
            if code is None and now >= item.deadline:
                _kill_group(item.process.pid)
                item.process.wait()
                self._finish(item, "timeout", None, f"killed after {self.timeout:g} s")
            elif code is not None:
                self._finish(item, "ok" if code == 0 else "failed", code, "")
        free = self.parallel - len(self.running)
        if not self.enabled or free <= 0:
            return
        for record in self.ledger.due_hooks(free):
            if self.ledger.claim_hook(record["visit"], time.time()):
                self._start(int(record["visit"]), record["instrument"] or "")

    def close(self) -> None:
        """At shutdown: hooks still running are killed and recorded interrupted (never run twice)."""
        for item in list(self.running.values()):
            _kill_group(item.process.pid)
            item.process.wait()
            self._finish(item, HOOK_INTERRUPTED, None, "the service stopped while the hook ran; not run again")

    def arguments(self, instrument: str, visit: int) -> list[str]:
        fields = {"instrument": instrument, "visit": str(visit)}
        return [arg.format_map(fields) for arg in self.command]

    def _start(self, visit: int, instrument: str) -> None:
        args = self.arguments(instrument, visit)
        env = {**os.environ, "PFSWATCHD_INSTRUMENT": instrument, "PFSWATCHD_VISIT": str(visit),
               "PFSWATCHD_REPO": str(self.repo)}
        output = tempfile.TemporaryFile()  # noqa: SIM115 - kept open while the hook runs, closed in _finish
        try:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=output,  # noqa: S603 - no shell
                                       stderr=subprocess.STDOUT, env=env, start_new_session=True, close_fds=True)
        except OSError as exc:
            output.close()
            reason = f"cannot start {args[0]}: {exc.strerror or exc}"
            self.ledger.finish_hook(visit, "failed", None, reason, time.time())
            self.log.error("visit_hook_failed", visit=visit, instrument=instrument, command=args, reason=reason)
            return
        now = time.monotonic()
        self.running[visit] = _Running(visit, instrument, process, output, now, now + self.timeout)
        self.log.info("visit_hook_started", visit=visit, instrument=instrument, command=args, pid=process.pid)

    def _finish(self, item: _Running, state: str, code: int | None, note: str) -> None:
        del self.running[item.visit]
        item.output.seek(0, os.SEEK_END)
        size = item.output.tell()
        item.output.seek(max(0, size - TAIL))
        tail = item.output.read().decode("utf-8", "replace")
        item.output.close()
        _kill_group(item.process.pid)  # anything it left behind in its group
        text = "\n".join(part for part in (note, tail.strip()) if part)
        self.ledger.finish_hook(item.visit, state, code, text, time.time())
        fields = dict(visit=item.visit, instrument=item.instrument, outcome=state, exit_code=code,
                      seconds=round(time.monotonic() - item.started, 3))
        lines = tail.strip().splitlines()
        if state == "ok":
            self.log.info("visit_hook_done", **fields)
        else:
            self.log.warning("visit_hook_failed", **fields, reason=note or (lines[-1] if lines else ""))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
