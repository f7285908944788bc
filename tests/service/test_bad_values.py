"""One bad value is one file's reason: the rest of its batch is ingested, in the service and the one-shot commands.

Each bad raw or pfsConfig below once made every step of the service fail (``step_failed`` with a
traceback, the good files of the batch left ``ingesting``) and the one-shot command stop with
``internal error: ScaleValueError`` naming no file.  Every exception while a file is planned, placed or
recorded is now that file's one-line reason (which file, what was wrong, what was expected).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

from conftest import write_config, write_raw
from harness import Daemon
from pfswatchd.butler import repo

BIN = Path(sys.executable).parent

# Raws: cards set on a good frame -> a word the reason must hold (None: ingested, as obs_pfs does).
BAD_RAWS: dict[str, tuple[str, dict, str | None]] = {
    "mjd_zero": ("b", {"MJD-STR": 0.0}, "MJD-STR"),
    "mjd_far": ("b", {"MJD-STR": 1e12}, "MJD-STR"),  # ERFA's "unacceptable date"
    "mjd_after_2100": ("b", {"MJD-STR": 95000.0}, "MJD-STR"),  # the butler's Timespan refused it
    "exptime_huge": ("r", {"EXPTIME": 1e300}, "EXPTIME"),
    "exptime_past_2100": ("r", {"EXPTIME": 1e10}, "EXPTIME"),
    "timesys_local": ("b", {"TIMESYS": "LOCAL"}, "TIMESYS"),  # ScaleValueError: no conversion to TAI
    "timesys_unknown": ("b", {"TIMESYS": "GPS"}, "TIMESYS"),
    "irp_ratio_huge": ("n", {"W_H4IRPN": 1e300}, "irp_ratio"),  # int(1e300) did not fit the column
    "darktime_text": ("b", {"DARKTIME": "abc"}, None),  # obs_pfs: dark_time NULL
}
FIRST_BAD = 700
GOOD_VISITS = (800, 801)


def _bad_configs(folder: Path) -> dict[Path, str]:
    """pfsConfigs of the good visits whose CONFIG table is broken -> a word the reason must hold."""
    made = {}

    def rewrite(visit: int, change) -> Path:
        path = write_config(folder, visit=visit)
        with fits.open(path) as hdul:
            hdus = change(fits.HDUList([hdu.copy() for hdu in hdul]))
            hdus.writeto(path, overwrite=True)
        return path

    def no_cat_id(hdus):
        table = hdus["CONFIG"]
        columns = fits.ColDefs([c for c in table.columns if c.name != "catId"])
        hdus[1] = fits.BinTableHDU.from_columns(columns, header=table.header, name="CONFIG")
        return hdus

    def nan_cat_id(hdus):
        table = hdus["CONFIG"]
        values = np.array(table.data["catId"], dtype=float)
        values[1] = np.nan
        columns = fits.ColDefs([c if c.name != "catId" else fits.Column("catId", "D", array=values)
                                for c in table.columns])
        hdus[1] = fits.BinTableHDU.from_columns(columns, header=table.header, name="CONFIG")
        return hdus

    def image_config(hdus):
        hdus[1] = fits.ImageHDU(np.zeros((4, 4), dtype=np.int16), name="CONFIG")
        return hdus

    made[rewrite(GOOD_VISITS[0], no_cat_id)] = "catId"
    made[rewrite(GOOD_VISITS[1], nan_cat_id)] = "catId"
    made[rewrite(802, image_config)] = "CONFIG"
    return made


def _corpus(folder: Path) -> tuple[dict[Path, str | None], list[Path]]:
    """(bad raws and pfsConfigs -> expected word, good raws)."""
    bad: dict[Path, str | None] = {}
    for offset, (arm, cards, word) in enumerate(BAD_RAWS.values()):
        path = write_raw(folder / "sps", visit=FIRST_BAD + offset, arm=arm, extra_cards=cards)
        bad[path] = word
    good = [write_raw(folder / "sps", visit=visit, arm=arm, spectrograph=spectrograph)
            for visit in (*GOOD_VISITS, 802) for arm in ("b", "r") for spectrograph in (1, 2)]
    bad.update(_bad_configs(folder / "pfsConfig"))
    return bad, good


def _check_reason(path: Path, word: str, reason: str) -> None:
    assert "\n" not in reason and "Traceback" not in reason, reason
    assert path.name in reason and word in reason and "expected" in reason, (path.name, reason)


def test_the_service_fails_each_bad_value_alone_and_ingests_the_rest(tmp_path):
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": "link", "retry_initial": 0.2, "batch_size": 500})
    bad, good = _corpus(tmp_path / "src")
    daemon.start()
    # One rename of the whole tree: every file is in the same first batch.
    staging = tmp_path / "svc" / "staging"
    os.rename(tmp_path / "src", staging)
    os.rename(staging, daemon.incoming / "raw")
    refused = [path for path, word in bad.items() if word is not None]
    total = len(bad) + len(good)
    status = daemon.wait_until(
        lambda s: sum(s["counts"].get(k, 0) for k in ("ingested", "failed", "quarantined")) >= total,
        timeout=120, what="every file ingested or failed")
    files = {Path(f["path"]).name: f for f in daemon.status()["files"]}
    for path in good + [p for p, word in bad.items() if word is None]:
        assert files[path.name]["state"] == "ingested", files[path.name]
    for path in refused:
        entry = files[path.name]
        assert entry["state"] == "quarantined" and entry["error_kind"] == "bad_header", entry
        _check_reason(path, bad[path], entry["error"])
    assert status["counts"].get("ingesting", 0) == 0
    assert daemon.events("step_failed") == [] and "Traceback" not in daemon.log()
    assert len(daemon.datasets()) == len(good) + 1  # the raw with a text DARKTIME too
    assert daemon.stop() == 0


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "pfswatchd"), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=os.environ)


def test_the_one_shot_commands_fail_each_bad_value_alone_and_ingest_the_rest(tmp_path):
    bad, good = _corpus(tmp_path / "src")
    root = tmp_path / "repo"
    repo.create(root)
    raws = _run("ingest-raws", root, tmp_path / "src" / "sps")
    configs = _run("ingest-pfsconfig", root, "PFS", "PFS/raw/pfsConfig", tmp_path / "src" / "pfsConfig")
    for result in (raws, configs):
        assert result.returncode == 1, result.stdout + result.stderr
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    lines = {line.split(": ", 1)[0].split(" ", 1)[1]: line for line in (raws.stderr + configs.stderr).splitlines()
             if line.startswith("FAILED ")}
    for path, word in bad.items():
        if word is None:
            assert str(path) not in lines, lines[str(path)]
            continue
        line = lines[str(path)]
        assert "[bad_header]" in line, line
        _check_reason(path, word, line)
    ingested = len(good) + sum(1 for word in bad.values() if word is None)
    failed = sum(1 for path, word in bad.items() if word is not None and "sps" in path.parts)
    assert f": {ingested} ingested, " in raws.stdout and f", {failed} failed" in raws.stdout, raws.stdout
