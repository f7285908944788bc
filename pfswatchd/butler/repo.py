"""The butler repository: create it with the PFS universe, open it, check it.

A repository made here has the shape of one made by the PFS pipeline
(``butler create --dimension-config obs_pfs/gen3/dimensions.yaml`` followed by
``butler register-instrument lsst.obs.pfs.PrimeFocusSpectrograph``): the PFS
dimension universe, the instrument, arm, spectrograph, detector and
physical_filter records exactly as obs_pfs writes them, the ``raw`` and
``pfsConfig`` dataset types and obs_pfs's calibration dataset types, obs_pfs's
16 file templates, the official RUN names (``<instrument>/raw/sps``,
``<instrument>/raw/pfsConfig``) and the CHAINED ``<instrument>/defaults`` the
PFS helpdesk has users make.  What differs: the storage classes use
pfswatchd's own astropy formatters (obs_pfs is not on PyPI; ``pfswatchd
hand-over`` names obs_pfs's later).

Existing repositories are used as they are: pfswatchd reads their universe
from their own registry (both shapes of "pfs v3" exist, with 17 or 18 visit
columns), registers an instrument only when the configuration names it, and
never changes a CHAINED collection that already exists.

The seed config and the instrument registration are the two seams
(:class:`Recipe`) where obs_pfs's own machinery can take over when it is
importable.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from lsst.daf.butler import (
    Butler,
    ButlerConfig,
    ButlerMetrics,
    CollectionType,
    Config,
    DatasetType,
    DimensionConfig,
    DimensionUniverse,
)
from lsst.daf.butler.registry import MissingCollectionError
from lsst.utils import doImportType
from sqlalchemy.engine import URL, make_url

from pfswatchd.butler import sqlitestats, statementcache
from pfswatchd.butler.calibs import calibration_dataset_types
from pfswatchd.butler.formatters import FORMATTERS, STORAGE_CLASSES, with_current_storage_classes
from pfswatchd.butler.pfsraw import camera_id
from pfswatchd.errors import ErrorKind, NotPfsRepositoryError, TransientError, first_line

DEFAULT_INSTRUMENTS = ("PFS", "PFS-F", "PFS-L")
# The Instrument classes of obs_pfs (PrimeFocusSpectrograph.py), by the full type name that
# ``butler register-instrument`` records (lsst.utils get_full_type_name: module + class).
INSTRUMENT_CLASSES = {
    "PFS": "lsst.obs.pfs.PrimeFocusSpectrograph.PrimeFocusSpectrograph",
    "PFS-F": "lsst.obs.pfs.PrimeFocusSpectrograph.PfsSimulator",
    "PFS-L": "lsst.obs.pfs.PrimeFocusSpectrograph.PfsDevelopment",
}
# What people type for them (the helpdesk: ``register-instrument lsst.obs.pfs.PrimeFocusSpectrograph``).
INSTRUMENT_ALIASES = {
    **{cls: name for name, cls in INSTRUMENT_CLASSES.items()},
    "lsst.obs.pfs.PrimeFocusSpectrograph": "PFS",
    "lsst.obs.pfs.PfsSimulator": "PFS-F",
    "lsst.obs.pfs.PfsDevelopment": "PFS-L",
}
VISIT_MAX = 21474800
DETECTOR_MAX = 20
RAW_DIMENSIONS = ("instrument", "visit", "spectrograph", "arm")
PFSCONFIG_DIMENSIONS = ("instrument", "visit")
REQUIRED_ELEMENTS = ("instrument", "visit", "arm", "spectrograph", "pfs_design_id", "dither", "cat_id")
# daf_butler's registry attribute that holds the repository's own dimension configuration (JSON).
_DIMENSIONS_ATTRIBUTE = "config:dimensions.json"



def _official_templates() -> dict[str, str]:
    """obs_pfs's 16 file templates (resources/templates.yaml): every raw of a visit in its own file, and
    the pipeline's per-camera products (instrument+arm+spectrograph) valid too."""
    text = (resources.files("pfswatchd.butler") / "resources" / "templates.yaml").read_text()
    return {str(key): str(value) for key, value in yaml.safe_load(text).items()}


FILE_TEMPLATES = _official_templates()


def default_raw_run(instrument: str) -> str:
    """obs_pfs ``makeDefaultRawIngestRunName``: ``<instrument>/raw/sps`` (since obs_pfs d31ec29)."""
    return f"{instrument}/raw/sps"


def default_pfsconfig_run(instrument: str) -> str:
    """The RUN the PFS documentation passes to ingestPfsConfig.py (and defineCombination.py reads)."""
    return f"{instrument}/raw/pfsConfig"


