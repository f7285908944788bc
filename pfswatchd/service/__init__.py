"""The service (``pfswatchd run``): the main loop and what feeds it.

watch (file events and rescans) -> settle (when to look at a file) -> examiner (header reads in
worker processes) -> pipeline (one step: examine, ingest, record) and the archive stage; daemon runs the
loop (startup, signals, reload, systemd).  The top of the flow: it may import every stage below it.
"""
