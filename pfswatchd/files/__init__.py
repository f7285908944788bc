"""The file model: what a path is, whether it is whole, and what it says (pure, or reads headers only).

names (the PFS file-name grammar) -> fitsheader (header blocks, structural completeness) -> complete
(what each kind must hold) -> classify (data ID and visit values) -> examine (all of it for one file);
visitrecord derives a visit's record as obs_pfs does.
"""
