"""What the official PFS tools write, rebuilt for tests from the documented rules (not from pfswatchd).

Test double of obs_pfs's interface: obs_pfs needs the LSST C++ stack, which does not install here, so
this module recomputes what ``butler ingest-raws --ingest-task lsst.obs.pfs.gen3.PfsRawIngestTask``,
``butler register-instrument lsst.obs.pfs.PrimeFocusSpectrograph`` and drp_stella's
``ingestPfsConfig.py`` write, using astropy and daf_butler directly.  Every rule cites where it comes
from (obs_pfs fe944332: ``python/lsst/obs/pfs/{translator,gen3,utils,PrimeFocusSpectrograph}.py``;
astro_metadata_translator 30.2026.4300; drp_stella 3a705d9d ``gen3.py``; the PFS helpdesk's 2026
``02_02_run_ingestion.md``), as collected in /work/shared/pfs-pipeline-interop.md and
/work/notes/obs_pfs_ingest.md.  It deliberately imports nothing from ``pfswatchd.files`` or
``pfswatchd.butler``, so that a test comparing the two compares two computations.

Run as a script it builds a repository the way a PFS user's is built (see ``build``): in a process of
its own, because daf_butler caches one dimension universe per (namespace, version) and process, and
the two shapes of "pfs v3" would alias each other in a test process.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import astropy.units as u
import yaml
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.io import fits
from astropy.time import Time, TimeDelta

DATA = Path(__file__).parent / "data"
DIMENSIONS_17 = DATA / "dimensions-pfs-v3-17.yaml"  # obs_pfs gen3/dimensions.yaml before 681db49 (2026-06-26)

# obs_pfs utils.getLamps (IIS cards since 5743fe4, 2026-04-29).
LAMP_MENU = {
    "W_ENIISA": "Ar_eng", "W_ENIISC": "Quartz_eng", "W_ENIISH": "HgAr_eng", "W_ENIISK": "Kr_eng",
    "W_ENIISN": "Ne_eng", "W_ENIARG": "Ar_eng", "W_ENIQTH": "Quartz_eng", "W_ENIHGA": "HgAr_eng",
    "W_ENIKRY": "Kr_eng", "W_ENINEO": "Ne_eng", "W_IISARG": "Ar_eng", "W_IISQTH": "Quartz_eng",
    "W_IISHGA": "HgAr_eng", "W_IISKRY": "Kr_eng", "W_IISNEO": "Ne_eng", "W_IISHYD": "H_eng",
    "W_IISHE": "He_eng", "W_AITNEO": "Ne", "W_AITXEN": "Xe", "W_AITHGA": "HgAr", "W_AITKRY": "Kr",
    "W_AITARG": "Ar", "W_AITHGC": "HgCd", "W_AITQTH": "Quartz", "W_AITDEU": "D", "W_AIT_SRC_Ne": "Ne",
    "W_AIT_SRC_HgAr": "HgAr", "W_AIT_SRC_Xe": "Xe", "W_AIT_SRC_Qth": "Quartz",
}
# astro_metadata_translator translators/subaru.py: the telescope's location.
SUBARU = EarthLocation.from_geodetic(-155.476667, 19.825556, 4139.0)


def official_header(path: Path) -> dict[str, Any]:
    """obs_base's header choice: HDU 0, merged under HDU 1 when HDU 0 is not a PFS header."""
    with fits.open(path, disable_image_compression=True) as hdus:
        primary = dict(hdus[0].header)
        if primary.get("INSTRUME") != "PFS":
            primary.update(dict(hdus[1].header))
    return primary


def corrected(header: dict[str, Any], folders: list[Path]) -> dict[str, Any]:
    """astro_metadata_translator's fix_header as obs_pfs's ingest runs it, without the library: the first
    ``<instrument>-<W_VISIT>.yaml`` found in ``folders`` updates the header (obs_pfs_ingest.md §4.2)."""
    site = header["W_SITE"]
    name = f"{'PFS' if site == 'S' else 'PFS-' + site}-{header['W_VISIT']}.yaml"
    for folder in folders:
        if (folder / name).is_file():
            return {**header, **yaml.safe_load((folder / name).read_text())}
    return header


def _header_string(header: Mapping[str, Any], *keys: str) -> str | None:
    """PfsTranslator.from_header_string: first card whose stripped value is not empty, unstripped."""
    for key in keys:
        if key not in header:
            continue
        if not header[key].strip():
            continue
        return header[key]
    return None


