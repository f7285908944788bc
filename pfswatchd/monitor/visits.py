"""Visits as operators think of them: the cameras that arrived, their states, and what is missing.

A pure function of a visit's ledger rows and of the cameras it is expected to have (those its
pfsConfig declares, or a configured default set when it has none yet).  A visit is complete when every
expected camera and its pfsConfig are ingested (a duplicate counts: the data are in the repository).
The service's monitor and ``pfswatchd status --visits`` both summarise through here, so they agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pfswatchd.files.cameras import FROM_DEFAULT, camera, ordered
from pfswatchd.files.names import instrument_for_site, parse_name
from pfswatchd.model import FileKind
from pfswatchd.state.ledgerdb import FileState

# What the grid shows for a camera (or the pfsConfig).
INGESTED, PENDING, FAILED, MISSING = "ingested", "pending", "failed", "missing"
PFSCONFIG = "pfsConfig"
_GRID = {FileState.INGESTED.value: INGESTED, FileState.DUPLICATE.value: INGESTED,
         FileState.PENDING.value: PENDING, FileState.INGESTING.value: PENDING, FileState.WAITING.value: PENDING,
         FileState.FAILED.value: FAILED, FileState.QUARANTINED.value: FAILED}
_RANK = {INGESTED: 3, PENDING: 2, FAILED: 1}  # of several files for one camera, the best one counts
_RAWS = (FileKind.RAW_CCD.value, FileKind.RAW_NIR.value)


@dataclass(frozen=True, slots=True)
class Cell:
    state: str  # ingested | pending | failed | missing
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class VisitSummary:
    visit: int
    instrument: str | None
    expected: tuple[str, ...]
    expected_from: str  # W_CAMMSK | ARMS x fibres | default
    cameras: Mapping[str, Cell]  # every camera with a file, and every expected one (missing ones too)
    pfsconfig: Cell
    first_seen_at: float
    hook: Mapping[str, Any] = field(default_factory=dict)  # the hook's state, from the visits table

    @property
    def missing(self) -> list[str]:
        """Expected cameras not ingested, then ``pfsConfig`` if it is not: why the visit is not complete."""
        out = [name for name in self.expected if self.cameras[name].state != INGESTED]
        if self.pfsconfig.state != INGESTED:
            out.append(PFSCONFIG)
        return out

    @property
    def complete(self) -> bool:
        return not self.missing

    def describe_missing(self) -> str:
        """``r2 (failed: [bad_header] ...), n1 (missing), pfsConfig (pending)``."""
        parts = []
        for name in self.missing:
            cell = self.pfsconfig if name == PFSCONFIG else self.cameras[name]
            detail = cell.state if not cell.reason else f"{cell.state}: {cell.reason}"
            parts.append(f"{name} ({detail})")
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "visit": self.visit, "instrument": self.instrument, "complete": self.complete,
            "expected": list(self.expected), "expected_from": self.expected_from, "missing": self.missing,
            "cameras": {name: {"state": cell.state, "reason": cell.reason} for name, cell in self.cameras.items()},
            "pfsconfig": {"state": self.pfsconfig.state, "reason": self.pfsconfig.reason},
            "first_seen_at": self.first_seen_at, **{f"hook_{k}": v for k, v in self.hook.items()},
        }


def summarize(visit: int, rows: Iterable[Mapping[str, Any]], record: Mapping[str, Any] | None,
              default: Sequence[str]) -> VisitSummary:
    """The summary of one visit from its files' ledger rows and its visits-table record (or None)."""
    cells: dict[str, Cell] = {}
    config = Cell(MISSING)
    instrument = record.get("instrument") if record else None
    first_seen = float(record["first_seen_at"]) if record and record.get("first_seen_at") else None
    for row in rows:
        grid = _GRID.get(row["state"])
        if grid is None:
            continue  # ignored
        first_seen = row["seen_at"] if first_seen is None else min(first_seen, row["seen_at"])
        cell = Cell(grid, _reason(row))
        if row["kind"] == FileKind.PFSCONFIG.value:
            if _better(cell, config):
                config = cell
            continue
        if row["kind"] not in _RAWS:
            continue
        name = _camera(row)
        if name is None:
            continue
        instrument = instrument or row.get("instrument") or _instrument(row)
        if _better(cell, cells.get(name, Cell(MISSING))):
            cells[name] = cell
    expected_text = record.get("expected") if record else None
    if expected_text:
        expected = tuple(expected_text.split(","))
        source = str(record.get("expected_from") or "") if record else ""
    else:
        expected, source = tuple(ordered(default)), FROM_DEFAULT
    for name in expected:
        cells.setdefault(name, Cell(MISSING))
    hook = {key[5:]: record[key] for key in ("hook_state", "hook_exit", "hook_output", "hook_started_at",
                                             "hook_finished_at") if record and record.get(key) is not None}
    return VisitSummary(visit=visit, instrument=instrument, expected=expected, expected_from=source,
                        cameras={name: cells[name] for name in ordered(cells)}, pfsconfig=config,
                        first_seen_at=first_seen or 0.0, hook=hook)


def group_by_visit(rows: Iterable[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    """Rows of ingestible files by visit (the header's if recorded, else the name's)."""
    out: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        visit = row.get("visit")
        if visit is None:
            visit = parse_name(row["path"]).visit
        if visit is not None:
            out.setdefault(int(visit), []).append(row)
    return out


def _better(new: Cell, old: Cell) -> bool:
    return _RANK.get(new.state, 0) > _RANK.get(old.state, 0)


def _reason(row: Mapping[str, Any]) -> str | None:
    if row.get("error_kind"):
        return f"[{row['error_kind']}] {row.get('error') or ''}".strip()
    if row["state"] == FileState.WAITING.value:
        return "waiting for the visit's raws"
    return None


def _camera(row: Mapping[str, Any]) -> str | None:
    data_id = row.get("data_id")
    if data_id:
        values = json.loads(data_id) if isinstance(data_id, str) else data_id
        if values.get("arm") and values.get("spectrograph") is not None:
            return camera(str(values["arm"]), int(values["spectrograph"]))
    name = parse_name(row["path"])
    if name.arm and name.spectrograph is not None:
        return camera(name.arm, name.spectrograph)
    return None


def _instrument(row: Mapping[str, Any]) -> str | None:
    site = parse_name(row["path"]).site
    return instrument_for_site(site) if site else None
