"""PfsConfig: reading pfsConfig and PFSF files, ids from cards or file names, defaults, selection."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from pfswatchd import fakedata
from pfswatchd.butler.pfsconfig import FiberStatus, PfsConfig, TargetType, parse_pfsconfig_filename

DESIGN = 0x1945BE7E6DE4B2CF


@pytest.fixture()
def config_path(tmp_path):
    return fakedata.write_pfsconfig(tmp_path / fakedata.pfsconfig_filename(DESIGN, 123456), visit=123456,
                                    pfs_design_id=DESIGN, n_fibers=18)


def test_enums():
    assert [(t.name, t.value) for t in TargetType][:4] == [("SCIENCE", 1), ("SKY", 2), ("FLUXSTD", 3),
                                                           ("UNASSIGNED", 4)]
    assert TargetType.SCIENCE_MASKED == 12 and TargetType.AFL == 11 and len(TargetType) == 12
    assert FiberStatus.GOOD == 1 and FiberStatus.BROKENFIBER == 2 and FiberStatus.UNKNOWN == 10
    assert len(FiberStatus) == 10


def test_read_back(config_path):
    config = PfsConfig.readFits(config_path)
    with fits.open(config_path) as hdul:
        header, data = hdul[0].header, hdul["CONFIG"].data
        n_photometry, n_guide = len(hdul["PHOTOMETRY"].data), len(hdul["GUIDESTARS"].data)
    assert (config.pfsDesignId, config.visit) == (DESIGN, 123456)
    boresight = (config.raBoresight, config.decBoresight, config.posAng)
    assert boresight == (header["RA"], header["DEC"], header["POSANG"])
    assert (config.arms, config.designName, config.variant, config.designId0) == (
        "brn", "fake-0x1945be7e6de4b2cf", 0, 0)
    assert config.header["FRAMEID"] == "PFSF12345600" and len(config) == 18
    for name in ("fiberId", "tract", "ra", "dec", "catId", "objId", "targetType", "pmRa", "pmDec", "parallax",
                 "fiberStatus", "cobraId"):
        np.testing.assert_array_equal(getattr(config, name), data[name], err_msg=name)
    for name in ("patch", "epoch", "proposalId", "obCode"):
        values = getattr(config, name)
        assert values.dtype.kind == "U", name
        assert values.tolist() == [str(v) for v in data[name]], name
    assert config.pfiNominal.shape == (18, 2) and config.pfiCenter.shape == (18, 2)
    np.testing.assert_array_equal(config.pfiCenter, data["pfiCenter"])
    assert config.objId.dtype == np.int64 and config.fiberId.dtype == np.int32
    assert isinstance(config.table, Table) and len(config.table) == 18
    assert "cobraTheta" in config.table.colnames
    assert config.table["proposalId"].dtype.kind == "U"
    assert isinstance(config.photometry, Table) and len(config.photometry) == n_photometry > 0
    assert isinstance(config.guideStars, Table) and len(config.guideStars) == n_guide == 6
    assert config.photometry["filterName"][0] in ("g_hsc", "g_ps1")
    assert "0x1945be7e6de4b2cf" in repr(config)


def test_from_hdulist(config_path):
    with fits.open(config_path) as hdul:
        config = PfsConfig.fromHDUList(hdul)
    assert config.pfsDesignId == DESIGN and len(config) == 18


def test_ids_prefer_header_over_name(tmp_path):
    # The name says design 0x...01 and visit 7, the cards say otherwise: the cards win.
    path = fakedata.write_pfsconfig(tmp_path / "pfsConfig-0x0000000000000001-000007.fits", visit=8,
                                    pfs_design_id=DESIGN)
    config = PfsConfig.readFits(path)
    assert (config.pfsDesignId, config.visit) == (DESIGN, 8)


@pytest.mark.parametrize("dropped", [("W_PFDSGN", "W_VISIT"), ("W_VISIT",), ("W_PFDSGN",)])
def test_ids_fall_back_to_file_name(tmp_path, dropped):
    path = fakedata.write_pfsconfig(tmp_path / fakedata.pfsconfig_filename(0xABC, 42), visit=99,
                                    pfs_design_id=DESIGN, drop_cards=dropped)
    config = PfsConfig.readFits(path)
    assert config.pfsDesignId == (0xABC if "W_PFDSGN" in dropped else DESIGN)
    assert config.visit == (42 if "W_VISIT" in dropped else 99)


def test_no_ids_anywhere(tmp_path):
    path = fakedata.write_pfsconfig(tmp_path / "PFSF00004201.fits", visit=42, subset=1,
                                    drop_cards=("W_VISIT",))
    with pytest.raises(ValueError) as excinfo:
        PfsConfig.readFits(path)
    message = str(excinfo.value)
    assert "\n" not in message and message.startswith("PFSF00004201.fits: header has no W_VISIT")


def test_parse_filename():
    assert parse_pfsconfig_filename("pfsConfig-0x1945be7e6de4b2cf-123456.fits") == (DESIGN, 123456)
    assert parse_pfsconfig_filename("/a/b/pfsConfig-0x10-000001.fits.gz") == (16, 1)
    assert parse_pfsconfig_filename("PFSF12345600.fits") is None
    assert parse_pfsconfig_filename("pfsDesign-0x10.fits") is None


def test_missing_optional_columns_get_defaults(tmp_path):
    required = [
        fits.Column(name="fiberId", format="J", array=np.array([3, 9], np.int32)),
        fits.Column(name="tract", format="J", array=np.array([1, 1], np.int32)),
        fits.Column(name="patch", format="3A", array=np.array(["1,1", "1,2"])),
        fits.Column(name="ra", format="D", array=np.array([10.0, 10.1])),
        fits.Column(name="dec", format="D", array=np.array([-1.0, -1.1])),
        fits.Column(name="catId", format="J", array=np.array([1, -1], np.int32)),
        fits.Column(name="objId", format="K", array=np.array([5, -1], np.int64)),
        fits.Column(name="targetType", format="J", array=np.array([1, 4], np.int32)),
        fits.Column(name="pfiNominal", format="2E", array=np.zeros((2, 2), np.float32)),
    ]
    primary = fits.PrimaryHDU()
    primary.header.update({"RA": 10.0, "DEC": -1.0, "W_PFDSGN": 5, "W_VISIT": 6})
    path = tmp_path / "old.fits"
    fits.HDUList([primary, fits.BinTableHDU.from_columns(required, name="CONFIG")]).writeto(path)
    config = PfsConfig.readFits(path)
    assert config.epoch.tolist() == ["J2000.0"] * 2
    assert config.pmRa.tolist() == [0.0, 0.0] and config.pmDec.tolist() == [0.0, 0.0]
    assert config.parallax == pytest.approx([1e-8, 1e-8])
    assert config.proposalId.tolist() == ["N/A"] * 2 and config.obCode.tolist() == ["N/A"] * 2
    assert config.fiberStatus.tolist() == [FiberStatus.GOOD] * 2 and config.cobraId.tolist() == [65535] * 2
    assert config.pfiCenter.shape == (2, 2) and np.isnan(config.pfiCenter).all()
    assert (config.posAng, config.arms, config.designName, config.variant) == (0.0, "brn", "", 0)
    assert len(config.photometry) == 0 and len(config.guideStars) == 0


def test_unusable_files(tmp_path, config_path):
    raw = fakedata.write_pfsa(tmp_path / "PFSA00000111.fits", visit=1, spectrograph=1, arm="b",
                              pfs_design_id=DESIGN)
    with pytest.raises(ValueError, match="PFSA00000111.fits: not a pfsConfig, no CONFIG HDU"):
        PfsConfig.readFits(raw)
    no_ra = fakedata.write_pfsconfig(tmp_path / "PFSF00000200.fits", visit=2, drop_cards=("RA",))
    with pytest.raises(ValueError, match="PFSF00000200.fits: pfsConfig primary header has no RA card"):
        PfsConfig.readFits(no_ra)
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"not a FITS file at all" * 10)
    with pytest.raises(ValueError, match="junk.fits"):
        PfsConfig.readFits(junk)


def test_select(config_path):
    config = PfsConfig.readFits(config_path)
    science = config.select(targetType=TargetType.SCIENCE)
    assert len(science) == 9 and set(science.targetType) == {1}
    assert science.pfsDesignId == config.pfsDesignId and science.visit == config.visit
    assert set(science.photometry["fiberId"]) == set(science.fiberId)
    assert len(science.table) == 9 and science.table["targetType"].tolist() == [1] * 9
    picked = config.select(fiberId=[config.fiberId[0], config.fiberId[5], 99999])
    np.testing.assert_array_equal(picked.fiberId, config.fiberId[[0, 5]])
    both = config.select(targetType=[TargetType.SKY, TargetType.FLUXSTD], proposalId="N/A")
    assert set(both.targetType) == {2, 3} and len(both) == 6
    one_proposal = config.select(proposalId="S25A-002QN")
    assert set(one_proposal.proposalId) == {"S25A-002QN"} and 0 < len(one_proposal) < 9
    assert len(config.select(catId=-1)) == 3
    with pytest.raises(ValueError, match="cannot select on 'colour'"):
        config.select(colour=1)


def test_pfsf_subset_reads_like_a_pfsconfig(tmp_path):
    full = PfsConfig.readFits(fakedata.write_pfsconfig(tmp_path / "PFSF00003000.fits", visit=30))
    part = PfsConfig.readFits(fakedata.write_pfsconfig(tmp_path / "PFSF00003002.fits", visit=30, subset=2))
    assert part.pfsDesignId == full.pfsDesignId and part.visit == full.visit == 30
    assert part.header["FRAMEID"] == "PFSF00003002" and len(part) < len(full)
    assert set(part.fiberId) <= set(full.fiberId)
    assert set(part.proposalId[part.targetType == TargetType.SCIENCE]) == {"S25A-002QN"}