def defaults_chain(instrument: str) -> str:
    return f"{instrument}/defaults"


def calibration_collection(instrument: str) -> str:
    """pipe_base ``makeCalibrationCollectionName``."""
    return f"{instrument}/calib"


def pfsconfig_subset_run(base_run: str, subset: int) -> str:
    """The RUN that holds PFSF files with suffix ``subset`` (01-99 customised, 00 a displaced full one)."""
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


# -- the universe ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UniverseShape:
    """What a repository's own dimension configuration says: namespace, version, visit columns."""

    namespace: str
    version: int
    visit_columns: tuple[str, ...]

    @property
    def has_irp_ratio(self) -> bool:
        return "irp_ratio" in self.visit_columns

    def __str__(self) -> str:
        if self.namespace != "pfs":
            return f"{self.namespace} v{self.version}"
        which = ("with irp_ratio (obs_pfs 681db49 or later)" if self.has_irp_ratio
                 else "without irp_ratio (made before obs_pfs 681db49)")
        return f"pfs v{self.version}, {len(self.visit_columns)} visit columns, {which}"


def _shape_of(config: Mapping[str, Any]) -> UniverseShape:
    visit = (config.get("elements") or {}).get("visit") or {}
    columns = tuple(str(m["name"]) for m in visit.get("metadata") or ())
    return UniverseShape(str(config.get("namespace", "daf_butler")), int(config.get("version", 0)), columns)


def stored_dimension_config(butler: Butler) -> DimensionConfig:
    """The dimension configuration stored in the repository's registry (not daf_butler's process cache).

    daf_butler keeps one DimensionUniverse per (namespace, version) and process: a second repository
    whose "pfs v3" has other visit columns gets the first one's universe.  The stored configuration is
    the truth about the repository.
    """
    attributes = butler._registry._managers.attributes  # type: ignore[attr-defined]
    text = attributes.get(_DIMENSIONS_ATTRIBUTE)
    if text is None:
        raise NotPfsRepositoryError(f"its registry has no {_DIMENSIONS_ATTRIBUTE} attribute")
    return DimensionConfig(Config.fromString(text, format="json"))


def _columns_in_memory(universe: DimensionUniverse) -> dict[str, tuple[str, ...]]:
    return {element.name: tuple(element.metadata.names) for element in universe.getStaticElements()}


def _columns_in_config(config: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(str(m["name"]) for m in (spec or {}).get("metadata") or ())
            for name, spec in (config.get("elements") or {}).items()}


def check_universe(butler: Butler, root: str | Path) -> UniverseShape:
    """The repository's universe shape; NotPfsRepositoryError unless it has the PFS shape.

    Also refused: a repository whose universe this process cannot hold, because daf_butler already
    made another universe of the same namespace and version here (its columns would not match the
    repository's tables).  pfswatchd's service and commands open one repository per process.
    """
    try:
        stored = stored_dimension_config(butler).toDict()
    except NotPfsRepositoryError as exc:
        raise NotPfsRepositoryError(f"{root}: {exc}; expected a butler repository") from None
    shape = _shape_of(stored)
    universe = butler.dimensions
    missing = [name for name in REQUIRED_ELEMENTS if name not in stored.get("elements", {})]
    if shape.namespace != "pfs" or missing:
        what = f"lacks {', '.join(missing)}" if missing else "has another namespace"
        raise NotPfsRepositoryError(
            f"{root}: its dimension universe is {shape.namespace!r} version {shape.version}, which "
            f"{what}; expected the PFS universe (namespace 'pfs'). Use a repository made by "
            "`pfswatchd create` or by the PFS pipeline."
        )
    in_memory = _columns_in_memory(universe)
    differs = [name for name, columns in _columns_in_config(stored).items() if in_memory.get(name) != columns]
    if differs:
        raise NotPfsRepositoryError(
            f"{root}: its universe ({shape}) differs from the one daf_butler already holds in this process "
            f"for pfs v{shape.version} (element {differs[0]}: {len(in_memory.get(differs[0], ()))} columns); "
            "daf_butler keeps one universe per version and process, so open this repository in a new process"
        )
    implied = set(universe["visit"].implied.names)
    if not {"pfs_design_id", "dither"} <= implied:
        raise NotPfsRepositoryError(
            f"{root}: its visit dimension implies {sorted(implied)}; expected pfs_design_id "
            "and dither, as in the PFS universe"
        )
    return shape


