"""Where pfsConfig and PFSF files go: the PFSF rule.

The pipeline reads pfsConfigs from one RUN, ``PFS/raw/pfsConfig`` (the helpdesk's
``ingestPfsConfig.py`` target, ``defineCombination.py``'s default input, a child of
``PFS/defaults``), which holds one pfsConfig per visit.  A visit can have several files:
the observatory's full one (``pfsConfig-0x...`` or ``PFSF<visit>00``) and customised
copies ``PFSF<visit>NN`` (01-99, one proposal's fibres plus calibration fibres), and an
open-use user usually receives only the customised one of their programme.  The rule:

1. a full pfsConfig goes to ``PFS/raw/pfsConfig``, as the official tool puts it;
2. a customised ``PFSF<visit>NN`` goes to ``PFS/raw/pfsConfig/NN``, always (its stable
   address), and ALSO to ``PFS/raw/pfsConfig`` while that RUN has no pfsConfig of the
   visit (a *stand-in*: a second dataset with a file of its own), so that the lone
   customised file is found where the pipeline looks; of several arriving together the
   lowest NN stands in, and a full one arriving together wins;
3. a full pfsConfig that arrives after a stand-in took its place goes to
   ``PFS/raw/pfsConfig/00`` (ingested, with a warning): nothing is overwritten.

So in any arrival order every file stays retrievable (``PFS/raw/pfsConfig/NN`` for each
customised one; ``PFS/raw/pfsConfig``, or ``/00`` when it came second, for the full one),
and ``PFS/raw/pfsConfig`` always has a pfsConfig for every visit that has any.
"""

from __future__ import annotations

from pathlib import Path

from lsst.daf.butler import Butler, DatasetRef

from pfswatchd.butler import repo
from pfswatchd.butler.transfer import same_content

FULL = 0


def home_run(base_run: str, subset: int) -> str:
    """The RUN a file always goes to: the base RUN for a full pfsConfig, ``<base>/NN`` for PFSF..NN."""
    return base_run if subset == FULL else repo.pfsconfig_subset_run(base_run, subset)


def displaced_run(base_run: str) -> str:
    """Where a full pfsConfig goes when a customised stand-in already holds its visit in the base RUN."""
    return repo.pfsconfig_subset_run(base_run, FULL)


def is_standin(butler: Butler, stored: DatasetRef, stored_path: Path) -> bool:
    """True if ``stored`` (in a base RUN) is a customised PFSF standing in: the same bytes are in one of
    the ``<base>/NN`` RUNs of its visit.  Looked up only when a full pfsConfig meets another file there."""
    assert stored.run is not None
    pattern = f"{stored.run}/*"
    refs = butler.query_datasets(
        stored.datasetType.name, collections=pattern, where="instrument = inst AND visit = v",
        bind={"inst": stored.dataId["instrument"], "v": stored.dataId["visit"]}, find_first=False,
        limit=None, explain=False,
    )
    customised = [ref for ref in refs if ref.run is not None and ref.run != displaced_run(stored.run)]
    if not customised:
        return False
    for found in butler.get_many_uris(customised).values():
        if found.primaryURI is not None and same_content(stored_path, Path(found.primaryURI.ospath)):
            return True
    return False

