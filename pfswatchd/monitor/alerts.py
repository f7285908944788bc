"""Alerts: what has waited too long, read from the ledger with the configured limits.

- ``visits_incomplete``: a visit not complete ``visit_incomplete_after`` seconds after its first file
  was seen; each such visit is named with what it misses;
- ``pfsconfig_waiting``: pfsConfigs waiting for their visit's raws longer than ``waiting_after``;
- ``files_pending``: files seen longer than ``pending_after`` ago and still pending or being ingested;
- ``archives_stuck``: archives seen longer than ``archive_stuck_after`` ago and not extracted.

The service (monitor.py) turns them into log events, metrics and its systemd STATUS line;
``pfswatchd status`` prints the same list, so an operator without the endpoint sees them too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from pfswatchd.config import MonitorConfig
from pfswatchd.monitor.snapshot import Alert
from pfswatchd.state.ledger import FileState, Ledger

SHOWN = 5  # items named per alert


def evaluate(ledger: Ledger, limits: MonitorConfig, now: float | None = None) -> list[Alert]:
    now = time.time() if now is None else now
    alerts: list[Alert] = []
    if limits.visit_incomplete_after:
        before = now - limits.visit_incomplete_after
        count = ledger.incomplete_visit_count(before)
        if count:
            late = ledger.incomplete_visits(before, limit=SHOWN)
            alerts.append(Alert("visits_incomplete", count,
                                f"{count} visit(s) incomplete {limits.visit_incomplete_after:g} s after their "
                                "first file", tuple(describe_visit(row) for row in late)))
    for name, states, after, what in (
            ("pfsconfig_waiting", (FileState.WAITING,), limits.waiting_after, "pfsConfig(s) waiting for raws"),
            ("files_pending", (FileState.PENDING, FileState.INGESTING), limits.pending_after, "file(s) pending")):
        if not after:
            continue
        count, oldest = ledger.overdue_files(states, now - after, SHOWN)
        if count:
            alerts.append(Alert(name, count, f"{count} {what} longer than {after:g} s",
                                tuple(_describe_file(row, now) for row in oldest)))
    if limits.archive_stuck_after:
        count, oldest = ledger.overdue_archives(now - limits.archive_stuck_after, SHOWN)
        if count:
            alerts.append(Alert("archives_stuck", count, f"{count} archive(s) not extracted "
                                f"{limits.archive_stuck_after:g} s after they were seen",
                                tuple(_describe_file(row, now) for row in oldest)))
    return alerts


def describe_visit(record: Mapping[str, Any]) -> str:
    """``visit 123: missing r2 (failed: [bad_header] ...), pfsConfig (missing)``."""
    cameras = json.loads(record["cameras"]) if record.get("cameras") else {}
    missing = [name for name in (record.get("missing") or "").split(",") if name]
    parts = []
    for name in missing:
        state, reason = (cameras.get(name) or ["missing", None])[:2]
        parts.append(f"{name} ({state}: {reason})" if reason else f"{name} ({state})")
    return f"visit {record['visit']}: missing " + (", ".join(parts) or "nothing recorded yet")


def _describe_file(row: Mapping[str, Any], now: float) -> str:
    text = f"{row['path']} ({row['state']}, {now - float(row['seen_at']):.0f} s)"
    if row.get("error_kind"):
        text += f" [{row['error_kind']}] {row.get('error') or ''}"
    return text.strip()
