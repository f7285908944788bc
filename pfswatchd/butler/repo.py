"""The butler repository: create it with the PFS universe, open it, check it.

A repository made here has the shape of one made by the PFS pipeline
(``butler create --dimension-config obs_pfs/gen3/dimensions.yaml`` followed by
``butler register-instrument``): the PFS dimension universe, the instrument,
arm, spectrograph, detector and physical_filter records, the ``raw`` and
``pfsConfig`` dataset types, and RUN collections.  What differs: the storage
classes use pfswatchd's own astropy formatters (obs_pfs is not on PyPI), and a
CHAINED collection ``<instrument>/defaults`` searches the raws and then the
pfsConfigs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from lsst.daf.butler import Butler, ButlerConfig, CollectionType, Config, DatasetType, DimensionUniverse
from lsst.daf.butler.registry import MissingCollectionError
from lsst.utils import doImportType
from sqlalchemy.engine import URL, make_url

from pfswatchd.butler.formatters import FORMATTERS, STORAGE_CLASSES, with_current_storage_classes
from pfswatchd.butler.pfsraw import camera_id
from pfswatchd.errors import NotPfsRepositoryError

DEFAULT_INSTRUMENTS = ("PFS", "PFS-F", "PFS-L")
INSTRUMENT_CLASSES = {
    "PFS": "lsst.obs.pfs.PrimeFocusSpectrograph",
    "PFS-F": "lsst.obs.pfs.PfsSimulator",
    "PFS-L": "lsst.obs.pfs.PfsDevelopment",
}
VISIT_MAX = 21474800
DETECTOR_MAX = 20
RAW_DIMENSIONS = ("instrument", "visit", "spectrograph", "arm")
PFSCONFIG_DIMENSIONS = ("instrument", "visit")
REQUIRED_ELEMENTS = ("instrument", "visit", "arm", "spectrograph", "pfs_design_id", "dither", "cat_id")

# Keep every raw of a visit apart: arm and spectrograph are in the file name.
FILE_TEMPLATES = {
    "instrument+visit+arm+spectrograph": (
        "{run:/}/{datasetType}/{visit.day_obs}/{visit}/"
        "{datasetType}_{instrument}_{visit}_{arm}{spectrograph}_{run}"
    ),
    "instrument+visit": (
        "{run:/}/{datasetType}/{visit.day_obs}/{visit}/{datasetType}_{instrument}_{visit}_{run}"
    ),
}


def default_raw_run(instrument: str) -> str:
    return f"{instrument}/raw/all"


def default_pfsconfig_run(instrument: str) -> str:
    return f"{instrument}/raw/pfsConfig"


def defaults_chain(instrument: str) -> str:
    return f"{instrument}/defaults"


def customised_pfsconfig_run(base_run: str, subset: int) -> str:
    """The RUN of a customised PFSF file (suffix 01-99): ``<base>/<NN>``."""
    return f"{base_run}/{subset:02d}"


def dimension_config_path() -> Path:
    return Path(str(resources.files("pfswatchd.butler") / "resources" / "dimensions.yaml"))


def seed_config() -> Config:
    return Config(
        {
            "storageClasses": STORAGE_CLASSES,
            "datastore": {"formatters": dict(FORMATTERS), "templates": dict(FILE_TEMPLATES)},
        }
    )


def check_universe(universe: DimensionUniverse, root: str | Path) -> None:
    """Raise NotPfsRepositoryError unless ``universe`` has the PFS shape."""
    missing = [name for name in REQUIRED_ELEMENTS if name not in universe.getStaticElements().names]
    if universe.namespace != "pfs" or missing:
        what = f"lacks {', '.join(missing)}" if missing else "has another namespace"
        raise NotPfsRepositoryError(
            f"{root}: its dimension universe is {universe.namespace!r} version {universe.version}, which "
            f"{what}; expected the PFS universe (namespace 'pfs'). Use a repository made by "
            "`pfswatchd create` or by the PFS pipeline."
        )
    visit = universe["visit"]
    if not {"pfs_design_id", "dither"} <= set(visit.implied.names):
        raise NotPfsRepositoryError(
            f"{root}: its visit dimension implies {sorted(visit.implied.names)}; expected pfs_design_id "
            "and dither, as in the PFS universe"
        )


def is_repository(root: str | Path) -> bool:
    return (Path(root) / "butler.yaml").exists()


def open_butler(root: str | Path, *, writeable: bool = True) -> Butler:
    """Open an existing repository, checking that it is PFS-shaped."""
    if not is_repository(root):
        raise NotPfsRepositoryError(
            f"{root}: no butler repository here (no butler.yaml); expected one made by `pfswatchd create`"
        )
    # The current raw components also for a repository made by an earlier pfswatchd (in memory only).
    config = with_current_storage_classes(ButlerConfig(str(root)))
    if writeable:
        # Check with a read-only butler first: a foreign repository is not touched at all.
        with Butler.from_config(config, writeable=False) as reader:
            check_universe(reader.dimensions, root)
    butler = Butler.from_config(config, writeable=writeable)
    check_universe(butler.dimensions, root)
    return butler


def use_credentials(registry_db: str) -> str:
    """Hand a password in a registry URL to the butler's DbAuth (in this process); return the URL
    without it, which is what goes into butler.yaml.

    Other programs (``butler query-datasets``) find the password the butler's usual way, in
    ``~/.lsst/db-auth.yaml``; no password is ever written into the repository.
    """
    url = make_url(registry_db)
    if url.password is None:
        return registry_db
    entry = {"url": f"{url.get_backend_name()}://{url.username}@{url.host}:{url.port or 5432}/{url.database}",
             "password": url.password}
    existing = json.loads(os.environ.get("LSST_DB_AUTH_CREDENTIALS") or "[]")
    os.environ["LSST_DB_AUTH_CREDENTIALS"] = json.dumps([entry, *(e for e in existing if e["url"] != entry["url"])])
    return _without_password(url)


def _without_password(url: URL) -> str:
    # URL.set(password=None) keeps the password (None means "unchanged"), so rebuild the URL.
    bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    return bare.render_as_string(hide_password=False)


def create(
    root: str | Path,
    *,
    instruments: Iterable[str] = DEFAULT_INSTRUMENTS,
    raw_run: str | None = None,
    pfsconfig_run: str | None = None,
    registry_db: str | None = None,
) -> Butler:
    """Create (or complete) a PFS repository at ``root`` and return a writeable butler.

    ``registry_db`` puts the registry in that database (e.g. PostgreSQL, which needs the btree_gist
    extension) instead of SQLite in ``root``.  On an existing repository this checks the universe
    first and changes nothing when it is not PFS-shaped; otherwise it only adds what is missing.
    """
    if not is_repository(root):
        Path(root).mkdir(parents=True, exist_ok=True)
        seed = seed_config()
        if registry_db:
            seed["registry", "db"] = use_credentials(registry_db)
        Butler.makeRepo(str(root), config=seed, dimensionConfig=str(dimension_config_path()))
        if registry_db:
            _strip_password(Path(root) / "butler.yaml")
    butler = open_butler(root)
    for instrument in instruments:
        ensure_instrument(butler, instrument)
        ensure_collections(
            butler,
            instrument,
            raw_run or default_raw_run(instrument),
            pfsconfig_run or default_pfsconfig_run(instrument),
        )
    return butler


def _strip_password(butler_yaml: Path) -> None:
    """makeRepo writes the URL it connected with, password included: take the password out again."""
    config = Config(str(butler_yaml))
    url = make_url(config["registry", "db"])
    if url.password is not None:
        config["registry", "db"] = _without_password(url)
        config.dumpToUri(str(butler_yaml), overwrite=True)


def dataset_types(universe: DimensionUniverse) -> tuple[DatasetType, DatasetType]:
    raw = DatasetType("raw", RAW_DIMENSIONS, "PfsRaw", universe=universe)
    pfs_config = DatasetType("pfsConfig", PFSCONFIG_DIMENSIONS, "PfsConfig", universe=universe)
    return raw, pfs_config


def ensure_instrument(butler: Butler, instrument: str) -> None:
    """Register an instrument as ``butler register-instrument`` would for obs_pfs."""
    registry = butler.registry
    registry.syncDimensionData(
        "instrument",
        {
            "name": instrument,
            "visit_max": VISIT_MAX,
            "detector_max": DETECTOR_MAX,
            "class_name": INSTRUMENT_CLASSES.get(instrument, "lsst.obs.pfs.PrimeFocusSpectrograph"),
        },
    )
    registry.insertDimensionData(
        "spectrograph", *({"instrument": instrument, "num": num} for num in range(5)), skip_existing=True
    )
    registry.insertDimensionData(
        "arm", *({"instrument": instrument, "name": arm} for arm in "brnmx"), skip_existing=True
    )
    registry.insertDimensionData(
        "physical_filter",
        *({"instrument": instrument, "name": arm, "band": arm} for arm in "brmn"),
        skip_existing=True,
    )
    registry.insertDimensionData("detector", *_detector_records(instrument), skip_existing=True)
    for dataset_type in dataset_types(butler.dimensions):
        registry.registerDatasetType(dataset_type)


def _detector_records(instrument: str) -> list[dict[str, Any]]:
    """Cameras b1=0 r1=1 n1=2 ... n4=11, m_k = -(r_k), AG1..AG6 = 101..106 (obs_pfs camera.yaml)."""
    records = []
    for spectrograph in range(1, 5):
        for arm in "brnm":
            records.append(_detector(instrument, camera_id(arm, spectrograph), arm, spectrograph))
    for number in range(1, 7):
        records.append(
            {
                "instrument": instrument,
                "id": 100 + number,
                "full_name": f"AG{number}",
                "spectrograph": 0,
                "arm": "x",
                "raft": "guider",
                "name_in_raft": f"AG{number}",
                "purpose": "guider",
            }
        )
    return records


def _detector(instrument: str, detector_id: int, arm: str, spectrograph: int) -> dict[str, Any]:
    return {
        "instrument": instrument,
        "id": detector_id,
        "full_name": f"{arm}{spectrograph}",
        "spectrograph": spectrograph,
        "arm": arm,
        "raft": str(spectrograph),
        "name_in_raft": arm,
        "purpose": "science",
    }


def ensure_collections(butler: Butler, instrument: str, raw_run: str, pfsconfig_run: str) -> None:
    registry = butler.registry
    for run in (raw_run, pfsconfig_run):
        registry.registerCollection(run, CollectionType.RUN)
    add_to_defaults(butler, instrument, [raw_run, pfsconfig_run])


def add_to_defaults(butler: Butler, instrument: str, runs: list[str]) -> None:
    """Append ``runs`` to the CHAINED ``<instrument>/defaults`` (creating it), keeping order."""
    registry = butler.registry
    chain = defaults_chain(instrument)
    registry.registerCollection(chain, CollectionType.CHAINED)
    try:
        current = list(registry.getCollectionChain(chain))
    except MissingCollectionError:
        current = []
    wanted = current + [run for run in runs if run not in current]
    if wanted != current:
        registry.setCollectionChain(chain, wanted)


def formatter_overrides(config: Config) -> dict[str, str | None]:
    """The formatter to name at ingest for each storage class pfswatchd writes.

    None (let the datastore choose) when the repository configures an
    importable formatter for it, e.g. obs_pfs's in a PFS pipeline environment;
    pfswatchd's own formatter when the configured one cannot be imported here.
    """
    overrides: dict[str, str | None] = {}
    configured = config.get("datastore", {}).get("formatters", {})
    for storage_class, ours in FORMATTERS.items():
        theirs = configured.get(storage_class)
        if isinstance(theirs, dict | Config):
            theirs = theirs.get("formatter")
        if not theirs:
            overrides[storage_class] = ours
            continue
        try:
            doImportType(str(theirs))
        except (ImportError, AttributeError, TypeError):
            overrides[storage_class] = ours
        else:
            overrides[storage_class] = None
    return overrides
