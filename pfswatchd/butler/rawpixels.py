"""The pixel rules obs_pfs's PfsRaw applies to raw frames, as plain numpy functions.

Sources (obs_pfs fe944332, read for the rules; see /work/notes/obs_pfs_pipeline.md §2):

- ``rotate_quarters``: afw ``math.rotateImageBy90(image, nQuarter)``, which turns the image by
  ``nQuarter`` quarter turns counter-clockwise in afw's y-up pixel frame.  On a ``[row, column]`` array
  that is ``np.rot90(array, -nQuarter)``; obs_pfs turns NIR reads by the detector's nQuarter (3 for n).
- ``reference_correct``: ``PfsRaw.getCorrectedNirRead`` (raw.py:389-445).  On the *rotated* IMAGE and
  REF frames, in 32 bands of columns (128 wide on a 4096-wide frame): take the median of each REF
  column over rows, subtract it from the REF band; the correction of each row is the median over the
  band of that detrended REF row plus the mean of the column medians; subtract it from each IMAGE row
  of the band.  For the H4RG with serial 18660 (``W_SRH4`` 18660 or "no available value") the mean of
  band 26 uses only its last quarter of columns, and a 81 x 71 pixel patch around (3280, 3545) is set
  to NaN.  obs_pfs hard-codes 32 bands of 128 columns; pfswatchd cuts any frame into 32 equal bands,
  which is the same thing on a real 4096-wide read and keeps small synthetic frames meaningful.
- IRP ratio > 1 (``W_H4IRPN``, one reference pixel per N data pixels): the REF frame has 1/N of the
  rows of the rotated IMAGE frame.  obs_pfs's ``getCorrectedNirRead`` does not handle this (it fails
  with a numpy broadcast error), so obs_pfs has no answer to match here.  pfswatchd first expands the
  REF frame to full size as obs_pfs's ISR does (``isrTask.constructFullIrp`` / ``interpolateChannelIrp``:
  each reference row repeated N times within its channel, which over contiguous channels is
  ``np.repeat(ref, N, axis=0)``; the ISR's optional bad-reference-pixel replacement needs a calibration
  product and is not done), then applies the same per-band rule.  Any other REF shape is refused.
- ``fpga_shift``: ``PfsRaw.getCcdImage`` for DAQ FPGA versions <= 0x0070: within each of the 8
  amplifiers (column stripes), the pixels read in row-major order are one place late; move each one
  place earlier, the last keeping its value.
"""

from __future__ import annotations

import warnings

import numpy as np

from .camera import CCD_AMPLIFIERS

__all__ = ["BAD_H4_SERIALS", "FPGA_SHIFT_MAX", "REF_BANDS", "expand_irp", "fpga_shift", "reference_correct",
           "rotate_quarters"]

REF_BANDS = 32
BAD_H4_SERIALS = (18660, "no available value")
_BAD_BAND = 26
_BAD_PATCH = (slice(3545 - 35, 3545 + 35 + 1), slice(3280 - 40, 3280 + 40 + 1))  # rows, columns
FPGA_SHIFT_MAX = 0x0070


def rotate_quarters(array: np.ndarray, n_quarter: int) -> np.ndarray:
    """afw's ``rotateImageBy90(image, n_quarter)`` on a ``[row, column]`` array (a new, contiguous array)."""
    return np.ascontiguousarray(np.rot90(array, -n_quarter))


def expand_irp(ref: np.ndarray, shape: tuple[int, ...], irp_ratio: int, what: str) -> np.ndarray:
    """The rotated REF frame at the size of the rotated IMAGE frame ``shape``.

    Raises:
        ValueError: If ``ref`` is neither full size nor 1/``irp_ratio`` of its rows.
    """
    if ref.shape == shape:
        return ref
    if irp_ratio > 1 and ref.shape == (shape[0] // irp_ratio, shape[1]) and shape[0] % irp_ratio == 0:
        return np.repeat(ref, irp_ratio, axis=0)
    raise ValueError(
        f"{what} is {ref.shape[1]}x{ref.shape[0]} (rotated), expected {shape[1]}x{shape[0]}"
        + (f" or {shape[1]}x{shape[0] // irp_ratio} for W_H4IRPN={irp_ratio}" if irp_ratio > 1 else "")
    )


def reference_correct(image: np.ndarray, ref: np.ndarray, *, bad_serial: bool) -> np.ndarray:
    """Subtract the per-row, per-band reference level of ``ref`` from ``image`` (both rotated, float32).

    ``image`` is changed in place (as obs_pfs does on its own copy) and returned; ``ref`` is left alone.

    Raises:
        ValueError: If the frames differ in shape or the width is not a multiple of 32.
    """
    if image.shape != ref.shape:
        raise ValueError(f"IMAGE {image.shape} and REF {ref.shape} frames differ in shape")
    width = image.shape[1]
    if width % REF_BANDS:
        raise ValueError(f"a {width}-column read cannot be cut into {REF_BANDS} equal reference bands")
    band = width // REF_BANDS
    with warnings.catch_warnings():
        # A band of NaN (BLANK) reference pixels gives a NaN level, as in obs_pfs; no warning for it.
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(REF_BANDS):
            columns = slice(k * band, (k + 1) * band)
            ref_band = np.ascontiguousarray(ref[:, columns])  # contiguous rows: the row medians run 3x faster
            # Same values as nanmedian when there is no NaN (PfsRaw's reads have none: BLANK became 0), faster.
            median = np.nanmedian if np.isnan(ref_band).any() else np.median
            per_column = median(ref_band, axis=0)
            ref_band -= per_column
            if bad_serial and k == _BAD_BAND:
                per_column = per_column[band * 3 // 4:]  # obs_pfs: [96:] of 128, "the weird bad column"
            correction = median(ref_band, axis=1) + np.mean(per_column)
            image[:, columns] -= correction[:, np.newaxis]
    if bad_serial:
        image[_BAD_PATCH] = np.nan
    return image


def fpga_shift(array: np.ndarray) -> np.ndarray:
    """Undo the one-pixel readout lag of old DAQ FPGAs in each amplifier stripe (in place); return ``array``.

    Raises:
        ValueError: If the frame's width is not a multiple of the 8 amplifiers.
    """
    width = array.shape[1]
    if width % CCD_AMPLIFIERS:
        raise ValueError(f"a {width}-column CCD frame cannot be cut into {CCD_AMPLIFIERS} amplifiers")
    stripe = width // CCD_AMPLIFIERS
    for amp in range(CCD_AMPLIFIERS):
        block = array[:, amp * stripe:(amp + 1) * stripe]
        flat = block.flatten()  # row-major order: the order the amplifier was read
        flat[:-1] = flat[1:]
        block[...] = flat.reshape(block.shape)
    return array
