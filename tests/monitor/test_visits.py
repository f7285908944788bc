"""A visit's summary from its ledger rows: each camera's state, what is missing, when it is complete."""

from __future__ import annotations

import json

from pfswatchd.monitor.visits import summarize

DEFAULT = ("b1", "r1", "n1")


def _row(path: str, state: str, kind: str = "raw_ccd", data_id: dict | None = None, error_kind: str | None = None,
         error: str | None = None, seen_at: float = 10.0) -> dict:
    return {"path": path, "state": state, "kind": kind, "visit": 5, "instrument": None,
            "data_id": json.dumps(data_id) if data_id else None, "error_kind": error_kind, "error": error,
            "seen_at": seen_at, "updated_at": seen_at, "ingested_at": None}


def test_without_a_pfsconfig_the_default_cameras_are_expected_and_the_visit_is_incomplete():
    summary = summarize(5, [_row("/in/PFSA00000511.fits", "ingested")], None, DEFAULT)
    assert summary.expected == DEFAULT and summary.expected_from == "default"
    assert {name: cell.state for name, cell in summary.cameras.items()} == {
        "b1": "ingested", "r1": "missing", "n1": "missing"}
    assert summary.missing == ["r1", "n1", "pfsConfig"] and not summary.complete
    assert summary.instrument == "PFS"  # from the name's site letter


def test_the_pfsconfigs_cameras_decide_and_a_duplicate_counts():
    record = {"expected": "b1,r1", "expected_from": "W_CAMMSK", "first_seen_at": 3.0, "instrument": "PFS",
              "hook_state": "ok", "hook_exit": 0}
    rows = [_row("/in/PFSA00000511.fits", "duplicate"),
            _row("/in/x/PFSA00000512.fits", "failed", error_kind="bad_header", error="no W_ENFCAZ"),
            _row("/in/PFSA00000512.fits", "ingested", data_id={"arm": "r", "spectrograph": 1}),  # the better one
            _row("/in/pfsConfig-0x0000000000000001-000005.fits", "ingested", kind="pfsconfig")]
    summary = summarize(5, rows, record, DEFAULT)
    assert summary.complete and summary.expected == ("b1", "r1")
    assert summary.first_seen_at == 3.0 and summary.hook == {"state": "ok", "exit": 0}


def test_failed_pending_and_unexpected_cameras_are_shown_with_reasons():
    record = {"expected": "b1,r1", "expected_from": "W_CAMMSK", "first_seen_at": 1.0}
    rows = [_row("/in/PFSA00000511.fits", "quarantined", error_kind="bad_header", error="no W_ENFCAZ"),
            _row("/in/PFSA00000512.fits", "pending"),
            _row("/in/PFSA00000521.fits", "ingested"),  # b2: not expected, shown all the same
            _row("/in/pfsConfig-0x0000000000000001-000005.fits", "waiting", kind="pfsconfig"),
            _row("/in/PFSA00000513.fits.md5", "ignored", kind="checksum")]
    summary = summarize(5, rows, record, DEFAULT)
    cells = summary.cameras
    assert (cells["b1"].state, cells["b1"].reason) == ("failed", "[bad_header] no W_ENFCAZ")
    assert cells["r1"].state == "pending" and cells["b2"].state == "ingested"
    assert summary.pfsconfig.state == "pending" and "waiting" in (summary.pfsconfig.reason or "")
    assert summary.missing == ["b1", "r1", "pfsConfig"]
    assert summary.describe_missing().startswith("b1 (failed: [bad_header] no W_ENFCAZ), r1 (pending)")
