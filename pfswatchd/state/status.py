"""``pfswatchd status`` and ``pfswatchd retry``: what the ledger says, for operators."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

from pfswatchd.state import quarantine
from pfswatchd.state.ledger import FileState, Ledger

RECENT_ERRORS = 10


def collect(ledger: Ledger, now: float | None = None) -> dict[str, Any]:
    """Everything ``status --json`` prints: counts, every tracked file, the oldest pending file, errors."""
    now = now or time.time()
    rows = ledger.rows()  # one snapshot: counts and files always agree
    counts = {state.value: 0 for state in FileState}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    files = []
    for row in rows:
        files.append({
            "path": row["path"],
            "state": row["state"],
            "kind": row["kind"],
            "data_id": json.loads(row["data_id"]) if row["data_id"] else None,
            "dataset_id": row["dataset_id"],
            "run": row["run"],
            "archive_id": row["archive_id"],
            "error_kind": row["error_kind"],
            "error": row["error"],
            "attempts": row["attempts"],
            "seen_at": row["seen_at"],
            "complete_at": row["complete_at"],
            "ingested_at": row["ingested_at"],
            "quarantine_path": row["quarantine_path"],
        })
    pending = [r for r in rows if r["state"] in (FileState.PENDING.value, FileState.INGESTING.value,
                                                  FileState.WAITING.value)]
    oldest = min(pending, key=lambda r: r["seen_at"], default=None)
    errors = sorted((r for r in rows if r["error_kind"] and r["state"] in (
        FileState.FAILED.value, FileState.QUARANTINED.value, FileState.PENDING.value)),
        key=lambda r: r["updated_at"], reverse=True)[:RECENT_ERRORS]
    archives = [{
        "path": row["path"],
        "state": row["state"],
        "dest": row["dest"],
        "members": row["members"],
        "published": row["published"],
        "failed": row["failed"],
        "stars_bundle": bool(row["stars_bundle"]),
        "instructions": row["instructions"],
        "error_kind": row["error_kind"],
        "error": row["error"],
        "files": row["files"],
    } for row in ledger.archive_rows()]
    return {
        "counts": counts,
        "files": files,
        "archives": archives,
        "oldest_pending": None if oldest is None else {
            "path": oldest["path"], "state": oldest["state"], "age_seconds": round(now - oldest["seen_at"], 3)},
        "recent_errors": [{"path": r["path"], "state": r["state"], "error_kind": r["error_kind"],
                           "error": r["error"]} for r in errors],
    }


def show(ledger: Ledger, out: TextIO, *, as_json: bool) -> None:
    data = collect(ledger)
    if as_json:
        json.dump(data, out, indent=None, sort_keys=True)
        out.write("\n")
        return
    counts = data["counts"]
    total = sum(counts.values())
    out.write(f"{total} files: " + ", ".join(f"{n} {state}" for state, n in counts.items() if n) + "\n")
    oldest = data["oldest_pending"]
    if oldest:
        out.write(f"oldest pending: {oldest['path']} ({oldest['state']}, {oldest['age_seconds']:.1f} s)\n")
    for archive in data["archives"]:
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


def retry(ledger: Ledger, *, kinds: list[str] | None, paths: list[str] | None, out: TextIO) -> int:
    """Re-queue failed and quarantined files (moving quarantined ones back); return how many."""
    rows = ledger.retry(kinds=kinds, paths=[str(Path(p).absolute()) for p in paths] if paths else None)
    for row in rows:
        if row["quarantine_path"]:
            back = quarantine.release(Path(row["quarantine_path"]), Path(row["path"]))
            if str(back) != row["path"]:
                ledger.move_path(row["path"], str(back))
        out.write(f"retry {row['path']} (was {row['state']}: {row['error_kind']})\n")
    out.write(f"{len(rows)} files queued again\n")
    return len(rows)
