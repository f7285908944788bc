"""The operators' view of the service: visits, the completion hook, alerts, metrics and the status page.

It reads what the stages below record (the ledger in ``state``, file names in ``files``) and is driven
by the service's main loop, which hands it snapshots; nothing below it imports it, so the ingest path
never waits for it.  Its HTTP endpoint serves from a thread, from the last snapshot only.
"""
