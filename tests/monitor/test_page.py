"""The status page in a real headless browser (Debian's chromium): the grid shows each camera's state.

Visits 700 (complete), 701 (r1 failed: a bad header), 702 (r1 missing) and 703 (b1 pending: still
being written).  The screenshot is written as a test artefact: the test prints where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

from monitoring import FAST, bad_header, drop, get, port, visit, visits

from harness import Daemon

ARTEFACTS = Path(os.environ.get("PFSWATCHD_ARTEFACTS", Path(tempfile.gettempdir()) / "pfswatchd-artefacts"))


class _Cells(HTMLParser):
    """{(visit, camera): (state, title)} of the grid's cells, and every URL the page would load."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[int, str], tuple[str, str]] = {}
        self.loads: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.add(tag)
        if tag == "td" and values.get("data-camera"):
            classes = (values.get("class") or "").split()
            self.cells[(int(values["data-visit"] or 0), values["data-camera"] or "")] = (
                next(c for c in classes if c != "cell"), values.get("title") or "")
        for key in ("src", "href"):
            if values.get(key):
                self.loads.append(values[key] or "")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium")
    assert browser, "Debian's chromium is not installed (scripts/test installs it)"
    profile = tempfile.mkdtemp(prefix="pfswatchd-chromium-")
    try:
        return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--no-first-run", f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_the_status_page_shows_each_cameras_state_in_a_real_browser(tmp_path):
    daemon = Daemon(tmp_path / "svc", monitor={**FAST, "http": {"enabled": True, "port": 0},
                                               "visit_incomplete_after": 1.0})
    daemon.start()
    src = tmp_path / "src"
    complete, failed, missing, pending = (visit(src, n) for n in (700, 701, 702, 703))
    bad_header(failed, "r1", 701)
    for files in (complete, failed):
        for path in files.values():
            drop(path, daemon.incoming)
    drop(missing["pfsConfig"], daemon.incoming)
    drop(missing["b1"], daemon.incoming)
    drop(pending["pfsConfig"], daemon.incoming)
    drop(pending["r1"], daemon.incoming)
    whole = pending["b1"].read_bytes()
    (daemon.incoming / pending["b1"].name).write_bytes(whole[: len(whole) // 2])  # still being written
    daemon.wait_until(lambda s: s["counts"].get("ingested", 0) == 9 and s["counts"].get("quarantined", 0) == 1,
                      timeout=90, what="the four visits")
    time.sleep(1.0)  # a look of the monitor after the last file
    assert visits(daemon)[700]["complete"]

    url = f"http://127.0.0.1:{port(daemon)}/"
    result = _chromium("--dump-dom", url)
    assert result.returncode == 0, result.stderr[-2000:]
    page = _Cells()
    page.feed(result.stdout)
    states = {key: state for key, (state, _) in page.cells.items()}
    assert states == {
        (700, "b1"): "ingested", (700, "r1"): "ingested", (700, "pfsConfig"): "ingested",
        (701, "b1"): "ingested", (701, "r1"): "failed", (701, "pfsConfig"): "ingested",
        (702, "b1"): "ingested", (702, "r1"): "missing", (702, "pfsConfig"): "ingested",
        (703, "b1"): "pending", (703, "r1"): "ingested", (703, "pfsConfig"): "ingested",
    }
    failed_title = page.cells[(701, "r1")][1]
    assert "bad_header" in failed_title and "W_ENFCAZ" in failed_title  # the reason, on hover
    assert not page.loads and "script" not in page.tags  # nothing fetched from anywhere: air-gap safe
    _, html = get(daemon, "/")
    assert 'http-equiv="refresh"' in html and "<svg" in html and "visits_incomplete" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "status-page.png"
    result = _chromium("--window-size=1100,900", f"--screenshot={shot}", url)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    print(f"status page screenshot: {shot}")
    assert daemon.stop() == 0
