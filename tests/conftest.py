"""Shared fixtures: a real butler repository with the PFS universe, and fake PFS files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest_pg import pg_database, postgres  # noqa: F401
from pfswatchd import fakedata
from pfswatchd.butler import repo
from pfswatchd.butler.ingest import Ingester, IngestSettings
from pfswatchd.files.examine import examine

DESIGN = 0x1945BE7E6DE4B2CF


@pytest.fixture(autouse=True)
def _no_service_left_running():
    """A failed test must not leave a pfswatchd process (and its socket) behind."""
    yield
    from harness import RUNNING

    while RUNNING:
        RUNNING.pop().cleanup()


@pytest.fixture(scope="session")
def _template_repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template") / "repo"
    repo.create(root)
    return root


@pytest.fixture()
def pfs_repo(_template_repo, tmp_path) -> Path:
    """A fresh PFS repository (instruments PFS, PFS-F, PFS-L; raw/sps, raw/pfsConfig, defaults)."""
    root = tmp_path / "repo"
    shutil.copytree(_template_repo, root)
    return root


@pytest.fixture()
def butler(pfs_repo):
    butler = repo.open_butler(pfs_repo)
    yield butler
    butler.close()


def make_ingester(butler, root, **settings) -> Ingester:
    return Ingester(butler, root, IngestSettings(**settings))


def classified(*paths: Path):
    """Examine files that must be valid; fail the test with the reason if one is not."""
    result = []
    for path in paths:
        found = examine(Path(path))
        assert found.classified is not None, (found.error, found.incomplete, found.skipped)
        result.append(found.classified)
    return result


def write_raw(folder: Path, *, visit: int, arm: str = "b", spectrograph: int = 1, design: int = DESIGN,
              site: str = "S", **kwargs) -> Path:
    """One raw frame (PFSA for b/r/m, PFSB for n) with its archive name under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if arm == "n":
        path = folder / fakedata.raw_filename(site, "B", visit, spectrograph, "n")
        return fakedata.write_pfsb(path, visit=visit, spectrograph=spectrograph, pfs_design_id=design, site=site,
                                   **kwargs)
    path = folder / fakedata.raw_filename(site, "A", visit, spectrograph, arm)
    return fakedata.write_pfsa(path, visit=visit, spectrograph=spectrograph, arm=arm, pfs_design_id=design,
                               site=site, **kwargs)


def write_config(folder: Path, *, visit: int, design: int = DESIGN, subset: int = 0, pfsf: bool = False,
                 **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = fakedata.pfsf_filename(visit, subset) if pfsf or subset else fakedata.pfsconfig_filename(design, visit)
    return fakedata.write_pfsconfig(folder / name, visit=visit, pfs_design_id=design, subset=subset, **kwargs)
