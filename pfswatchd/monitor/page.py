"""The status page at ``/``: plain HTML made on the server from the latest snapshot.

No script, no style sheet or font from elsewhere, no build step: it works on an air-gapped data host
and in any browser, and refreshes itself (``<meta http-equiv="refresh">``).  It shows the alerts, a
visit x camera grid coloured by state (a failed camera's reason on hover), the recent errors, the
archives in progress and the ingest rate over the last hours as a small inline SVG bar plot.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pfswatchd.files.cameras import ordered
from pfswatchd.monitor.snapshot import RATE_BUCKET, Snapshot
from pfswatchd.monitor.visits import MISSING, VisitSummary

REFRESH = 10  # seconds
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fff}
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse}td,th{padding:2px 6px;border:1px solid #ccc;text-align:center}
th{background:#f4f4f4}td.left,th.left{text-align:left}
.ingested{background:#4caf50;color:#fff}.pending{background:#ffc107}.failed{background:#e53935;color:#fff}
.missing{background:#eee;color:#999}.alert{background:#fff3cd;border:1px solid #e0b000;padding:4px 8px;margin:4px 0}
.ok{color:#2e7d32}.small{color:#666;font-size:.9em}svg{background:#fafafa;border:1px solid #ddd}
"""


def render(snap: Snapshot, now: float | None = None) -> str:
    now = time.time() if now is None else now
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH}">',
        "<title>pfswatchd status</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>pfswatchd <span class=\"small\">{escape(snap.instance)}</span></h1>",
        f'<p class="small">as of {_clock(snap.taken_at)} UTC; this page reloads every {REFRESH} s. '
        + escape(", ".join(f"{n} {state}" for state, n in sorted(snap.counts.items()) if n) or "no files yet")
        + "</p>",
        _alerts(snap),
        _grid(snap.visits),
        _rate(snap.rate),
        _errors(snap.recent_errors),
        _archives(snap.archives_active, now),
        "</body></html>",
    ]
    return "\n".join(parts)


def _alerts(snap: Snapshot) -> str:
    if not snap.alerts:
        return '<p id="alerts" class="ok">No alerts.</p>'
    rows = []
    for alert in snap.alerts:
        detail = "".join(f"<li>{escape(item)}</li>" for item in alert.items)
        rows.append(f'<div class="alert" data-alert="{escape(alert.name)}"><b>{escape(alert.name)}</b>: '
                    f"{escape(alert.message)}<ul>{detail}</ul></div>")
    return '<div id="alerts">' + "".join(rows) + "</div>"


def _grid(visits: Sequence[VisitSummary]) -> str:
    if not visits:
        return '<h2>Visits</h2><p id="visits">No visits yet.</p>'
    cameras = ordered(name for summary in visits for name in summary.cameras)
    head = "".join(f"<th>{escape(c)}</th>" for c in cameras)
    rows = []
    for summary in visits:
        cells = []
        for name in cameras:
            cell = summary.cameras.get(name)
            expected = name in summary.expected
            if cell is None:
                cells.append('<td class="none"></td>')
                continue
            state = cell.state if (expected or cell.state != MISSING) else "none"
            title = f"{name}: {cell.state}" + (f" - {cell.reason}" if cell.reason else "")
            if not expected:
                title += " (not expected)"
            cells.append(f'<td class="cell {state}" data-visit="{summary.visit}" data-camera="{escape(name)}" '
                         f'data-state="{escape(cell.state)}" title="{escape(title)}">{_mark(cell.state)}</td>')
        config = summary.pfsconfig
        config_title = f"pfsConfig: {config.state}" + (f" - {config.reason}" if config.reason else "")
        hook = summary.hook.get("state", "")
        status = "complete" if summary.complete else "missing " + ", ".join(summary.missing)
        rows.append(
            f'<tr data-visit="{summary.visit}"><td class="left">{summary.visit}</td>'
            + "".join(cells)
            + f'<td class="cell {config.state}" data-visit="{summary.visit}" data-camera="pfsConfig" '
              f'data-state="{escape(config.state)}" title="{escape(config_title)}">{_mark(config.state)}</td>'
            + f'<td class="left small">{escape(status)}</td><td class="small">{escape(str(hook))}</td></tr>')
    return ('<h2>Visits</h2><p class="small">green ingested, yellow pending, red failed (hover for the reason), '
            'grey missing; expected cameras from '
            + escape(", ".join(sorted({s.expected_from for s in visits})))
            + '</p><table id="visits"><tr><th class="left">visit</th>' + head
            + '<th>pfsConfig</th><th class="left">status</th><th>hook</th></tr>' + "".join(rows) + "</table>")


def _mark(state: str) -> str:
    return {"ingested": "&#10003;", "pending": "&hellip;", "failed": "&#10007;", MISSING: "&ndash;"}.get(state, "")


def _rate(series: Sequence[tuple[float, int]]) -> str:
    if not series:
        return ""
    width, height, pad = 480, 90, 18
    peak = max(count for _, count in series) or 1
    step = (width - 2) / len(series)
    bars = []
    for i, (start, count) in enumerate(series):
        h = (height - pad) * count / peak
        bars.append(f'<rect x="{1 + i * step:.1f}" y="{height - pad - h:.1f}" width="{max(step - 1, 1):.1f}" '
                    f'height="{h:.1f}" fill="#4caf50"><title>{_clock(start)}: {count} files</title></rect>')
    hours = len(series) * RATE_BUCKET / 3600
    total = sum(count for _, count in series)
    label = (f'<text x="2" y="{height - 4}" font-size="11" fill="#666">-{hours:g} h</text>'
             f'<text x="{width - 30}" y="{height - 4}" font-size="11" fill="#666">now</text>'
             f'<text x="2" y="11" font-size="11" fill="#666">{peak} / {RATE_BUCKET / 60:g} min</text>')
    return (f"<h2>Ingest rate</h2><p class=\"small\">{total} files ingested in the last {hours:g} hours</p>"
            f'<svg id="rate" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">' + "".join(bars) + label + "</svg>")


def _errors(errors: Sequence[Mapping[str, Any]]) -> str:
    if not errors:
        return '<h2>Recent errors</h2><p id="errors" class="ok">None.</p>'
    rows = "".join(
        f'<tr><td class="left">{escape(str(e["path"]))}</td><td>{escape(str(e["state"]))}</td>'
        f'<td>{escape(str(e["error_kind"]))}</td><td class="left">{escape(str(e["error"] or ""))}</td></tr>'
        for e in errors)
    return ('<h2>Recent errors</h2><table id="errors"><tr><th class="left">file</th><th>state</th><th>kind</th>'
            '<th class="left">reason</th></tr>' + rows + "</table>")


def _archives(active: Sequence[Mapping[str, Any]], now: float) -> str:
    if not active:
        return '<h2>Archives in progress</h2><p id="archives" class="ok">None.</p>'
    rows = "".join(
        f'<tr><td class="left">{escape(str(a["path"]))}</td><td>{escape(str(a["state"]))}</td>'
        f'<td>{now - float(a["seen_at"]):.0f} s</td></tr>' for a in active)
    return ('<h2>Archives in progress</h2><table id="archives"><tr><th class="left">archive</th><th>state</th>'
            "<th>since</th></tr>" + rows + "</table>")


def _clock(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(moment))
