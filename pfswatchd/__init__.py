"""pfswatchd: ingest Subaru PFS raw frames and pfsConfigs into a butler repository."""

__version__ = "0.1.0"
