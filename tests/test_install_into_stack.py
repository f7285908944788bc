"""scripts/install-into-stack.py: what it installs, and its refusal outside the stack.

The install itself, on a venv holding the pinned 30.0.x set, is run by scripts/test-butler30 (CI), which
checks that pip left that set alone and runs the engine tests there.
"""

from __future__ import annotations

import runpy
import subprocess
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install-into-stack.py"


def test_only_the_non_stack_dependencies_are_installed():
    script = runpy.run_path(str(SCRIPT))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {script["requirement_name"](r) for r in project["dependencies"]}
    assert {"lsst-daf-butler", "lsst-resources", "lsst-utils", "astro-metadata-translator"} <= names
    others = script["other_requirements"]([])
    assert {script["requirement_name"](r) for r in others} == {
        name for name in names if not name.startswith("lsst-") and name != "astro-metadata-translator"}
    with_tests = {script["requirement_name"](r) for r in script["other_requirements"](["test"])}
    assert {"pytest", "hypothesis"} <= with_tests


def test_refuses_outside_the_stack(tmp_path):
    venv.create(tmp_path / "bare", with_pip=False)
    python = tmp_path / "bare" / "bin" / "python"
    result = subprocess.run([str(python), str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"install-into-stack: {python} cannot import lsst.daf.butler: this is not an LSST stack environment; "
        "use the README's 'Set up' instead"]


def test_the_supported_butler_range_includes_the_30_0_releases():
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in map(Requirement, project["dependencies"]):
        if requirement.name in ("lsst-daf-butler", "lsst-resources", "lsst-utils", "astro-metadata-translator"):
            for version in ("30.0.0rc1", "30.0.1", "30.0.11", "30.2026.4300"):
                assert requirement.specifier.contains(Version(version), prereleases=True), (requirement, version)
            assert not requirement.specifier.contains(Version("31.0.0"))
