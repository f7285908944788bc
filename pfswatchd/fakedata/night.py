"""A night of synthetic visits, and bursts of raw frames: template files restamped, not written anew.

Writing a frame with astropy costs tens of milliseconds (a pfsConfig hundreds); ``pfswatchd fake-data
--visits 340`` took minutes.  Each camera's first frame of a night and each kind of pfsConfig are
written with astropy once; every later visit is that template with the cards that differ rewritten
in place (their positions do not move: the same cards in the same order), its tables' rows refilled
(same columns, same row counts), and DATASUM and CHECKSUM recomputed.  The result is the file the
writer would produce, except that a camera's pixels are those of its first visit of the night (its
data ID, headers, times, pointing, design and dither are the visit's own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

import pfswatchd.fakedata.fitsbytes as fitsbytes
from pfswatchd.butler.pfsraw import camera_id
from pfswatchd.fakedata.configs import _fibres, pfsconfig_parts, write_pfsconfig
from pfswatchd.fakedata.frames import (
    ARM_NUMBERS,
    default_raw_cards,
    design_id_for,
    pfsconfig_filename,
    pfsf_filename,
    raw_filename,
    write_pfsa,
    write_pfsb,
)
from pfswatchd.files import cameras

PROPOSALS = ("S25A-001QN", "S25A-002QN")
DITHERS = (0.0, 0.00071, -0.0005)  # [mm] the dither cycle of a night


def _checksum_comment(when: Time) -> str:
    return f"HDU checksum updated {when.strftime('%Y-%m-%dT%H:%M:%S')}"


@dataclass
class _Template:
    data: bytes
    hdus: list[fitsbytes.Hdu]
    cards: list[list[tuple[str, Any, str]]]  # per HDU, the cards that may differ between visits
    dtypes: list[np.dtype[Any] | None] = field(default_factory=list)  # per HDU, a table's row layout


@dataclass
class Night:
    """Writes the files of one night, keeping a template per camera and per kind of pfsConfig."""

    root: Path
    full_size: bool = False
    site: str = "S"
    seed: int = 0
    _raws: dict[tuple[int, str], _Template] = field(default_factory=dict)
    _configs: dict[int, _Template] = field(default_factory=dict)

    # -- raws ------------------------------------------------------------------------------------

    def raw(self, target: Path, *, visit: int, spectrograph: int, arm: str, pfs_design_id: int, mjd: float,
            dither_mm: float) -> Path:
        cards, when = default_raw_cards(arm, visit=visit, spectrograph=spectrograph, pfs_design_id=pfs_design_id,
                                        site=self.site, mjd=mjd, dither_mm=dither_mm, seed=self.seed,
                                        full_size=self.full_size)
        key = (spectrograph, arm)
        template = self._raws.get(key)
        if template is None:
            common: dict[str, Any] = dict(visit=visit, spectrograph=spectrograph, pfs_design_id=pfs_design_id,
                                          site=self.site, mjd=mjd, dither_mm=dither_mm, seed=self.seed,
                                          full_size=self.full_size)
            path = write_pfsb(target, **common) if arm == "n" else write_pfsa(target, arm=arm, **common)
            written = path.read_bytes()
            self._raws[key] = _Template(written, fitsbytes.layout(written), [cards])
            return path
        data = bytearray(template.data)
        primary = template.hdus[0]
        for (name, value, comment), (_, old, _) in zip(cards, template.cards[0], strict=True):
            if name != "COMMENT" and (value != old or type(value) is not type(old)):
                fitsbytes.set_card(data, primary, name, value, comment)
        fitsbytes.restamp(data, primary, _checksum_comment(when))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    # -- pfsConfigs ------------------------------------------------------------------------------

    def pfsconfig(self, target: Path, *, visit: int, subset: int, created: str,
                  cards: Mapping[str, Any] | None = None) -> Path:
        extra = {"DATE-OBS": created, **(cards or {})}
        template = self._configs.get(subset)
        if template is None:
            path = write_pfsconfig(target, visit=visit, subset=subset, proposals=PROPOSALS, seed=self.seed,
                                   extra_cards=extra)
            self._configs[subset] = self._config_template(path, visit, subset, extra)
            return path
        parts = pfsconfig_parts(visit=visit, subset=subset, proposals=PROPOSALS, seed=self.seed, extra_cards=extra)
        data = bytearray(template.data)
        tables = [parts.tables[name] for name in ("CONFIG", "PHOTOMETRY", "GUIDESTARS")]
        for hdu, dtype, columns in zip(template.hdus[1:], template.dtypes[1:], tables, strict=True):
            rows = _rows(columns, dtype)
            if rows is None or len(rows.tobytes()) > hdu.size:  # another layout: write it the slow way
                return write_pfsconfig(target, visit=visit, subset=subset, proposals=PROPOSALS, seed=self.seed,
                                       extra_cards=extra)
            raw = rows.tobytes()
            data[hdu.data : hdu.data + hdu.size] = raw + bytes(hdu.size - len(raw))
        comment = _checksum_comment(parts.when)
        for hdu, old_cards in zip(template.hdus, template.cards, strict=True):
            new_cards = {name: (value, comment_) for name, value, comment_ in parts.cards}
            for name, old, _ in old_cards:
                value, card_comment = new_cards[name]
                if value != old or type(value) is not type(old):
                    fitsbytes.set_card(data, hdu, name, value, card_comment)
            fitsbytes.restamp(data, hdu, comment)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    def _config_template(self, path: Path, visit: int, subset: int, extra: dict[str, Any]) -> _Template:
        data = path.read_bytes()
        hdus = fitsbytes.layout(data)
        parts = pfsconfig_parts(visit=visit, subset=subset, proposals=PROPOSALS, seed=self.seed, extra_cards=extra)
        with fits.open(path, memmap=False) as hdul:
            dtypes = [None, *(np.dtype(hdu.data.dtype.descr) for hdu in hdul[1:])]
        # The primary's cards are copied into the CONFIG and PHOTOMETRY headers; GUIDESTARS has its own.
        primary = [card for card in parts.cards if card[0] in hdus[0].cards]
        cards = [primary, [c for c in primary if c[0] in hdus[1].cards], [c for c in primary if c[0] in hdus[2].cards],
                 []]
        return _Template(data, hdus, cards, dtypes)


def _rows(columns: dict[str, np.ndarray], dtype: np.dtype[Any] | None) -> np.ndarray | None:
    """The table's rows in the template's on-disk layout, or None if a value does not fit it."""
    assert dtype is not None and dtype.names is not None
    if set(columns) != set(dtype.names):
        return None
    length = len(next(iter(columns.values())))
    rows = np.zeros(length, dtype=dtype)
    for name in dtype.names:
        values = columns[name]
        if dtype[name].kind == "S":
            encoded = np.char.encode(values.astype(str), "ascii")
            if encoded.dtype.itemsize > dtype[name].itemsize:
                return None
            rows[name] = encoded
        else:
            rows[name] = values
    return rows


def make_visits(root: str | Path, *, visits: int = 2, first_visit: int = 100,
                spectrographs: Sequence[int] = (1, 2), arms: Sequence[str] = ("b", "r", "n"),
                date: str = "2025-05-01", full_size: bool = False, pfsf: bool = False, site: str = "S",
                seed: int = 0) -> list[Path]:
    """Write complete visits in the summit layout ``root/raw/<date>/{sps,ramps,pfsConfig}/``.

    Each visit gets its own design (fibre positions vary by visit), a dither from the cycle
    0.0, 0.00071, -0.0005 mm, and a start 20 minutes after the previous visit's, the first at
    06:00 UTC on ``date``.  Its pfsConfig is dated two minutes before the exposure.  With
    ``pfsf=True`` the STARS copies ``PFSF<visit>00.fits`` (full) and ``...01``/``...02`` (one
    proposal each) are written too.  Every file is in the folder of ``date``, as a night's download
    is, even when the visits run past midnight UTC.

    Returns:
        Every written path; per visit the pfsConfig, the PFSF files, then the raws.
    """
    base = Path(root) / "raw" / date
    mjd0 = Time(date, scale="utc").mjd + 0.25
    night = Night(Path(root), full_size=full_size, site=site, seed=seed)
    written: list[Path] = []
    # The cameras each visit exposes, as its pfsConfig declares them: the raws written below.
    exposed = {"W_CAMMSK": cameras.mask_of(f"{arm}{sm}" for sm in spectrographs for arm in arms),
               "ARMS": "".join(arms)}
    for k in range(visits):
        visit, mjd = first_visit + k, mjd0 + k * 20 / 1440
        fibres = _fibres(visit, 12, PROPOSALS, seed)
        design = design_id_for(fibres["fiberId"], fibres["ra"], fibres["dec"])
        created = Time(mjd - 2 / 1440, format="mjd", scale="utc").strftime("%Y-%m-%dT%H:%M:%S")
        names = [pfsconfig_filename(design, visit)]
        names += [pfsf_filename(visit, subset) for subset in range(3 if pfsf else 0)]
        for i, name in enumerate(names):
            written.append(night.pfsconfig(base / "pfsConfig" / name, visit=visit, subset=max(i - 1, 0),
                                           created=created, cards=exposed))
        for spectrograph in spectrographs:
            for arm in arms:
                folder, category = ("ramps", "B") if arm == "n" else ("sps", "A")
                target = base / folder / raw_filename(site, category, visit, spectrograph, arm)
                written.append(night.raw(target, visit=visit, spectrograph=spectrograph, arm=arm,
                                         pfs_design_id=design, mjd=mjd, dither_mm=DITHERS[k % 3]))
    return written


# -- bursts: many distinct raws of one template (tests and benchmarks) -----------------------------


def _card(key: str, value: Any, comment: str) -> bytes:
    if isinstance(value, bool):
        text = f"{'T' if value else 'F':>20}"
    else:
        text = f"'{value:<8}'".ljust(20) if isinstance(value, str) else f"{value!r:>20}"
    return f"{key:<8}= {text} / {comment}"[:80].ljust(80).encode("ascii")


def clone_raw(template: str | Path, dest: str | Path, *, visit: int, spectrograph: int | None = None,
              pfs_design_id: int | None = None, site: str = "S", cards: Mapping[str, Any] | None = None) -> Path:
    """Copy a PFSA/PFSB ``template`` as the frame of another visit (and spectrograph).

    The name is ``PF{site}{A|B}{visit}{spectrograph}{arm}.fits`` in ``dest`` (a folder) and the cards
    W_VISIT, W_SPMOD, FRAMEID, EXP-ID, DETECTOR, DET-ID (and W_PFDSGN when given) agree with it.
    ``cards`` rewrites further cards in place (each must be in the template; a clone costs
    microseconds where writing a frame with astropy costs tens of milliseconds).
    """
    data = bytearray(Path(template).read_bytes())
    header_end = data.find(b"END" + b" " * 77)
    while header_end % 80:
        header_end = data.find(b"END" + b" " * 77, header_end + 1)
    blocks = (header_end // 2880 + 1) * 2880

    def position(key: str) -> int:
        start = data.find(f"{key:<8}= ".encode(), 0, blocks)
        while start >= 0 and start % 80:
            start = data.find(f"{key:<8}= ".encode(), start + 1, blocks)
        if start < 0:
            raise ValueError(f"{template}: no {key} card to rewrite")
        return start

    def value(key: str) -> Any:
        start = position(key)
        field = data[start + 10 : start + 80].decode().split("/")[0].strip()
        return field.strip("'").strip() if field.startswith("'") else int(field)

    arm_number = value("W_ARM")
    arm = {v: k for k, v in ARM_NUMBERS.items()}[arm_number]
    spectrograph = spectrograph or value("W_SPMOD")
    category = "B" if arm == "n" else "A"
    name = raw_filename(site, category, visit, spectrograph, arm)
    rewrite: dict[str, tuple[Any, str]] = {
        "W_VISIT": (visit, "PFS exposure visit number"),
        "W_SPMOD": (spectrograph, "Spectrograph module. 1-4 at Subaru"),
        "FRAMEID": (name[:-5], "Sequence number in archive"),
        "EXP-ID": (f"PFSE{visit:08d}", "PFS visit"),
        "DETECTOR": (f"{arm}{spectrograph}", "Name of the detector"),
        "DET-ID": (camera_id(arm, spectrograph), "Subaru/DRP FPA ID for this module and arm"),
        "W_SITE": (site, "PFS site"),
    }
    if pfs_design_id is not None:
        rewrite["W_PFDSGN"] = (pfs_design_id, "pfsDesign, from pfi")
    rewrite.update((key, (value, "")) for key, value in (cards or {}).items())
    for key, (new, comment) in rewrite.items():
        start = position(key)
        data[start : start + 80] = _card(key, new, comment)
    checksum = position("CHECKSUM")
    data[checksum + 10 : checksum + 28] = b"'0000000000000000'"
    encoded = fitsbytes.encode_checksum(fitsbytes.ones_complement_sum(bytes(data[:blocks])))
    data[checksum + 10 : checksum + 28] = f"'{encoded}'".encode()
    path = Path(dest) / name
    path.write_bytes(data)
    return path


_BURST_DESIGN = 0x1945BE7E6DE4B2CF  # the pfsDesign of every burst template


def _burst_template(arm: str, folder: str | Path) -> Path:
    """The template of ``arm`` (visit 1, spectrograph 1) in ``folder``, written with astropy if missing."""
    path = Path(folder) / raw_filename("S", "B" if arm == "n" else "A", 1, 1, arm)
    if not path.exists():
        Path(folder).mkdir(parents=True, exist_ok=True)
        if arm == "n":
            write_pfsb(path, visit=1, spectrograph=1, pfs_design_id=_BURST_DESIGN, n_reads=2)
        else:
            write_pfsa(path, visit=1, spectrograph=1, arm=arm, pfs_design_id=_BURST_DESIGN)
    return path


def clone_burst(folder: str | Path, count: int, first_visit: int, templates_folder: str | Path) -> list[Path]:
    """``count`` distinct raws in ``folder``, 12 per visit (spectrographs 1-4 x arms b, r, n).

    Each is a :func:`clone_raw` of a template written once in ``templates_folder``.
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    visit = first_visit
    while len(paths) < count:
        for spectrograph in (1, 2, 3, 4):
            for arm in ("b", "r", "n"):
                if len(paths) < count:
                    source = _burst_template(arm, templates_folder)
                    paths.append(clone_raw(source, folder, visit=visit, spectrograph=spectrograph))
        visit += 1
    return paths


