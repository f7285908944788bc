"""The butler-facing engine: the only code that writes to a butler repository.

repo (create, open, check a repository), ingest (plan and write a batch), transfer (placing files
crash-safely), and what the datastore reads back: formatters, pfsraw, pfsconfig.
"""