def official_visit(header: Mapping[str, Any], universe_columns: set[str]) -> dict[str, Any]:
    """The kwargs obs_pfs's makeExposureRecord passes to the visit RecordClass (gen3.py:380-466)."""
    site = header["W_SITE"]
    instrument = "PFS" if site == "S" else f"PFS-{site}"
    # to_datetime_begin / to_datetime_end (translator.py): MJD-STR in TIMESYS, plus EXPTIME as a Quantity.
    begin = Time(header["MJD-STR"], format="mjd", scale=header.get("TIMESYS", "utc").lower())
    exptime = header["EXPTIME"]
    exposure = u.Quantity(0.0 if exptime != exptime else exptime, unit=u.s)  # validate_value: NaN -> 0
    end = begin + exposure
    # to_dark_time
    dark = header["DARKTIME"] * u.s if "DARKTIME" in header else exposure
    # to_observation_type / to_observation_reason
    data_type = _header_string(header, "DATA-TYP", "IMAGETYP")
    obs_type = "UNKNOWN" if data_type is None else ("science" if data_type == "OBJECT" else data_type.lower())
    reason = {"science": "science", "UNKNOWN": "UNKNOWN"}.get(obs_type, "calibration")
    # to_object
    target = _header_string(header, "OBJECT", "IMAGETYP") or "UNKNOWN"
    # to_tracking_radec: FK5 with the observation's time and Subaru's location, then ICRS.
    ra = header.get("RA2000", 0.0)  # the card as it is (None too) when present
    dec = header.get("DEC2000", 0.0)
    icrs = SkyCoord(ra, dec, frame="fk5", unit=(u.hourangle, u.deg), obstime=begin,
                    location=SUBARU).transform_to("icrs").icrs
    # to_altaz_begin, with altaz_from_degree_headers' clipping to [0, 90].
    if "ALTITUDE" not in header or "AZIMUTH" not in header:
        altaz = AltAz(0.0 * u.deg, 0.0 * u.deg, obstime=begin, location=SUBARU)
    else:
        alt, az = header["ALTITUDE"], header["AZIMUTH"]
        alt = 90.0 if alt > 90.0 else (0.0 if alt < 0.0 else alt)
        altaz = AltAz(az * u.deg, alt * u.deg, obstime=begin, location=SUBARU)
    # utils.getLamps, joined by to_ext_lamps.
    lamp_type = (header.get("DATA-TYP") or "").lower().strip()
    if lamp_type == "object":
        lit: set[str] = set()
    elif lamp_type == "flat":
        lit = {"Quartz"}
    else:
        lit = {LAMP_MENU[key] for key in LAMP_MENU if header.get(key, False)}
    # observing_day: the TAI date after subtracting Subaru's zero offset.
    day = int((begin.tai - TimeDelta(0, format="sec", scale="tai")).strftime("%Y%m%d"))
    visit = int(header["W_VISIT"])
    record = dict(
        instrument=instrument,
        id=visit,
        obs_id=str(visit),
        group_name="" if header.get("W_PFDSNM") is None else str(header["W_PFDSNM"]),
        group_id=visit,
        datetime_begin=begin,
        datetime_end=end,
        exposure_time=float(exposure.to_value("s")),
        dark_time=float(dark.to_value("s")),
        observation_type=obs_type,
        observation_reason=reason,
        day_obs=day,
        seq_num=visit,
        science_program="unknown" if header.get("PROP-ID") is None else str(header["PROP-ID"]),
        target_name=target,
        tracking_ra=float(icrs.ra.degree),
        tracking_dec=float(icrs.dec.degree),
        sky_angle=None,
        zenith_angle=float(altaz.zen.degree),
        pfs_design_id=int(header["W_PFDSGN"]),
        dither=int(float(header["W_ENFCAZ"]) * 1e4 + 0.5),  # gen3.py quantizeDither
        shift=float(header["W_ENFCAY"]) if "W_ENFCAY" in header else None,
        focus=float(header["W_ENFCAX"]) if "W_ENFCAX" in header else None,
        lamps=",".join(sorted(lit)),
    )
    if "irp_ratio" in universe_columns:  # gen3.py:431: only when the repository's universe has it
        record["irp_ratio"] = int(header["W_H4IRPN"]) if "W_H4IRPN" in header else None
    return record


