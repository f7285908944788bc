"""pfswatchd's own state: the ledger of every file and archive, quarantine, and what status reports.

ledgerdb (tables, states, engine) -> archiveledger, ledger (claims, results, queries); quarantine moves
rejected files aside; status and retry read and change the ledger for operators.
"""