def _check_cached_universe(config: DimensionConfig) -> None:
    """Refuse to create a repository whose universe this process would build wrongly (see check_universe)."""
    universe = DimensionUniverse(config)  # daf_butler returns its cached instance when it has one
    wanted = _columns_in_config(config.toDict())
    held = _columns_in_memory(universe)
    if any(held.get(name) != columns for name, columns in wanted.items()):
        raise NotPfsRepositoryError(
            f"this process already holds another pfs v{config['version']} universe; daf_butler would create "
            "the tables from it: create the repository in a new process"
        )


def is_repository(root: str | Path) -> bool:
    return (Path(root) / "butler.yaml").exists()


def open_butler(root: str | Path, *, writeable: bool = True, metrics: ButlerMetrics | None = None) -> Butler:
    """Open an existing repository, checking that it is PFS-shaped (see :func:`check_universe`).

    ``metrics``: daf_butler's own counters of the time spent in ingest/get/put (the service exports them).
    """
    if not is_repository(root):
        raise NotPfsRepositoryError(
            f"{root}: no butler repository here (no butler.yaml); expected one made by `pfswatchd create`"
        )
    # The current raw components also for a repository made by an earlier pfswatchd (in memory only).
    config = with_current_storage_classes(ButlerConfig(str(root)))
    if writeable:
        # Check with a read-only butler first: a foreign repository is not touched at all.
        with Butler.from_config(config, writeable=False) as reader:
            check_universe(reader, root)
        _check_writable(Path(root))
        registry = sqlitestats.registry_file(str(config["registry", "db"]), root)
        if registry is not None and registry.exists():
            with contextlib.suppress(sqlite3.Error):  # busy now: the next start writes them
                sqlitestats.fit(registry)
    try:
        butler = Butler.from_config(config, writeable=writeable, metrics=metrics)
    except Exception as exc:
        if writeable and _not_writable(exc):
            raise _not_writable_error(Path(root), first_line(exc)) from exc
        raise
    try:
        check_universe(butler, root)
    except BaseException:
        butler.close()
        raise
    statementcache.bound(butler)
    return butler


def ping(butler: Butler) -> None:
    """One query that reaches the registry's database (visit records are not cached); raises if it is away."""
    butler.query_dimension_records("visit", limit=1, explain=False)


def _check_writable(root: Path) -> None:
    """Refuse, in one line, a repository whose folder or SQLite registry this user may not write.

    The butler itself would fail later with a multi-line SQL error (a read-only gen3.sqlite3), or every
    file would fail to be placed (a read-only datastore folder).  SQLite also writes its journal beside
    the database file, so the folder must be writable too.
    """
    for path in (root, root / "gen3.sqlite3"):
        if path.exists() and not os.access(path, os.W_OK):
            raise _not_writable_error(root, f"{path} is read-only for this user")


def _not_writable(exc: BaseException) -> bool:
    chain: BaseException | None = exc
    while chain is not None:
        text = str(chain).lower()
        if isinstance(chain, PermissionError) or "readonly database" in text or "read-only" in text:
            return True
        chain = chain.__cause__ or chain.__context__
    return False


def _not_writable_error(root: Path, detail: str) -> TransientError:
    import getpass

    return TransientError(
        f"{root}: the repository is not writable by user {getpass.getuser()} ({detail}); ask its owner for write "
        "access to the folder and its registry, or ingest into a repository of your own (pfswatchd create DIR)",
        kind=ErrorKind.PERMISSION_DENIED,
    )


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


@dataclass(frozen=True, slots=True)
class Recipe:
    """How a new repository is made and an instrument registered.

    pfswatchd's own recipe below writes what obs_pfs's ``butler.yaml``/``dimensions.yaml`` and
    ``register-instrument`` write, with pfswatchd's formatters; where obs_pfs is importable its own
    machinery can be a Recipe too (same three callables).
    """

    seed_config: Callable[[], Config]
    dimension_config: Callable[[], Path]
    register_instrument: Callable[[Butler, str], None]


def create(
    root: str | Path,
    *,
    instruments: Iterable[str] = DEFAULT_INSTRUMENTS,
    raw_run: str | None = None,
    pfsconfig_run: str | None = None,
    registry_db: str | None = None,
    recipe: Recipe | None = None,
    metrics: ButlerMetrics | None = None,
) -> Butler:
    """Create (or complete) a PFS repository at ``root`` and return a writeable butler.

    ``registry_db`` puts the registry in that database (e.g. PostgreSQL, which needs the btree_gist
    extension) instead of SQLite in ``root``.  On an existing repository this checks the universe
    first and changes nothing when it is not PFS-shaped; otherwise it only adds what is missing
    (instruments, RUNs, and ``<instrument>/defaults`` when there is none).
    """
    recipe = recipe or PFSWATCHD_RECIPE
    if not is_repository(root):
        dimensions = DimensionConfig(str(recipe.dimension_config()))
        _check_cached_universe(dimensions)
        Path(root).mkdir(parents=True, exist_ok=True)
        seed = recipe.seed_config()
        if registry_db:
            seed["registry", "db"] = use_credentials(registry_db)
        Butler.makeRepo(str(root), config=seed, dimensionConfig=dimensions)
        if registry_db:
            _strip_password(Path(root) / "butler.yaml")
    butler = open_butler(root, metrics=metrics)
    for instrument in instruments:
        if not registered(butler, instrument):
            recipe.register_instrument(butler, instrument)
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


