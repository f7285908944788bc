"""The cameras a pfsConfig declares: W_CAMMSK bits, or ARMS for the spectrographs its fibres feed."""

from __future__ import annotations

import pytest

from pfswatchd import fakedata
from pfswatchd.files import cameras
from pfswatchd.files.examine import examine
from pfswatchd.files.fitsheader import read_column


def test_mask_bits_follow_the_datamodel_order():
    # bit0=b1 bit1=r1 bit2=n1 bit3=m1 bit4=b2 ... bit15=m4 (pfs-datamodel.md §4.2)
    assert cameras.from_mask(1) == ("b1",)
    assert cameras.from_mask(1 << 3) == ("m1",)
    assert cameras.from_mask(1 << 15) == ("m4",)
    # 0x7777: b, r, n of all four spectrographs (what the summit writes for a brn night)
    assert cameras.from_mask(0x7777) == tuple(f"{a}{s}" for s in (1, 2, 3, 4) for a in "brn")
    assert cameras.mask_of(["b1", "r2", "m4"]) == 1 | 1 << 5 | 1 << 15


def test_arms_for_the_spectrographs_the_fibres_feed():
    # pfs_utils: spectrograph = (fiberId - 1) // 651 + 1
    assert cameras.from_arms("brn", [1, 651]) == ("b1", "r1", "n1")
    assert cameras.from_arms("bmn", [652, 1302, 1953]) == ("b2", "n2", "m2", "b3", "n3", "m3")
    assert cameras.from_arms("br", [2604]) == ("b4", "r4")


@pytest.mark.parametrize(("cards", "drop", "expected", "source"), [
    ({"W_CAMMSK": cameras.mask_of(["b1", "r1", "n2"])}, [], ("b1", "r1", "n2"), "W_CAMMSK"),
    ({"ARMS": "bmn"}, ["W_CAMMSK"], None, "ARMS x fibres"),  # fibres of the fake design: every spectrograph
    ({"W_CAMMSK": 0}, [], None, "ARMS x fibres"),  # an empty mask says nothing: the fibres decide
])
def test_a_pfsconfig_declares_its_cameras(tmp_path, cards, drop, expected, source):
    path = fakedata.write_pfsconfig(tmp_path / "pfsConfig-0x0000000000000007-000123.fits", visit=123,
                                    pfs_design_id=7, n_fibers=60, extra_cards=cards, drop_cards=drop)
    found = examine(path).classified
    assert found is not None and found.cameras_from == source
    if expected is not None:
        assert found.cameras == expected
    else:
        fibres = read_column(path, "CONFIG", "fiberId")
        modules = sorted({(f - 1) // 651 + 1 for f in fibres})
        arms = cards.get("ARMS", "brn")
        assert found.cameras == tuple(cameras.ordered(f"{a}{m}" for m in modules for a in arms))


def test_fake_visits_declare_the_cameras_they_write(tmp_path):
    written = fakedata.make_visits(tmp_path, visits=1, spectrographs=(2,), arms=("b", "n"))
    config = examine(written[0]).classified
    assert config is not None and config.cameras == ("b2", "n2")
