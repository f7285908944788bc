#!/usr/bin/env python3
"""Install pfswatchd into an LSST science pipelines environment without touching the stack's own packages.

Run it with the environment's Python, from anywhere:

    python scripts/install-into-stack.py [--extras test]

pfswatchd's pyproject declares lsst-daf-butler, lsst-resources, lsst-utils and astro-metadata-translator;
inside the stack those are the stack's (the PFS pipeline pins its own butler), and an EUPS-set-up product
is often invisible to pip, which would then install a second copy from PyPI over or beside it.  So this
script

1. refuses unless ``lsst.daf.butler`` is importable here (it is meant for the stack; elsewhere use the
   README's "Set up");
2. installs, through pip, only pfswatchd's other dependencies (read from pyproject.toml; pip leaves the
   ones already satisfied alone), plus those of the optional groups named with ``--extras``;
3. installs pfswatchd itself with ``--no-deps`` (editable, as the README's set-up does);
4. checks that every stack package is still the same version, from the same place, and that pfswatchd
   imports; and says which butler it found and whether pfswatchd's tests cover that version.

Exit status 0 when installed and checked, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Distributions that belong to the stack: never installed or upgraded by this script.
STACK = re.compile(r"^(lsst-.*|astro-metadata-translator)$")
STACK_MODULES = ("lsst.daf.butler", "lsst.resources", "lsst.utils", "astro_metadata_translator")
TESTED = ("30.0.11", "30.2026.4300")  # the butlers scripts/test runs the engine tests against


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def other_requirements(extras: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"install-into-stack: no optional dependency group {extra!r} in pyproject.toml "
                             f"(known: {', '.join(sorted(optional))})")
        wanted += optional[extra]
    return [requirement for requirement in wanted if not STACK.match(requirement_name(requirement))]


def stack_state() -> dict[str, str]:
    """Version (when pip can see it) and file of each stack package, in a fresh interpreter."""
    probe = (
        "import importlib, importlib.metadata, json\n"
        "state = {}\n"
        f"for module in {STACK_MODULES!r}:\n"
        "    try:\n"
        "        state[module] = importlib.import_module(module).__file__\n"
        "    except ImportError:\n"
        "        pass\n"
        "for dist in importlib.metadata.distributions():\n"
        "    name = (dist.metadata['Name'] or '').lower()\n"
        f"    if __import__('re').match({STACK.pattern!r}, name):\n"
        "        state[name] = dist.version\n"
        "print(json.dumps(state, sort_keys=True))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    state: dict[str, str] = json.loads(result.stdout)
    return state


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--extras", action="append", default=[], help="also install this optional group")
    args = parser.parse_args()
    before = stack_state()
    if "lsst.daf.butler" not in before:
        print(f"install-into-stack: {sys.executable} cannot import lsst.daf.butler: this is not an LSST stack "
              "environment; use the README's 'Set up' instead", file=sys.stderr)
        return 1
    others = other_requirements(args.extras)
    try:
        if others:
            pip(*others)
        pip("--no-deps", "-e", str(ROOT))
    except subprocess.CalledProcessError as exc:
        print(f"install-into-stack: pip failed ({exc.returncode}); nothing of the stack was changed by it "
              "(only pfswatchd's other dependencies and pfswatchd itself are installed)", file=sys.stderr)
        return 1
    after = stack_state()
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    if changed:
        print(f"install-into-stack: the stack's packages changed: "
              f"{', '.join(f'{key} {before.get(key)} -> {after.get(key)}' for key in changed)}", file=sys.stderr)
        return 1
    check = subprocess.run([sys.executable, "-c", "import pfswatchd.butler.repo, pfswatchd.cli"],
                           capture_output=True, text=True)
    if check.returncode:
        lines = check.stderr.strip().splitlines() or ["(no message)"]
        print(f"install-into-stack: pfswatchd does not import with this stack: {lines[-1]}", file=sys.stderr)
        return 1
    version = after.get("lsst-daf-butler", "unknown to pip (EUPS)")
    covered = "tested" if version in TESTED else f"not among the tested {', '.join(TESTED)}"
    print(f"install-into-stack: pfswatchd installed into {sys.prefix} with the stack's lsst-daf-butler {version} "
          f"({covered}) from {Path(after['lsst.daf.butler']).parent}; stack packages unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
