"""Test double of obs_base's formatters package."""
