"""The HTTP endpoint: /metrics, /healthz, /readyz and the status page, served from a thread of its own.

Every answer is made from what the main loop last published (the snapshot, the time of its last turn,
the metrics objects); no request reads the ledger or the registry, so scrapes cannot slow ingest.
``/healthz`` says the main loop is turning (it answers 503 when the loop has not turned for
``STALLED`` seconds); ``/readyz`` says the ledger and the registry answered at the main loop's last
check, and that the check is recent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pfswatchd.monitor import page
from pfswatchd.monitor.metrics import CONTENT_TYPE, Metrics
from pfswatchd.monitor.snapshot import Snapshot

STALLED = 60.0  # seconds without a loop turn before /healthz fails


class Endpoint:
    def __init__(self, address: str, port: int, *, metrics: Metrics, snapshot: Callable[[], Snapshot],
                 last_turn_age: Callable[[], float], stale_after: float) -> None:
        self.metrics = metrics
        self.snapshot = snapshot
        self.last_turn_age = last_turn_age
        self.stale_after = stale_after
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "pfswatchd"

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                endpoint.answer(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                pass  # scrapes every few seconds would flood the journal

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="pfswatchd-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(request, 200, self.metrics.exposition(), CONTENT_TYPE)
        elif path == "/healthz":
            age = self.last_turn_age()
            ok = age < STALLED
            self._json(request, 200 if ok else 503, {"ok": ok, "main_loop_age_seconds": round(age, 3)})
        elif path == "/readyz":
            snap = self.snapshot()
            age = time.time() - snap.checked_at
            ok = snap.ledger_ok and snap.registry_ok and age < self.stale_after
            self._json(request, 200 if ok else 503, {"ok": ok, "ledger": snap.ledger_ok,
                                                     "registry": snap.registry_ok,
                                                     "checked_seconds_ago": round(age, 3)})
        elif path in ("/", "/index.html"):
            self._send(request, 200, page.render(self.snapshot()).encode(), "text/html; charset=utf-8")
        else:
            self._send(request, 404, b"not found: try /, /metrics, /healthz or /readyz\n", "text/plain")

    def _json(self, request: BaseHTTPRequestHandler, code: int, body: dict[str, Any]) -> None:
        self._send(request, code, (json.dumps(body) + "\n").encode(), "application/json")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, code: int, body: bytes, content_type: str) -> None:
        request.send_response(code)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        request.end_headers()
        request.wfile.write(body)
