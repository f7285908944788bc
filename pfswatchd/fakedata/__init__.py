"""Realistic synthetic PFS files (PFSA, PFSB, pfsConfig/PFSF, PFSC) for tests, benchmarks and demos.

The layouts follow the DAQ writers described in ``pfs-datamodel.md`` (sections 1, 4 and 5).
``frames`` and ``configs`` write single files with astropy (deterministic for a given seed, down to
the bytes); ``night`` writes a night of visits, and bursts of raws, by restamping templates with
``fitsbytes``, which is what makes ``pfswatchd fake-data --visits 340`` take seconds.
"""

from pfswatchd.butler.pfsraw import camera_id  # b1=0 r1=1 n1=2 b2=3 ...; m_k = -(id of r_k)
from pfswatchd.fakedata.configs import pfsconfig_parts, write_pfsconfig
from pfswatchd.fakedata.frames import (
    ARM_NUMBERS,
    design_id_for,
    pfsconfig_filename,
    pfsf_filename,
    raw_filename,
    write_metrology,
    write_pfsa,
    write_pfsb,
)
from pfswatchd.fakedata.night import clone_burst, clone_raw, make_visits, write_long_pfsb

__all__ = ["ARM_NUMBERS", "camera_id", "clone_burst", "clone_raw", "design_id_for", "make_visits",
           "pfsconfig_filename", "pfsconfig_parts", "pfsf_filename", "raw_filename", "write_metrology",
           "write_long_pfsb", "write_pfsa", "write_pfsb", "write_pfsconfig"]