def write_long_pfsb(path: str | Path, *, visit: int, spectrograph: int, pfs_design_id: int, n_reads: int,
                    **kwargs: Any) -> Path:
    """A ramp of ``n_reads`` reads (``1 + 2 * n_reads + 2`` HDUs, format version 3) in seconds.

    :func:`write_pfsb` writes one read, whose IMAGE/REF pair is then repeated as reads 2 ... n
    (EXTNAME, W_H4READ and checksums restamped; the pixels of every read are those of read 1), and
    the primary says ``W_H4NRED = n_reads`` (EXPTIME, DARKTIME = n_reads x the frame time).  For the
    limits (a 999-read ramp has 2,001 HDUs), not for pixel tests.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_pfsb(path, visit=visit, spectrograph=spectrograph, pfs_design_id=pfs_design_id, n_reads=1, **kwargs)
    data = bytearray(path.read_bytes())
    hdus = fitsbytes.layout(bytes(data))
    primary, image, ref = hdus[0], hdus[-2], hdus[-1]
    comment = _checksum_comment(Time(kwargs.get("mjd", 60800.5), format="mjd"))
    parts = [data[: image.header]]
    image_bytes, ref_bytes = bytes(data[image.header : image.data + image.size]), bytes(data[ref.header :])
    for n in range(1, n_reads + 1):
        for template, hdu, name in ((image_bytes, image, f"IMAGE_{n}"), (ref_bytes, ref, f"REF_{n}")):
            copy = bytearray(template)
            shifted = fitsbytes.Hdu(0, hdu.data - hdu.header, hdu.size,
                                    {k: v - hdu.header for k, v in hdu.cards.items()})
            fitsbytes.set_card(copy, shifted, "EXTNAME", name, "name of this binary table extension")
            if "W_H4READ" in shifted.cards:
                fitsbytes.set_card(copy, shifted, "W_H4READ", n, "Read number")
            fitsbytes.restamp(copy, shifted, comment)
            parts.append(copy)
    head, frame = bytearray(parts[0]), primary
    frame_time = float(bytes(head[primary.cards["W_FRMTIM"] + 10 : primary.cards["W_FRMTIM"] + 80]).split(b"/")[0])
    fitsbytes.set_card(head, frame, "W_H4NRED", n_reads, "Number of reads")
    for key, label in (("EXPTIME", "[s] Exposure time"), ("DARKTIME", "[s] Dark time")):
        if key in frame.cards:
            fitsbytes.set_card(head, frame, key, n_reads * frame_time, label)
    fitsbytes.restamp(head, frame, comment)
    parts[0] = head
    path.write_bytes(b"".join(parts))
    return path
