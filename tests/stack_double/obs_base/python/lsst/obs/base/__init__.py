"""Test double of obs_base's interface: only ``formatters.fitsGeneric`` (tests/stack_double/README.md)."""
