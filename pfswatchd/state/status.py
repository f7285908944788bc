"""``pfswatchd status`` and ``pfswatchd retry``: what the ledger says, for operators."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pfswatchd.state import quarantine
from pfswatchd.state.ledger import ArchiveState, Ledger
from pfswatchd.state.ledgerview import FileFilter, LedgerView, view

RECENT_ERRORS = 10
RECENT_ARCHIVES = 10  # the text lists archives still in progress, and this many finished ones
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: a duration back from now (``90s``, ``30m``, ``6h``, ``2d``), an ISO 8601 date or
    time (local time unless it names a zone), or Unix seconds.  ValueError says what was expected."""
    now = time.time() if now is None else now
    value = text.strip()
    if value and value[-1].lower() in _UNITS:
        with contextlib.suppress(ValueError):
            return now - float(value[:-1]) * _UNITS[value[-1].lower()]
    with contextlib.suppress(ValueError):
        return float(value)
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a duration (90s, 30m, 6h, 2d), an ISO 8601 date or "
                         "time (2025-03-01, 2025-03-01T18:00) or Unix seconds") from None


def collect(ledger: Ledger, wanted: FileFilter | None = None, now: float | None = None) -> dict[str, Any]:
    """What ``status --json`` prints, as one object held in memory (for tests and scripts with a
    small ledger; the command itself streams, see :func:`show`)."""
    now = now or time.time()
    with view(ledger.engine) as snapshot:
        data = _summary(snapshot, now)
        data["files"] = list(snapshot.files(wanted))
    return data


def _summary(snapshot: LedgerView, now: float) -> dict[str, Any]:
    return {
        "counts": snapshot.counts(),
        "archives": snapshot.archives(),
        "oldest_pending": snapshot.oldest_pending(now),
        "recent_errors": snapshot.recent_errors(RECENT_ERRORS),
        "recent_warnings": snapshot.recent_warnings(RECENT_ERRORS),
    }


def show(ledger: Ledger, out: TextIO, *, as_json: bool, wanted: FileFilter | None = None,
         extra: dict[str, Any] | None = None) -> None:
    """Print the status: text, or one JSON object whose ``files`` come last, one per line, written as
    they are read (memory does not grow with the ledger).  ``wanted`` narrows the files listed; the
    counts are always those of the whole ledger.  ``extra`` keys (the monitor's alerts) join the JSON."""
    wanted = wanted or FileFilter()
    with view(ledger.engine) as snapshot:
        data = {**_summary(snapshot, time.time()), **(extra or {})}
        if as_json:
            _write_json(data, snapshot.files(wanted), out)
        else:
            _write_text(data, out)
            if wanted.narrowed:
                out.write("files:\n")
                for item in snapshot.files(wanted):
                    line = f"  {item['state']:11s} {item['path']}"
                    if item["error_kind"]:
                        line += f": [{item['error_kind']}] {item['error']}"
                    out.write(line + "\n")


def _write_json(data: dict[str, Any], listed: Iterable[dict[str, Any]], out: TextIO) -> None:
    head = json.dumps(data, sort_keys=True)
    out.write(head[:-1] + ', "files": [')
    separator = "\n"
    for item in listed:
        out.write(separator + json.dumps(item, sort_keys=True))
        separator = ",\n"
    out.write("\n]}\n")


def _write_text(data: dict[str, Any], out: TextIO) -> None:
    counts = data["counts"]
    total = sum(counts.values())
    out.write(f"{total} files: " + ", ".join(f"{n} {state}" for state, n in counts.items() if n) + "\n")
    oldest = data["oldest_pending"]
    if oldest:
        out.write(f"oldest pending: {oldest['path']} ({oldest['state']}, {oldest['age_seconds']:.1f} s)\n")
    archives = data["archives"]
    finished = [a for a in archives if a["state"] in _ARCHIVE_DONE]
    shown = [a for a in archives if a["state"] not in _ARCHIVE_DONE or a in finished[-RECENT_ARCHIVES:]]
    if len(shown) < len(archives):
        out.write(f"{len(archives) - len(shown)} older finished archives not shown (status --json lists all)\n")
    for archive in shown:
        files = archive["files"]
        done = files.get("ingested", 0) + files.get("duplicate", 0)
        line = f"archive {archive['path']}: {archive['state']}"
        if archive["published"] is not None:
            line += f", {archive['published']} files published, {done} ingested"
        if archive["failed"]:
            line += f", {archive['failed']} failed checksum"
        if archive["error"]:
            line += f" [{archive['error_kind']}] {archive['error']}"
        out.write(line + "\n")
        if archive["instructions"]:
            out.write(f"  operator: {archive['instructions']}\n")
    if data["recent_errors"]:
        out.write("recent errors:\n")
        for error in data["recent_errors"]:
            out.write(f"  {error['state']:11s} {error['path']}: [{error['error_kind']}] {error['error']}\n")
    if data["recent_warnings"]:
        out.write("recent warnings (ingested):\n")
        for warning in data["recent_warnings"]:
            out.write(f"  {warning['path']}: [{warning['error_kind'] or 'warning'}] {warning['error']}\n")


_ARCHIVE_DONE = frozenset({ArchiveState.DONE.value, ArchiveState.FAILED.value, ArchiveState.QUARANTINED.value})


def retry(ledger: Ledger, *, kinds: list[str] | None, paths: list[str] | None, out: TextIO) -> int:
    """Re-queue failed and quarantined files (moving quarantined ones back); return how many."""
    rows = ledger.retry(kinds=kinds, paths=[str(Path(p).absolute()) for p in paths] if paths else None)
    for row in rows:
        # A quarantine announced but not made (a kill came first) left the file where it was.
        if row["quarantine_path"] and os.path.lexists(row["quarantine_path"]):
            back = quarantine.release(Path(row["quarantine_path"]), Path(row["path"]))
            if str(back) != row["path"]:
                ledger.move_path(row["path"], str(back))
        out.write(f"retry {row['path']} (was {row['state']}: {row['error_kind']})\n")
    out.write(f"{len(rows)} files queued again\n")
    return len(rows)
