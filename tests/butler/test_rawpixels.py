"""The pixel rules on arrays of the real H4RG size where fakedata's 64 x 64 frames cannot show them."""

from __future__ import annotations

import numpy as np
import pytest

from pfswatchd.butler import rawpixels


def test_bad_serial_patch_on_a_full_size_read():
    """obs_pfs blanks rows 3510..3580 and columns 3240..3320 (rotated frame) of the serial-18660 H4RG."""
    image = np.full((4096, 4096), 100.0, dtype=np.float32)
    ref = np.full((4096, 4096), 10.0, dtype=np.float32)
    out = rawpixels.reference_correct(image.copy(), ref.copy(), bad_serial=True)
    blank = np.isnan(out)
    rows, cols = np.nonzero(blank)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (3510, 3580, 3240, 3320)
    assert blank.sum() == 71 * 81 and np.all(out[~blank] == 90.0)
    assert not np.isnan(rawpixels.reference_correct(image, ref, bad_serial=False)).any()


def test_rules_refuse_frames_they_cannot_cut():
    with pytest.raises(ValueError, match="cannot be cut into 32 equal reference bands"):
        rawpixels.reference_correct(np.zeros((4, 40), np.float32), np.zeros((4, 40), np.float32), bad_serial=False)
    with pytest.raises(ValueError, match="differ in shape"):
        rawpixels.reference_correct(np.zeros((4, 64), np.float32), np.zeros((2, 64), np.float32), bad_serial=False)
    with pytest.raises(ValueError, match="cannot be cut into 8 amplifiers"):
        rawpixels.fpga_shift(np.zeros((4, 12), np.uint16))
    with pytest.raises(ValueError, match=r"REF is 64x8 \(rotated\), expected 64x64$"):
        rawpixels.expand_irp(np.zeros((8, 64)), (64, 64), 1, "REF")
