"""The PFS file-name grammar."""

from __future__ import annotations

import pytest

from pfswatchd.files.names import instrument_for_site, is_temporary, parse_name
from pfswatchd.model import FileKind


@pytest.mark.parametrize(
    ("name", "kind", "site", "visit", "spectrograph", "arm"),
    [
        ("PFSA00066611.fits", FileKind.RAW_CCD, "S", 666, 1, "b"),
        ("PFSA12345611.fits", FileKind.RAW_CCD, "S", 123456, 1, "b"),
        ("PFSA12345642.fits", FileKind.RAW_CCD, "S", 123456, 4, "r"),
        ("PFSA12345614.fits", FileKind.RAW_CCD, "S", 123456, 1, "m"),
        ("PFSB12345623.fits", FileKind.RAW_NIR, "S", 123456, 2, "n"),
        ("PFLB00123423.fits", FileKind.RAW_NIR, "L", 1234, 2, "n"),
        ("PFFA00012311.fits", FileKind.RAW_CCD, "F", 123, 1, "b"),
        ("PFJA00012321.fits", FileKind.RAW_CCD, "J", 123, 2, "b"),
        ("PFXA00012321.fits", FileKind.RAW_CCD, "X", 123, 2, "b"),
        ("PFIA00012321.fits", FileKind.RAW_CCD, "I", 123, 2, "b"),
        ("PFAA00012321.fits", FileKind.RAW_CCD, "A", 123, 2, "b"),
        ("PFPA00012321.fits", FileKind.RAW_CCD, "P", 123, 2, "b"),
    ],
)
def test_raw_names(name, kind, site, visit, spectrograph, arm):
    """Raw names give kind, site, visit, spectrograph then arm number."""
    info = parse_name(f"/data/raw/2025-05-01/sps/{name}")
    assert (info.kind, info.site, info.visit, info.spectrograph, info.arm) == (
        kind,
        site,
        visit,
        spectrograph,
        arm,
    )


@pytest.mark.parametrize(
    ("name", "kind", "visit", "sequence"),
    [
        ("PFSC12345600.fits", FileKind.METROLOGY, 123456, 0),
        ("PFSC12345607.fits", FileKind.METROLOGY, 123456, 7),
        ("PFSD12345612.fits", FileKind.GUIDER, 123456, 12),
        ("agcc_123456_00000042.fits", FileKind.GUIDER, 123456, 42),
    ],
)
def test_metrology_and_guider_names(name, kind, visit, sequence):
    info = parse_name(name)
    assert (info.kind, info.visit, info.sequence) == (kind, visit, sequence)


def test_pfsconfig_and_pfsf_names():
    """pfsConfig names carry design and visit; PFSF names carry visit and the subset suffix."""
    full = parse_name("pfsConfig-0x1945be7e6de4b2cf-123456.fits")
    assert (full.kind, full.pfs_design_id, full.visit, full.subset) == (
        FileKind.PFSCONFIG,
        0x1945BE7E6DE4B2CF,
        123456,
        0,
    )
    archived = parse_name("PFSF12345600.fits")
    assert (archived.kind, archived.visit, archived.subset, archived.site) == (FileKind.PFSCONFIG, 123456, 0, "S")
    custom = parse_name("PFSF12345617.fits")
    assert (custom.kind, custom.visit, custom.subset) == (FileKind.PFSCONFIG, 123456, 17)
    design = parse_name("pfsDesign-0x0000000000001234.fits")
    assert (design.kind, design.pfs_design_id) == (FileKind.PFSDESIGN, 0x1234)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("S2Query.tar", FileKind.ARCHIVE),
        ("data.tar.gz", FileKind.ARCHIVE),
        ("data.tgz", FileKind.ARCHIVE),
        ("data.tar.bz2", FileKind.ARCHIVE),
        ("data.tar.xz", FileKind.ARCHIVE),
        ("PFSA12345611.fits.md5", FileKind.CHECKSUM),
        ("MD5SUMS", FileKind.CHECKSUM),
        ("0_list_20250501", FileKind.CHECKSUM),
        ("notes.txt", FileKind.OTHER),
        ("pfsArm-123456-b1.fits", FileKind.OTHER),
        ("PFSA1234561.fits", FileKind.OTHER),  # too few digits
        ("PFSA12345611.fits.part", FileKind.OTHER),
        ("pfsConfig-0xABC-123456.fits", FileKind.OTHER),  # hex must be lower case
    ],
)
def test_other_names(name, kind):
    assert parse_name(name).kind == kind


def test_impossible_values_are_kept_for_the_header_check():
    """A raw-looking name with arm number 9 keeps what it claims, so the reason can name it."""
    info = parse_name("PFSA12345619.fits")
    assert (info.kind, info.arm) == (FileKind.RAW_CCD, "9")


@pytest.mark.parametrize(
    ("site", "instrument"), [("S", "PFS"), ("F", "PFS-F"), ("L", "PFS-L"), ("J", "PFS-J"), ("X", "PFS-X")]
)
def test_instrument_for_site(site, instrument):
    assert instrument_for_site(site) == instrument


@pytest.mark.parametrize(
    ("name", "temporary"),
    [
        ("PFSA12345611.fits.part", True),
        ("PFSA12345611.fits.tmp", True),
        ("PFSA12345611.fits.crdownload", True),
        (".PFSA12345611.fits.XyZ12", True),  # rsync's temporary name
        (".PFSA12345611.fits.swp", True),
        ("PFSA12345611.fits~", True),
        ("PFSA12345611.fits", False),
        ("S2Query.tar", False),
    ],
)
def test_temporary_names(name, temporary):
    assert is_temporary(name) is temporary


@pytest.mark.parametrize(
    ("name", "kind"),
    [("S2Query.tar", "archive"), ("DATA.TAR.GZ", "archive"), ("x.tgz", "archive"), ("x.TBZ2", "archive"),
     ("x.tar.xz", "archive"), ("x.txz", "archive"), (".tar", "other"), ("x.tar.zst", "other"),
     ("x.fits.md5", "checksum"), ("x.fits.SHA1", "checksum"), ("x.sha512", "checksum"), ("MD5SUMS", "checksum"),
     ("sha256sums", "checksum"), ("x.md5sum", "checksum"), ("0_list_visit", "checksum"), ("md5.txt", "other")],
)
def test_archive_and_checksum_names(name, kind):
    """The service routes files by parse_name; unpack and checksums read names with the same functions."""
    from pfswatchd.archives.unpack import is_archive_name

    assert parse_name(name).kind.value == kind
    assert is_archive_name(name) == (kind == "archive")