# -- register-instrument (PrimeFocusSpectrograph.py) ----------------------------------------------

CLASS_NAMES = {  # get_full_type_name of the Instrument classes
    "PFS": "lsst.obs.pfs.PrimeFocusSpectrograph.PrimeFocusSpectrograph",
    "PFS-F": "lsst.obs.pfs.PrimeFocusSpectrograph.PfsSimulator",
    "PFS-L": "lsst.obs.pfs.PrimeFocusSpectrograph.PfsDevelopment",
}


def instrument_records(name: str) -> dict[str, list[dict[str, Any]]]:
    """The dimension records ``butler register-instrument`` writes for one PFS instrument."""
    detectors = []
    for spectrograph in range(1, 5):  # pfs/camera/camera.yaml: b1=0 r1=1 n1=2 ... m_k = -(r_k)
        for arm in "brnm":
            number = -(3 * (spectrograph - 1) + 1) if arm == "m" else 3 * (spectrograph - 1) + "brn".index(arm)
            detectors.append(dict(instrument=name, id=number, full_name=f"{arm}{spectrograph}",
                                  spectrograph=spectrograph, arm=arm, raft=str(spectrograph), name_in_raft=arm,
                                  purpose="science"))
    for guider in range(1, 7):  # name_in_raft = name[-1] for guiders (PrimeFocusSpectrograph.py:120)
        detectors.append(dict(instrument=name, id=100 + guider, full_name=f"AG{guider}", spectrograph=0, arm="x",
                              raft="guider", name_in_raft=str(guider), purpose="guider"))
    return {
        "instrument": [dict(name=name, detector_max=20, visit_max=21474800, class_name=CLASS_NAMES[name])],
        "spectrograph": [dict(instrument=name, num=num) for num in range(5)],
        "arm": [dict(instrument=name, name=arm) for arm in "brnmx"],
        "physical_filter": [dict(instrument=name, name=arm, band=arm) for arm in "brmn"],
        "detector": detectors,
    }


# -- a repository as a PFS user makes it ------------------------------------------------------------

