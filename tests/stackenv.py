"""Run commands where "the PFS pipeline is installed": the test double of its interface on the import path.

``tests/stack_double`` (see its README) stands in for the EUPS products obs_pfs, obs_base and drp_stella.
The commands run in a subprocess whose PYTHONPATH holds their ``python`` folders and whose ``OBS_PFS_DIR``
is the double's product folder, as ``setup obs_pfs`` would make them; the test process itself never
imports the double, so it cannot leak into other tests.

Run as a script (in that environment) it reports what a pipeline user sees in a repository:

    python tests/stackenv.py dump REPO     # registry: dimension records, dataset types (JSON)
    python tests/stackenv.py read REPO     # the class butler.get returns for every raw and pfsConfig (JSON)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DOUBLE = Path(__file__).resolve().parent / "stack_double"
BIN = Path(sys.executable).parent


def environment() -> dict[str, str]:
    paths = [str(DOUBLE / product / "python") for product in ("obs_pfs", "obs_base", "drp_stella")]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OBS_PFS_DIR": str(DOUBLE / "obs_pfs")}


def run(program: str, *args: Any, stack: bool = True, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``program`` (pfswatchd, butler, python) of this venv, in the pipeline environment unless ``stack`` is False."""
    result = subprocess.run([str(BIN / program), *map(str, args)], capture_output=True, text=True, timeout=300,
                            env=environment() if stack else dict(os.environ))
    if check and result.returncode != 0:
        raise AssertionError(f"{program} {' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def start(program: str, *args: Any, **env: str) -> subprocess.Popen[str]:
    """``program`` running in the pipeline environment (with extra environment variables)."""
    return subprocess.Popen([str(BIN / program), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**environment(), **env})


def report(what: str, repo: Path, *, stack: bool = True) -> Any:
    return json.loads(run("python", __file__, what, repo, stack=stack).stdout)


# -- the script side (runs in the subprocess) ------------------------------------------------------


def _dump(root: str) -> dict[str, Any]:
    from lsst.daf.butler import Butler

    with Butler.from_config(root) as butler:
        records = {element: sorted((r.toDict() for r in butler.query_dimension_records(element, explain=False)),
                                   key=repr)
                   for element in ("instrument", "detector", "arm", "spectrograph", "physical_filter")}
        types = sorted([t.name, sorted(t.dimensions.names), t.storageClass_name, t.isCalibration()]
                       for t in butler.registry.queryDatasetTypes())
    return {"records": json.loads(json.dumps(records, default=str)), "dataset_types": types}


def _read(root: str) -> dict[str, Any]:
    from lsst.daf.butler import Butler, CollectionType

    def kind(value: Any) -> str:
        return f"{type(value).__module__}.{type(value).__qualname__}"

    out: dict[str, Any] = {"raw": [], "pfsConfig": []}
    with Butler.from_config(root) as butler:
        runs = list(butler.collections.query("*", collection_types={CollectionType.RUN}))
        for name in out:
            for ref in butler.query_datasets(name, collections=runs, find_first=False, explain=False):
                try:
                    value = butler.get(ref)
                except Exception as exc:  # what the pipeline user would see instead
                    out[name].append({"dataId": dict(ref.dataId.required), "error": f"{type(exc).__name__}: {exc}"})
                    continue
                entry = {"dataId": dict(ref.dataId.required), "type": kind(value)}
                entry.update({k: getattr(value, k) for k in ("pfsCategory", "visit") if hasattr(value, k)})
                out[name].append(entry)
    return out


if __name__ == "__main__":
    command, root = sys.argv[1:3]
    print(json.dumps({"dump": _dump, "read": _read}[command](root), default=str))
