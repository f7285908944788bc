"""The writer of synthetic pfsConfig and PFSF files: the design's fibres, photometry and guide stars."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from pfswatchd.fakedata.frames import (
    _FLUXSTD,
    _FORMATS,
    _PFSCONFIG_CARDS,
    _SCIENCE,
    _SKY,
    _TYPE_CYCLE,
    _UNASSIGNED,
    _field,
    _finish,
    _header,
    _parse_cards,
    _rng,
    design_id_for,
)


def _fibres(visit: int, n_fibers: int, proposals: Sequence[str], seed: int) -> dict[str, np.ndarray]:
    """CONFIG columns of a visit's design, in the datamodel's order.

    Every 6 fibres: 3 SCIENCE (round-robin over ``proposals``), 1 SKY, 1 FLUXSTD, 1 UNASSIGNED.
    """
    rng = _rng(seed, visit, 55)
    ra0, dec0, _ = _field(visit, seed)
    fiber_id = np.sort(rng.choice(np.arange(1, 2395), size=n_fibers, replace=False)).astype(np.int32)
    ttype = np.array([_TYPE_CYCLE[i % len(_TYPE_CYCLE)] for i in range(n_fibers)], dtype=np.int32)
    science = np.flatnonzero(ttype == _SCIENCE)
    proposal = np.full(n_fibers, "N/A", dtype=object)
    proposal[science] = [proposals[i % len(proposals)] for i in range(len(science))]
    assigned, stars = ttype != _UNASSIGNED, ttype == _FLUXSTD
    nominal = rng.uniform(-220.0, 220.0, (n_fibers, 2)).astype(np.float32)
    nominal[~assigned] = np.nan
    f4 = np.float32
    return {
        "fiberId": fiber_id, "cobraId": fiber_id.copy(), "tract": np.full(n_fibers, 9813, np.int32),
        "patch": np.array(["4,4"] * n_fibers),
        "ra": np.where(assigned, ra0 + rng.uniform(-0.6, 0.6, n_fibers), np.nan),
        "dec": np.where(assigned, dec0 + rng.uniform(-0.6, 0.6, n_fibers), np.nan),
        "catId": np.select([ttype == _SCIENCE, ttype == _SKY, stars], [10, 1001, 4], -1).astype(np.int32),
        "objId": np.where(assigned, rng.integers(1, 2**50, n_fibers), -1).astype(np.int64),
        "targetType": ttype, "epoch": np.where(stars, "J2016.0", "J2000.0"),
        "pmRa": np.where(stars, rng.normal(0, 5, n_fibers), 0.0).astype(f4),
        "pmDec": np.where(stars, rng.normal(0, 5, n_fibers), 0.0).astype(f4),
        "parallax": np.where(stars, rng.uniform(0.1, 2, n_fibers), 1e-8).astype(f4),
        "proposalId": proposal.astype(str),
        "obCode": np.array([f"{p}_ob{i:03d}" if p != "N/A" else "N/A" for i, p in enumerate(proposal)]),
        "pfiNominal": nominal,
        "pfiCenter": (np.nan_to_num(nominal) + rng.normal(0, 0.005, (n_fibers, 2))).astype(f4),
        "cobraTheta": rng.uniform(0, 360, n_fibers).astype(f4),
        "cobraPhi": rng.uniform(0, 180, n_fibers).astype(f4),
        "fiberStatus": np.ones(n_fibers, np.int32),
    }


def _table(columns: Mapping[str, np.ndarray], name: str, header: fits.Header) -> fits.BinTableHDU:
    """A binary table; strings get ``nA`` with n the longest value, other unlisted columns ``E``."""
    cols = []
    for key, values in columns.items():
        fmt = _FORMATS.get(key, "E")
        if values.dtype.kind in "US":
            fmt = f"{max([1, *(len(str(v)) for v in values)])}A"
        cols.append(fits.Column(name=key, format=fmt, array=values, unit="nJy" if "Flux" in key else None))
    return fits.BinTableHDU.from_columns(cols, header=header, name=name)


@dataclass(frozen=True)
class PfsConfigParts:
    """What a pfsConfig holds: the primary's cards, the three tables' columns, and when it was written."""

    cards: list[tuple[str, Any, str]]
    tables: dict[str, dict[str, np.ndarray]]  # CONFIG, PHOTOMETRY, GUIDESTARS
    when: Time


def pfsconfig_parts(*, visit: int, pfs_design_id: int | None = None, n_fibers: int = 12, subset: int = 0,
                    proposals: Sequence[str] = ("S25A-001QN", "S25A-002QN"), seed: int = 0,
                    extra_cards: Mapping[str, Any] | None = None, drop_cards: Iterable[str] = ()) -> PfsConfigParts:
    """The contents of the pfsConfig :func:`write_pfsconfig` writes (same arguments)."""
    fibres = _fibres(visit, n_fibers, proposals, seed)
    if pfs_design_id is None:
        pfs_design_id = design_id_for(fibres["fiberId"], fibres["ra"], fibres["dec"])
    if subset:
        if not 1 <= subset <= len(proposals):
            raise ValueError(f"subset {subset} is not in 1..{len(proposals)} (one per proposal)")
        keep = fibres["proposalId"] == proposals[subset - 1]
        keep |= np.isin(fibres["targetType"], (_SKY, _FLUXSTD))
        fibres = {key: values[keep] for key, values in fibres.items()}
    ra0, dec0, posang = _field(visit, seed)
    created = Time(60795.0 + visit % 1000 * 0.01, format="mjd", scale="utc").strftime("%Y-%m-%dT%H:%M:%S")
    cards = _updated([
        ("RA", ra0, "[deg] Telescope boresight RA"), ("DEC", dec0, "[deg] Telescope boresight Dec"),
        ("POSANG", posang, "[deg] PFI position angle"),
        ("DSGN_NAM", f"fake-0x{pfs_design_id:016x}", "Name of design"),
        ("W_PFDSGN", int(pfs_design_id), "pfsDesignId"), ("W_VISIT", visit, "PFS visit"),
        ("FRAMEID", f"PFSF{visit:06d}{subset:02d}", "Sequence number in archive"),
        ("EXP-ID", f"PFSE{visit:08d}", "PFS exposure visit"),
        ("PROP-ID", proposals[subset - 1] if subset else proposals[0], "Proposal ID"),
        ("DATE-OBS", created, "pfsConfig creation date (UTC)"), *_parse_cards(_PFSCONFIG_CARDS)],
        extra_cards, drop_cards)
    rows = [(fid, band) for fid, tt in zip(fibres["fiberId"], fibres["targetType"], strict=True)
            if tt in (_SCIENCE, _FLUXSTD)
            for band in (("g_hsc", "r2_hsc", "i2_hsc") if tt == _SCIENCE else ("g_ps1", "r_ps1", "i_ps1"))]
    rng = _rng(seed, visit, 66)
    flux = rng.uniform(500.0, 20000.0, len(rows)).astype(np.float32)
    photometry: dict[str, np.ndarray] = {"fiberId": np.array([r[0] for r in rows], np.int32)}
    for key, scale in (("fiberFlux", 0.6), ("psfFlux", 0.9), ("totalFlux", 1.0),
                       ("fiberFluxErr", 0.02), ("psfFluxErr", 0.02), ("totalFluxErr", 0.02)):
        photometry[key] = flux * np.float32(scale)
    photometry["filterName"] = np.array([r[1] for r in rows], dtype="U8")
    n, f4 = 6, np.float32
    guide = {"objId": rng.integers(1, 2**50, n), "epoch": np.array(["J2016.0"] * n),
             "ra": ra0 + rng.uniform(-0.7, 0.7, n), "dec": dec0 + rng.uniform(-0.7, 0.7, n),
             "pmRa": rng.normal(0, 3, n).astype(f4), "pmDec": rng.normal(0, 3, n).astype(f4),
             "parallax": rng.uniform(0.1, 1, n).astype(f4), "magnitude": rng.uniform(13, 19, n).astype(f4),
             "passband": np.array(["g_gaia"] * n), "color": rng.uniform(0.3, 1.5, n).astype(f4),
             "agId": np.arange(n), "agX": rng.uniform(0, 1072, n).astype(f4),
             "agY": rng.uniform(0, 1024, n).astype(f4), "flag": np.zeros(n, np.int32)}
    date = next((value for key, value, _ in cards if key == "DATE-OBS"), created)
    return PfsConfigParts(cards, {"CONFIG": fibres, "PHOTOMETRY": photometry, "GUIDESTARS": guide},
                          Time(str(date), scale="utc"))


def _updated(cards: list[tuple[str, Any, str]], extra: Mapping[str, Any] | None,
             drop: Iterable[str]) -> list[tuple[str, Any, str]]:
    """``cards`` with ``extra`` set (in place, or appended) and ``drop`` removed, as _apply does to a Header."""
    result = list(cards)
    for key, value in (extra or {}).items():
        index = next((i for i, card in enumerate(result) if card[0] == key), None)
        if index is None:
            result.append((key, value, ""))
        else:
            result[index] = (key, value, result[index][2])
    dropped = set(drop)
    return [card for card in result if card[0] not in dropped]


def write_pfsconfig(path: str | Path, *, visit: int, pfs_design_id: int | None = None, n_fibers: int = 12,
                    subset: int = 0, proposals: Sequence[str] = ("S25A-001QN", "S25A-002QN"), seed: int = 0,
                    extra_cards: Mapping[str, Any] | None = None, drop_cards: Iterable[str] = ()) -> Path:
    """Write a pfsConfig (``subset=0``) or a customised PFSF copy (``subset=k``) and return its path.

    A customised copy keeps the fibres of ``proposals[k-1]`` plus SKY and FLUXSTD fibres, with the
    same W_PFDSGN and W_VISIT as the full file.  The design id is computed from the full fibre set
    when ``pfs_design_id`` is None.
    """
    parts = pfsconfig_parts(visit=visit, pfs_design_id=pfs_design_id, n_fibers=n_fibers, subset=subset,
                            proposals=proposals, seed=seed, extra_cards=extra_cards, drop_cards=drop_cards)
    header = _header(parts.cards)
    table_header = header.copy()
    for label, names in (("TargetType", ("SCIENCE", "SKY", "FLUXSTD", "UNASSIGNED")),
                         ("FiberStatus", ("GOOD", "BROKENFIBER", "BLOCKED"))):
        for value, name in enumerate(names, start=1):
            table_header[f"HIERARCH {label}.{name}"] = value
    gs_header = _header([("DAMD_VER", 1, "GuideStars datamodel version"),
                         ("TEL_ELEV", 62.5, "[deg] Telescope elevation"), ("GS_CATID", 4, "Catalog id")])
    tables = parts.tables
    hdus = [fits.PrimaryHDU(header=header), _table(tables["CONFIG"], "CONFIG", table_header),
            _table(tables["PHOTOMETRY"], "PHOTOMETRY", table_header.copy()),
            _table(tables["GUIDESTARS"], "GUIDESTARS", gs_header)]
    return _finish(hdus, path, parts.when)
