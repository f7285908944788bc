"""Test double of drp_stella's package: only ``datamodel.PfsConfig`` (tests/stack_double/README.md)."""
