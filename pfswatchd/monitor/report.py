"""``pfswatchd status --visits`` and the alert lines of ``pfswatchd status``, read from the ledger.

The visits are summarised from their files at the moment of the command (monitor/visits.py, as the
service does), so they are right also when no service runs (after ``ingest-raws``); the hook's state
comes from the visits table the service keeps.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from pfswatchd.config import MonitorConfig
from pfswatchd.monitor import alerts
from pfswatchd.monitor.tracker import latest
from pfswatchd.monitor.visits import VisitSummary
from pfswatchd.state.ledger import Ledger


def alert_report(ledger: Ledger, limits: MonitorConfig) -> list[dict[str, Any]]:
    return [{"alert": a.name, "count": a.count, "message": a.message, "items": list(a.items)}
            for a in alerts.evaluate(ledger, limits)]


def alert_lines(report: list[dict[str, Any]]) -> list[str]:
    lines = []
    for alert in report:
        lines.append(f"ALERT {alert['alert']}: {alert['message']}")
        lines.extend(f"  {item}" for item in alert["items"])
    return lines


def show_visits(ledger: Ledger, limits: MonitorConfig, out: TextIO, *, as_json: bool, limit: int) -> None:
    """The ``limit`` newest visits, newest first: cameras and their states, pfsConfig, what is missing, hook."""
    visits = latest(ledger, limit, limits.default_cameras)
    if as_json:
        json.dump({"visits": [summary.as_json() for summary in visits]}, out, sort_keys=True)
        out.write("\n")
        return
    if not visits:
        out.write("no visits yet\n")
    for summary in visits:
        out.write(_line(summary) + "\n")


def _line(summary: VisitSummary) -> str:
    state = "complete" if summary.complete else "incomplete"
    cameras = " ".join(f"{name}:{cell.state}" for name, cell in summary.cameras.items())
    line = (f"visit {summary.visit} {summary.instrument or '?'} {state}; {cameras}; "
            f"pfsConfig:{summary.pfsconfig.state}; expected from {summary.expected_from}")
    if not summary.complete:
        line += f"; missing {summary.describe_missing()}"
    if summary.hook.get("state"):
        line += f"; hook {summary.hook['state']}"
        if summary.hook.get("exit") is not None:
            line += f" (exit {summary.hook['exit']})"
    return line
