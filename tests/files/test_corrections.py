"""Header corrections change a historical visit's design id, group name and lamps as the official ingest does.

The correction files are in the format obs_pfs generates from pfs_utils' headerFixes.py
(``<instrument>-<visit>.yaml``, PyYAML block style, sorted keys): visit 115821's is the 2024-10-23
"W_PFDSGN=0 botch" fix (headerFixes.py:220-226), visit 430's the W_AITNEO/W_AITKRY lamp fix (:96).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from astropy.io import fits

from conftest import classified, make_ingester, write_raw
from harness import BIN
from official import corrected, official_header, official_visit
from pfswatchd.files.corrections import HeaderCorrections
from pfswatchd.files.examine import examine
from pfswatchd.model import Status

BOTCH_FIX = "W_PFDSGN: 6488366533167378714\nW_PFDSNM: cobraHome\n"  # 0x5a0b4efc2df9711a
LAMP_FIX = "W_AITKRY: true\nW_AITNEO: false\n"


def _folder(base: Path, files: dict[str, str]) -> Path:
    base.mkdir(parents=True)
    for name, text in files.items():
        (base / name).write_text(text)
    return base


def test_a_correction_file_changes_design_and_lamps_exactly_as_the_official_ingest(butler, pfs_repo, tmp_path):
    fixes = _folder(tmp_path / "corrections", {"PFS-115821.yaml": BOTCH_FIX, "PFS-430.yaml": LAMP_FIX})
    botched = write_raw(tmp_path / "in", visit=115821, design=0, extra_cards={"W_PFDSNM": "botched"})
    lamps = write_raw(tmp_path / "in", visit=430, data_type="COMPARISON")  # DAQ wrote Ne and HgAr on
    untouched = write_raw(tmp_path / "in", visit=431, data_type="COMPARISON")
    corrections = HeaderCorrections.standard((fixes,))
    files = [examine(path, corrections=corrections).classified for path in (botched, lamps, untouched)]
    assert files[0] is not None and files[0].pfs_design_id == 0x5A0B4EFC2DF9711A  # the raw's data ID too
    outcomes = make_ingester(butler, pfs_repo).ingest(files)
    assert [o.status for o in outcomes] == [Status.INGESTED] * 3
    columns = {m.name for m in butler.dimensions["visit"].metadata}
    for path in (botched, lamps, untouched):
        expected = official_visit(corrected(official_header(path), [fixes]), columns)
        [stored] = butler.query_dimension_records("visit", instrument="PFS", visit=expected["id"])
        for name in ("pfs_design_id", "group_name", "lamps", "observation_type", "tracking_ra", "zenith_angle"):
            assert getattr(stored, name) == expected[name], (path.name, name)
    records = {r.id: r for r in butler.query_dimension_records("visit", instrument="PFS", explain=False)}
    assert (records[115821].pfs_design_id, records[115821].group_name) == (0x5A0B4EFC2DF9711A, "cobraHome")
    assert (records[430].lamps, records[431].lamps) == ("HgAr,Kr", "HgAr,Ne")
    # Without corrections the botched raw keeps its header's values, as it did before.
    [plain] = classified(botched)
    assert plain.pfs_design_id == 0


def test_the_command_uses_the_option_the_environment_and_obs_pfs_when_importable(tmp_path):
    """--header-corrections first, then $METADATA_CORRECTIONS_PATH, then obs_pfs's own corrections/.

    obs_pfs cannot be installed here (it needs the LSST C++ stack): a TEST DOUBLE of the one attribute
    pfswatchd reads, ``lsst.obs.pfs.translator.PfsTranslator.default_search_path`` (obs_pfs
    translator.py:27, ``[<OBS_PFS_DIR>/corrections]``), is put on PYTHONPATH.
    """
    repo = tmp_path / "repo"
    subprocess.run([str(BIN / "pfswatchd"), "create", str(repo)], check=True, capture_output=True)
    option = _folder(tmp_path / "option", {"PFS-115821.yaml": BOTCH_FIX})
    environment = _folder(tmp_path / "environment", {"PFS-430.yaml": LAMP_FIX, "PFS-115821.yaml": "W_PFDSGN: 1\n"})
    obs_pfs_dir = _folder(tmp_path / "obs_pfs" / "corrections", {"PFS-432.yaml": "W_PFDSGN: 7\n"})
    double = tmp_path / "double" / "lsst" / "obs" / "pfs"
    double.mkdir(parents=True)
    (double.parent / "__init__.py").write_text("")
    (double / "__init__.py").write_text("# TEST DOUBLE of obs_pfs: nothing of the real package\n")
    (double / "translator.py").write_text(
        "# TEST DOUBLE of obs_pfs's lsst.obs.pfs.translator (translator.py:27): only default_search_path.\n"
        f"class PfsTranslator:\n    default_search_path = [{str(obs_pfs_dir)!r}]\n")
    data = tmp_path / "in"
    write_raw(data, visit=115821, design=0)
    write_raw(data, visit=430, data_type="COMPARISON")
    write_raw(data, visit=432)
    env = {**os.environ, "METADATA_CORRECTIONS_PATH": str(environment), "PYTHONPATH": str(tmp_path / "double")}
    result = subprocess.run([str(BIN / "pfswatchd"), "ingest-raws", str(repo), str(data),
                             "--header-corrections", str(option)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    check = ("from lsst.daf.butler import Butler\n"
             f"b = Butler.from_config({str(repo)!r})\n"
             "print(sorted((r.id, r.pfs_design_id, r.lamps) for r in b.query_dimension_records('visit')))")
    listing = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout
    assert listing.strip() == str(sorted([(430, 0x1945BE7E6DE4B2CF, "HgAr,Kr"), (432, 7, ""),
                                          (115821, 0x5A0B4EFC2DF9711A, "")]))


READ_FIX = BOTCH_FIX + "DATA-TYP: DARK\nEXPTIME: 42.5\nOBJECT: fixed target\n"


def test_a_raw_read_back_is_corrected_as_obs_pfs_corrects_its_metadata(butler, pfs_repo, tmp_path, monkeypatch):
    """obs_pfs's PfsRaw.metadata is ``fix_header(readMetadata(path), translator_class=PfsTranslator)``
    ($METADATA_CORRECTIONS_PATH, then obs_pfs's corrections/), and its obsInfo and visitInfo are made from
    that metadata: pfswatchd's standalone PfsRaw applies the same file on read, so what a script reads
    agrees with the visit record the corrected ingest wrote."""
    fixes = _folder(tmp_path / "corrections", {"PFS-115821.yaml": READ_FIX})
    path = write_raw(tmp_path / "in", visit=115821, design=0, extra_cards={"W_PFDSNM": "botched"})
    corrections = HeaderCorrections((fixes,))
    [outcome] = make_ingester(butler, pfs_repo).ingest([examine(path, corrections=corrections).classified])
    assert outcome.status is Status.INGESTED
    [record] = butler.query_dimension_records("visit", instrument="PFS", visit=115821)
    assert (record.pfs_design_id, record.exposure_time, record.observation_type) == (0x5A0B4EFC2DF9711A, 42.5, "dark")

    from pfswatchd.butler.pfsraw import PfsRaw

    direct = PfsRaw(path, corrections=corrections)
    assert direct.correctionFile == fixes / "PFS-115821.yaml"
    assert (direct.metadata["W_PFDSGN"], direct.metadata["W_PFDSNM"]) == (0x5A0B4EFC2DF9711A, "cobraHome")
    info = direct.visitInfo
    assert (info.getExposureTime(), info.getObservationType(), info.getObject()) == (42.5, "dark", "fixed target")
    assert direct.obsInfo.exposure_group == "cobraHome"
    assert not any(key.startswith("ASTRO METADATA FIX") for key in direct.metadata)  # no provenance cards
    assert fits.getheader(path)["W_PFDSGN"] == 0  # the file itself is untouched

    data_id = {"instrument": "PFS", "visit": 115821, "arm": "b", "spectrograph": 1}
    monkeypatch.delenv("METADATA_CORRECTIONS_PATH", raising=False)
    plain = butler.get("raw", data_id, collections="PFS/raw/sps")  # no correction folder: the header as it is
    assert plain.correctionFile is None and plain.visitInfo.getExposureTime() == 30.0
    monkeypatch.setenv("METADATA_CORRECTIONS_PATH", str(fixes))  # what astro-metadata-translator reads
    raw = butler.get("raw", data_id, collections="PFS/raw/sps")
    assert raw.correctionFile == fixes / "PFS-115821.yaml" and raw.metadata["W_PFDSGN"] == record.pfs_design_id
    assert raw.visitInfo.getExposureTime() == record.exposure_time
    assert raw.getExposure().getInfo().getVisitInfo().getObservationType() == record.observation_type
