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


# -- repositories made the way the PFS pipeline makes them (tests/official.py) ----------------------

OFFICIAL_VISIT = 500  # already ingested by the "official" tools in every official repository


def build_official_repository(base: Path, columns: int) -> dict:
    """A repository as a PFS user has it: obs_pfs's universe with ``columns`` (17 or 18) visit columns,
    register-instrument's records, raws b1, r1, n1 of OFFICIAL_VISIT in PFS/raw/sps, its pfsConfig in
    PFS/raw/pfsConfig (a random id) and the helpdesk's PFS/defaults.  Built in a process of its own
    (tests/official.py says why)."""
    import json
    import subprocess
    import sys

    files = base / "files"
    raws = [write_raw(files, visit=OFFICIAL_VISIT, arm=arm, spectrograph=1) for arm in "brn"]
    config = write_config(files, visit=OFFICIAL_VISIT)
    spec = {"columns": columns, "raws": [str(p) for p in raws], "pfsconfigs": [str(config)]}
    result = subprocess.run([sys.executable, str(Path(__file__).parent / "official.py"), "build", str(base / "repo"),
                             json.dumps(spec)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": base / "repo", "files": files, "raws": raws, "pfsconfig": config, "ids": json.loads(result.stdout)}


@pytest.fixture(scope="session")
def official_templates(tmp_path_factory):
    """Built on first use, once per shape."""
    built: dict[int, dict] = {}

    def get(columns: int) -> dict:
        if columns not in built:
            built[columns] = build_official_repository(tmp_path_factory.mktemp(f"official{columns}"), columns)
        return built[columns]

    return get


def copy_official(template: dict, dest: Path) -> dict:
    """A private copy of an official repository and of the files its datasets came from."""
    shutil.copytree(template["root"], dest / "repo")
    shutil.copytree(template["files"], dest / "files")
    return {**template, "root": dest / "repo", "files": dest / "files",
            "raws": [dest / "files" / p.name for p in template["raws"]],
            "pfsconfig": dest / "files" / template["pfsconfig"].name}


def inspect_repository(root: Path) -> dict:
    """tests/official.py inspect, in a process of its own (the universe of a 17-column repository must not
    meet this process's)."""
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(Path(__file__).parent / "official.py"), "inspect", str(root)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)
