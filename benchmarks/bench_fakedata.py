"""``pfswatchd fake-data``: a night of visits written by restamping templates, against the per-file writers.

Times ``fakedata.make_visits`` for ``--visits`` visits (340 by default: 2,380 files, a busy night)
next to two references measured in the same run: the per-file astropy writers (``write_pfsconfig``,
``write_pfsa``, ``write_pfsb``, what make_visits did before) for the first ``--reference-visits``
visits, extrapolated per visit, and ``cp -r`` of the written night (the bytes alone).  Then the CLI
itself, ``pfswatchd fake-data DIR --visits N``, interpreter start included.

Usage: python benchmarks/bench_fakedata.py [--visits 340] [--reference-visits 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astropy.time import Time  # noqa: E402

from pfswatchd import fakedata  # noqa: E402
from pfswatchd.fakedata.configs import _fibres  # noqa: E402
from pfswatchd.fakedata.night import DITHERS, PROPOSALS  # noqa: E402


def per_file_writers(root: Path, visits: int) -> float:
    """The night of ``visits`` visits as make_visits wrote it before: every file with astropy."""
    began = time.perf_counter()
    base = root / "raw" / "2025-05-01"
    mjd0 = Time("2025-05-01", scale="utc").mjd + 0.25
    for k in range(visits):
        visit, mjd = 100 + k, mjd0 + k * 20 / 1440
        fibres = _fibres(visit, 12, PROPOSALS, 0)
        design = fakedata.design_id_for(fibres["fiberId"], fibres["ra"], fibres["dec"])
        created = Time(mjd - 2 / 1440, format="mjd", scale="utc").strftime("%Y-%m-%dT%H:%M:%S")
        fakedata.write_pfsconfig(base / "pfsConfig" / fakedata.pfsconfig_filename(design, visit), visit=visit,
                                 extra_cards={"DATE-OBS": created})
        for spectrograph in (1, 2):
            common = dict(visit=visit, spectrograph=spectrograph, pfs_design_id=design, mjd=mjd,
                          dither_mm=DITHERS[k % 3])
            for arm in ("b", "r"):
                fakedata.write_pfsa(base / "sps" / fakedata.raw_filename("S", "A", visit, spectrograph, arm), arm=arm,
                                    **common)
            fakedata.write_pfsb(base / "ramps" / fakedata.raw_filename("S", "B", visit, spectrograph, "n"), **common)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=340)
    parser.add_argument("--reference-visits", type=int, default=10)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-fakedata-") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        paths = fakedata.make_visits(work / "night", visits=args.visits)
        night = time.perf_counter() - began
        size = sum(p.stat().st_size for p in paths) / 2**20
        began = time.perf_counter()
        subprocess.run(["cp", "-r", str(work / "night"), str(work / "copy")], check=True)
        copy = time.perf_counter() - began
        reference = per_file_writers(work / "reference", args.reference_visits)
        began = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "pfswatchd"), "fake-data", str(work / "cli"),
                        "--visits", str(args.visits)], check=True, capture_output=True)
        cli = time.perf_counter() - began
    per_visit = reference / args.reference_visits
    print(f"{args.visits} visits, {len(paths)} files, {size:.0f} MB")
    print(f"  make_visits (templates restamped) {night:7.2f} s   {night / args.visits * 1000:6.1f} ms/visit")
    print(f"  per-file astropy writers          {per_visit * args.visits:7.2f} s   {per_visit * 1000:6.1f} ms/visit "
          f"(measured on {args.reference_visits} visits)")
    print(f"  cp -r of the written night        {copy:7.2f} s")
    print(f"  pfswatchd fake-data --visits {args.visits}  {cli:7.2f} s   (interpreter start and imports included)")


if __name__ == "__main__":
    main()
