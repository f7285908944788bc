"""obs_pfs's own machinery, where the PFS pipeline is installed (``lsst.obs.pfs`` importable).

There a repository pfswatchd makes or fills is, for the pipeline, one the official tools made:

- ``create`` makes it from obs_pfs's seed and dimension configuration (``$OBS_PFS_DIR/gen3/butler.yaml``
  and ``gen3/dimensions.yaml``), as ``butler create --seed-config ... --dimension-config ...`` does, and
  registers each instrument through obs_pfs's Instrument class the way ``butler register-instrument``
  does (pipe_base ``script/register_instrument.py``: ``Instrument.from_string(name, registry)``, then
  ``register(registry)``), so the records and dataset types are obs_pfs's own;
- ingest records, for a raw, the formatter the instrument names (obs_base's raw ingest records
  ``Instrument.getRawFormatter(dataId)``: ``PfsSimulatorRawFormatter`` for PFS-F), and for a pfsConfig
  the one the repository configures (obs_pfs's ``FitsGenericFormatter``).

Only repositories whose configuration is obs_pfs's get obs_pfs's formatters: a repository pfswatchd made
without obs_pfs keeps pfswatchd's until ``pfswatchd hand-over`` (see :mod:`pfswatchd.butler.handover`).
Visit records stay pfswatchd's: they are computed as obs_pfs's translator computes them, bit for bit
(:mod:`pfswatchd.files.visitrecord`), so either may define a visit the other later meets.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from lsst.daf.butler import Butler, Config, DataCoordinate, Registry
from lsst.utils import getPackageDir
from lsst.utils.introspection import get_full_type_name

from pfswatchd.butler import repo

__all__ = ["OBS_PFS_RECIPE", "RawFormatters", "configures_obs_pfs", "importable", "instrument", "product_dir",
           "raw_formatter", "raw_formatters", "recipe", "register_instrument"]

# obs_pfs gen3/butler.yaml: the Python type of its raw storage class.
OBS_PFS_RAW_PYTYPE = "lsst.obs.pfs.raw.PfsRaw"


def importable() -> bool:
    """True where obs_pfs can be imported (found without importing it: it loads the C++ stack)."""
    try:
        return importlib.util.find_spec("lsst.obs.pfs") is not None
    except (ImportError, ValueError):  # no lsst.obs package at all
        return False


@cache
def product_dir() -> Path:
    """obs_pfs's product folder: ``$OBS_PFS_DIR`` as EUPS sets it (lsst.utils getPackageDir), else the folder
    its ``python/lsst/obs/pfs`` package sits in."""
    try:
        return Path(getPackageDir("obs_pfs"))
    except LookupError:
        spec = importlib.util.find_spec("lsst.obs.pfs")
        if spec is None or spec.origin is None:
            raise
        return Path(spec.origin).resolve().parents[4]


def _gen3(name: str) -> Path:
    path = product_dir() / "gen3" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: obs_pfs's {name} is not there; expected obs_pfs's product folder "
                                "($OBS_PFS_DIR) to hold gen3/butler.yaml and gen3/dimensions.yaml")
    return path


def seed_config() -> Config:
    """obs_pfs's seed configuration, as ``butler create --seed-config $OBS_PFS_DIR/gen3/butler.yaml`` reads it."""
    return Config(str(_gen3("butler.yaml")))


def dimension_config() -> Path:
    return _gen3("dimensions.yaml")


def instrument(name: str, registry: Registry) -> Any:
    """obs_pfs's Instrument for ``name`` (PFS, PFS-F, PFS-L, or a class name), as pipe_base finds it."""
    from lsst.pipe.base import Instrument

    return Instrument.from_string(repo.INSTRUMENT_CLASSES.get(name, name), registry)


def register_instrument(butler: Butler, name: str) -> None:
    """``butler register-instrument <obs_pfs's class for name>`` on this butler's registry.

    An instrument obs_pfs has no class for (a site other than S, F and L that the configuration names)
    is registered as pfswatchd registers it everywhere, with no class name.
    """
    if name not in repo.INSTRUMENT_CLASSES:
        repo.register_instrument(butler, name)
        return
    instrument(name, butler.registry).register(butler.registry)


def raw_formatter(registry: Registry, name: str, data_id: DataCoordinate) -> str:
    """The raw formatter obs_pfs's Instrument class names for a raw of instrument ``name`` (the class the
    registry's instrument record names, as pipe_base's ``Instrument.from_string`` finds it)."""
    from lsst.pipe.base import Instrument

    return get_full_type_name(Instrument.from_string(name, registry).getRawFormatter(data_id))


class RawFormatters:
    """The raw formatter per instrument, as obs_pfs's Instrument names it (asked once per instrument:
    obs_pfs's ``getRawFormatter`` depends on the instrument's category only)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._by_instrument: dict[str, str] = {}

    def __call__(self, data_id: DataCoordinate) -> str:
        name = str(data_id["instrument"])
        if name not in self._by_instrument:
            self._by_instrument[name] = raw_formatter(self._registry, name, data_id)
        return self._by_instrument[name]


def raw_formatters(config: Config, registry: Registry) -> RawFormatters | None:
    """obs_pfs's raw formatters for a repository configured with obs_pfs's classes, where obs_pfs imports;
    None (pfswatchd's choice stands) elsewhere."""
    return RawFormatters(registry) if importable() and configures_obs_pfs(config) else None


def configures_obs_pfs(config: Config) -> bool:
    """Whether a repository's configuration reads raws with obs_pfs's classes (made from its seed, or
    handed over)."""
    try:
        return bool(config["storageClasses", "PfsRaw", "pytype"] == OBS_PFS_RAW_PYTYPE)
    except KeyError:
        return False


OBS_PFS_RECIPE = repo.Recipe(seed_config=seed_config, dimension_config=dimension_config,
                             register_instrument=register_instrument)


def recipe() -> repo.Recipe:
    """obs_pfs's recipe where obs_pfs is importable, pfswatchd's own elsewhere."""
    return OBS_PFS_RECIPE if importable() else repo.PFSWATCHD_RECIPE
