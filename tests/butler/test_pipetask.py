"""A real ``pipetask run`` over a repository pfswatchd made and filled without obs_pfs.

The tasks (tests/pipelines/pfswatchd_shapes.py) have the PFS pipeline's connection shapes: ``raw`` per
visit and camera as input with the visit's ``pfsConfig`` as a prerequisite, one output per visit and
camera, and one per camera with no visit, as calibration products have.  On 84c55fd the per-camera
quanta failed with FileTemplateValidationError (its file templates had no per-camera key).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lsst.daf.butler import Butler

from conftest import classified, make_ingester
from pfswatchd import fakedata
from pfswatchd.butler import repo

BIN = Path(sys.executable).parent
PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
RUN = "u/pfswatchd/shapes/run1"
VISITS = (100, 101)
CAMERAS = [(arm, spectrograph) for spectrograph in (1, 2) for arm in "brn"]  # make_visits' default cameras


def test_pipetask_runs_every_quantum_and_writes_at_the_official_paths(pfs_repo, tmp_path):
    files = fakedata.make_visits(tmp_path / "data", visits=len(VISITS), first_visit=VISITS[0])
    with repo.open_butler(pfs_repo) as butler:
        outcomes = make_ingester(butler, pfs_repo, transfer="copy").ingest(classified(*files))
    assert all(outcome.ok for outcome in outcomes), outcomes
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PIPELINES), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([str(BIN / "pipetask"), "run", "-b", str(pfs_repo), "-i", "PFS/defaults",
                             "-o", "u/pfswatchd/shapes", "--output-run", RUN, "--register-dataset-types",
                             "-p", str(PIPELINES / "pfswatchd_shapes.yaml")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]

    run_ = RUN.replace("/", "_")
    with Butler.from_config(str(pfs_repo), collections=RUN) as butler:
        designs = {ref.dataId["visit"]: butler.get(ref).pfsDesignId
                   for ref in butler.query_datasets("pfsConfig", collections="PFS/defaults")}
        day_obs = {r.id: r.day_obs for r in butler.query_dimension_records("visit", explain=False)}
        # Every quantum succeeded: 12 per visit and camera, 6 per camera, each with its metadata.
        assert len(butler.query_datasets("perVisit_metadata")) == len(VISITS) * len(CAMERAS)
        assert len(butler.query_datasets("perCamera_metadata")) == len(CAMERAS)
        for visit in VISITS:
            for arm, spectrograph in CAMERAS:
                ref = butler.find_dataset("rawSummary", instrument="PFS", visit=visit, arm=arm,
                                          spectrograph=spectrograph)
                assert ref is not None
                # obs_pfs's instrument+visit+arm+spectrograph template, rendered by hand.
                assert butler.getURI(ref).ospath == str(
                    pfs_repo / RUN / "rawSummary" / str(day_obs[visit]) / str(visit)
                    / f"rawSummary_PFS_{visit}_{arm}{spectrograph}_{run_}.yaml")
                summary = butler.get(ref)
                assert (summary["visit"], summary["pfsDesignId"]) == (visit, designs[visit])
        for arm, spectrograph in CAMERAS:
            ref = butler.find_dataset("cameraSummary", instrument="PFS", arm=arm, spectrograph=spectrograph)
            assert ref is not None
            # obs_pfs's instrument+arm+spectrograph template: no visit, no day_obs folder.
            assert butler.getURI(ref).ospath == str(
                pfs_repo / RUN / "cameraSummary" / f"cameraSummary_PFS_{arm}{spectrograph}_{run_}.yaml")
            assert butler.get(ref) == {"visits": list(VISITS), "count": len(VISITS)}