def registered(butler: Butler, instrument: str) -> bool:
    return bool(butler.query_dimension_records("instrument", where="instrument = inst", bind={"inst": instrument},
                                               explain=False))


def register_instrument(butler: Butler, instrument: str) -> None:
    """Register an instrument as ``butler register-instrument`` does for obs_pfs's Instrument classes.

    The records are obs_pfs's (PrimeFocusSpectrograph.py), so a later official ``register-instrument``
    on the same repository finds nothing to change.  An instrument without an obs_pfs class (a site
    other than S, F and L, named in the configuration) gets no class_name rather than an invented one.
    """
    registry = butler.registry
    with registry.transaction():
        registry.syncDimensionData(
            "instrument",
            {"name": instrument, "visit_max": VISIT_MAX, "detector_max": DETECTOR_MAX,
             "class_name": INSTRUMENT_CLASSES.get(instrument)},
        )
        for num in range(5):
            registry.syncDimensionData("spectrograph", {"instrument": instrument, "num": num})
        for arm in "brnmx":
            registry.syncDimensionData("arm", {"instrument": instrument, "name": arm})
        for arm in "brmn":  # obs_base _registerFilters with obs_pfs's filter definitions: band = arm
            registry.syncDimensionData("physical_filter", {"instrument": instrument, "name": arm, "band": arm})
        for record in _detector_records(instrument):
            registry.syncDimensionData("detector", record)
    for dataset_type in (*dataset_types(butler.dimensions), *calibration_dataset_types(butler.dimensions)):
        registry.registerDatasetType(dataset_type)


ensure_instrument = register_instrument  # the name older callers use
PFSWATCHD_RECIPE = Recipe(seed_config=seed_config, dimension_config=dimension_config_path,
                          register_instrument=register_instrument)


def _detector_records(instrument: str) -> list[dict[str, Any]]:
    """Cameras b1=0 r1=1 n1=2 ... n4=11, m_k = -(r_k), AG1..AG6 = 101..106 (obs_pfs camera.yaml).

    name_in_raft is the arm letter for spectrograph cameras and the digit for guiders (obs_pfs
    PrimeFocusSpectrograph.py: ``name[0]`` and ``name[-1]``).
    """
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
                "name_in_raft": str(number),
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
    """Register the two RUNs, and ``<instrument>/defaults`` over them when there is none."""
    for run in (raw_run, pfsconfig_run):
        butler.collections.register(run, CollectionType.RUN)
    ensure_defaults(butler, instrument, raw_run=raw_run, pfsconfig_run=pfsconfig_run)


DEFAULTS_DOC = "Made by pfswatchd as the PFS helpdesk makes it: pfsConfigs, raws, calibrations."


def ensure_defaults(butler: Butler, instrument: str, *, raw_run: str, pfsconfig_run: str) -> bool:
    """Create ``<instrument>/defaults`` if it does not exist; True if this call created it.

    The children are those of the PFS helpdesk's ``butler collection-chain $DATASTORE PFS/defaults
    PFS/raw/pfsConfig PFS/raw/sps PFS/calib``, in that order (calibrations only when that collection
    exists).  An existing chain is never changed: it may be the operator's.  Registering the chain
    and defining it happen in one transaction, so no reader sees it empty; of two instances racing,
    only the one whose registration created the chain defines it.
    """
    chain = defaults_chain(instrument)
    if _collection_exists(butler, chain):
        return False
    children = [pfsconfig_run, raw_run]
    calibrations = calibration_collection(instrument)
    if _collection_exists(butler, calibrations):
        children.append(calibrations)
    with butler.transaction():
        if not butler.collections.register(chain, CollectionType.CHAINED, doc=DEFAULTS_DOC):
            return False
        butler.collections.redefine_chain(chain, children)
    return True


def _collection_exists(butler: Butler, name: str) -> bool:
    try:
        butler.collections.get_info(name)
    except MissingCollectionError:
        return False
    return True


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
