"""Archives: safe extraction of downloaded tarballs, checksum sidecars, STARS2 bundles.

tarstream (reading and writing members) -> unpack (the safety checks and limits) -> publish (into
place by rename); checksums and stars beside them.  Knows nothing of the ledger or the service.
"""
