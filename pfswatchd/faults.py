"""Fault-injection points that only tests enable: make a race happen on purpose, not by luck.

A test sets ``PFSWATCHD_FAULT=<point>`` (and ``PFSWATCHD_FAULT_MARKER=<file>``) in the environment of
the command or service it starts.  When the code reaches that point it creates the marker file and
pauses there (up to ``PFSWATCHD_FAULT_SECONDS``, 30 by default, or until the caller's ``until()``
says so), so that the test can send a signal or change the disk at exactly that moment.  Without
the variable every call is one dictionary lookup and returns at once.

``<point>:finalizer`` pauses inside a weakref finalizer instead of in ordinary code: this is how an
interrupt that lands while the interpreter runs a garbage-collection callback (where Python prints
``Exception ignored in ...`` and swallows a KeyboardInterrupt) is reproduced deterministically.

Points: ``forkserver.preload`` (the examiner's fork server imports its modules), ``oneshot.examined``
(a one-shot command examined a file), ``ingest.placed`` (a file was placed in the datastore, before
the registry transaction), ``ingest.registered`` (inside the registry transaction, before it commits),
``service.stopping`` (the service's shutdown begins), ``pipeline.new_folder`` (the service is about to
walk a folder just created, its watch placed), ``handover.records`` (the hand-over replaced the
datastore records, inside its transaction, before it commits), ``handover.committed`` (the hand-over
committed the records, before it replaces butler.yaml), ``watch.event`` (with :func:`fail`: the watchdog
observer thread raises on its first event and dies, as a bug or a RecursionError in it would),
``transfer.placing`` (a file is about to be linked or copied into the datastore, after it was
examined), ``pipeline.recording`` (a batch is in the registry, not yet in the ledger),
``pipeline.recorded`` (in the ledger too; with move, the sources are not removed yet),
``quarantine.moved`` (a file was moved to quarantine, its reason and its row not yet written),
``unpack.member`` (an archive member was written into its staging folder, the extraction not finished).
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path


def _never() -> object:
    return None


def pause(point: str, until: Callable[[], object] = _never) -> None:
    """Pause here if a test asked for ``point`` (see the module docstring)."""
    wanted = os.environ.get("PFSWATCHD_FAULT")
    if not wanted or wanted.split(":", 1)[0] != point:
        return
    if wanted.endswith(":finalizer"):
        class _Garbage:
            pass

        garbage = _Garbage()
        weakref.finalize(garbage, _hold, until)
        del garbage  # the finalizer runs now, as a garbage-collection callback would
    else:
        _hold(until)


class InjectedFault(RuntimeError):
    """Raised by :func:`fail` at the point a test named."""


def fail(point: str) -> None:
    """Raise InjectedFault here, once per run (the marker file), if a test asked for ``point``."""
    if os.environ.get("PFSWATCHD_FAULT") != point:
        return
    marker = os.environ.get("PFSWATCHD_FAULT_MARKER")
    if marker:
        if Path(marker).exists():
            return
        Path(marker).write_text(str(os.getpid()))
    raise InjectedFault(f"fault injected at {point}")


def _hold(until: Callable[[], object]) -> None:
    marker = os.environ.get("PFSWATCHD_FAULT_MARKER")
    if marker:
        if Path(marker).exists():  # pause once per run: the first time the point is reached
            return
        Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + float(os.environ.get("PFSWATCHD_FAULT_SECONDS", "30"))
    while time.monotonic() < deadline and not until():
        time.sleep(0.02)


PRELOAD_POINT = "forkserver.preload"


def preload() -> list[str]:
    """Modules for the examiner's fork server to preload: this one too when a test pauses it there."""
    return [__name__] if os.environ.get("PFSWATCHD_FAULT") == PRELOAD_POINT else []


if os.environ.get("PFSWATCHD_FAULT") == PRELOAD_POINT and sys.argv[:1] == ["-c"]:
    # Imported by the fork server, which runs as `python -c "from multiprocessing.forkserver import
    # main; ..."`: pause while it preloads, the moment when a Ctrl-C used to kill it.
    _hold(_never)