def build(root: Path, *, columns: int, raws: list[Path], pfsconfigs: list[Path]) -> dict[str, Any]:
    """``butler create`` with the PFS universe (17 or 18 visit columns), ``register-instrument``, an
    official-style raw ingest into PFS/raw/sps (DATAID_TYPE_RUN ids, the first file's visit record),
    ``ingestPfsConfig.py`` into PFS/raw/pfsConfig (random UNIQUE ids), and the helpdesk's
    ``butler collection-chain PFS/defaults PFS/raw/pfsConfig PFS/raw/sps PFS/calib``.

    The seed config and the formatters recorded are pfswatchd's (obs_pfs's butler.yaml names formatters
    that do not import here); everything the registry holds follows the official tools.  Returns the
    dataset ids written, by file name.
    """
    from lsst.daf.butler import (
        Butler,
        CollectionType,
        DatasetIdGenEnum,
        DatasetRef,
        DatasetType,
        FileDataset,
    )

    # The storage classes and formatters only (the test double's part that cannot be obs_pfs's).
    from pfswatchd.butler.formatters import FORMATTERS
    from pfswatchd.butler.repo import dimension_config_path, seed_config

    dimensions = str(DIMENSIONS_17 if columns == 17 else dimension_config_path())
    root.mkdir(parents=True)
    Butler.makeRepo(str(root), config=seed_config(), dimensionConfig=dimensions)
    butler = Butler.from_config(str(root), writeable=True)
    registry = butler.registry
    with registry.transaction():
        for element, rows in instrument_records("PFS").items():
            for row in rows:
                registry.syncDimensionData(element, row)
    universe = butler.dimensions
    raw_type = DatasetType("raw", ("instrument", "visit", "spectrograph", "arm"), "PfsRaw", universe=universe)
    config_type = DatasetType("pfsConfig", ("instrument", "visit"), "PfsConfig", universe=universe)
    registry.registerDatasetType(raw_type)
    registry.registerDatasetType(config_type)
    visit_columns = {m.name for m in universe["visit"].metadata}
    ids: dict[str, str] = {}
    # ingest-raws: records from the first file of each visit, synced with update=False.
    by_visit: dict[int, list[Path]] = {}
    for path in raws:
        by_visit.setdefault(int(official_header(path)["W_VISIT"]), []).append(path)
    registry.registerCollection("PFS/raw/sps", CollectionType.RUN)
    datasets = []
    for visit, paths in by_visit.items():
        header = official_header(paths[0])
        record = official_visit(header, visit_columns)
        registry.syncDimensionData("pfs_design_id", {"instrument": "PFS", "value": record["pfs_design_id"]})
        registry.syncDimensionData("dither", {"instrument": "PFS", "value": record["dither"]})
        registry.syncDimensionData("visit", universe["visit"].RecordClass(**record))
        for path in paths:
            card = official_header(path)
            arm = {1: "b", 2: "r", 3: "n", 4: "m"}[card["W_ARM"]]
            ref = DatasetRef(raw_type, {"instrument": "PFS", "visit": visit, "arm": arm,
                                        "spectrograph": card["W_SPMOD"]},
                             run="PFS/raw/sps", id_generation_mode=DatasetIdGenEnum.DATAID_TYPE_RUN)
            datasets.append(FileDataset(path=str(path), refs=[ref], formatter=FORMATTERS["PfsRaw"]))
            ids[path.name] = str(ref.id)
    butler.ingest(*datasets, transfer="copy")
    # ingestPfsConfig.py PFS PFS/raw/pfsConfig ...: random ids, cat_id and pfsConfig join rows synced.
    registry.registerCollection("PFS/raw/pfsConfig", CollectionType.RUN)
    configs = []
    for path in pfsconfigs:
        with fits.open(path) as hdus:
            visit = int(hdus[0].header["W_VISIT"])
            cat_ids = sorted({int(c) for c in hdus["CONFIG"].data["catId"]})
        with registry.transaction():
            for cat_id in cat_ids:
                registry.syncDimensionData("cat_id", {"instrument": "PFS", "id": cat_id})
                registry.syncDimensionData("pfsConfig", {"instrument": "PFS", "cat_id": cat_id, "visit": visit})
        ref = DatasetRef(config_type, {"instrument": "PFS", "visit": visit}, run="PFS/raw/pfsConfig")
        configs.append(FileDataset(path=str(path), refs=[ref], formatter=FORMATTERS["PfsConfig"]))
        ids[path.name] = str(ref.id)
    butler.ingest(*configs, transfer="copy")
    # The helpdesk's chain (redefine mode, the CLI default); PFS/calib as the calibration collection.
    registry.registerCollection("PFS/calib", CollectionType.CALIBRATION)
    registry.registerCollection("PFS/defaults", CollectionType.CHAINED)
    butler.collections.redefine_chain("PFS/defaults", ["PFS/raw/pfsConfig", "PFS/raw/sps", "PFS/calib"])
    butler.close()
    return ids


def inspect(root: Path) -> dict[str, Any]:
    """What the repository holds, read in a process of its own (see the module docstring)."""
    from lsst.daf.butler import Butler

    with Butler.from_config(str(root)) as butler:
        datasets = []
        for type_name in ("raw", "pfsConfig"):
            for ref in butler.query_datasets(type_name, collections="*", find_first=False, limit=None,
                                             explain=False):
                datasets.append({"type": type_name, "run": ref.run, "id": str(ref.id),
                                 "data_id": {k: v for k, v in ref.dataId.required.items()}})
        visits = [{k: (str(v) if k == "timespan" else v) for k, v in r.toDict().items()}
                  for r in butler.query_dimension_records("visit", explain=False)]
        instruments = [r.toDict() for r in butler.query_dimension_records("instrument", explain=False)]
        chains = {}
        for info in butler.collections.query_info("*", include_chains=True):
            if info.type.name == "CHAINED":
                chains[info.name] = list(info.children)
        return {"datasets": datasets, "visits": visits, "instruments": instruments, "chains": chains,
                "visit_columns": sorted(m.name for m in butler.dimensions["visit"].metadata)}


def main(argv: list[str]) -> None:
    command, root = argv[0], Path(argv[1])
    if command == "build":
        spec = json.loads(argv[2])
        result: Any = build(root, columns=spec["columns"], raws=[Path(p) for p in spec["raws"]],
                            pfsconfigs=[Path(p) for p in spec["pfsconfigs"]])
    else:
        result = inspect(root)
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
