"""The notify protocol's sends never hold the service up: a receiver that does not read (systemd busy
in a reload, a supervisor that reads late) fills its short queue, and a blocking send would stall the
main loop, or the status thread the shutdown waits for (the stop then timed out: exit status 1)."""

from __future__ import annotations

import socket
import threading
import time

from pfswatchd.service import systemd
from pfswatchd.service.systemd import Notifier


def _receiver(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    return sock


def _in_thread(target, seconds: float = 30) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return thread


def test_periodic_messages_are_dropped_when_the_receiver_does_not_read(tmp_path):
    address = str(tmp_path / "notify.sock")
    receiver = _receiver(address)
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"})
    sent: list[bool] = []

    def ping() -> None:
        for i in range(200):
            sent.append(notifier.watchdog() if i % 2 else notifier.status(f"{i} files"))

    assert not _in_thread(ping).is_alive()  # a blocking send stops at the queue's length and never returns
    assert len(sent) == 200 and sent[0] and not sent[-1] and notifier.dropped == sent.count(False) > 0
    receiver.settimeout(1.0)
    first = receiver.recv(4096).decode()
    assert first == "STATUS=0 files"  # what was queued arrived whole, in order
    while True:
        try:
            receiver.recv(4096)
        except TimeoutError:
            break
    assert notifier.watchdog() and receiver.recv(4096) == b"WATCHDOG=1"  # room again: sent at once
    receiver.close()


def test_a_state_change_waits_for_room_a_bounded_time(tmp_path, monkeypatch):
    monkeypatch.setattr(systemd, "STATE_WAIT", 0.5)
    address = str(tmp_path / "notify.sock")
    receiver = _receiver(address)
    notifier = Notifier({"NOTIFY_SOCKET": address})
    while notifier.status("filling"):
        pass
    outcome: list[bool] = []
    began = time.monotonic()
    assert not _in_thread(lambda: outcome.append(notifier.stopping())).is_alive()
    assert outcome == [False] and time.monotonic() - began >= 0.4  # it waited, then gave up
    reader = threading.Timer(0.2, lambda: [receiver.recv(4096) for _ in range(3)])
    reader.start()
    assert notifier.ready("up")  # room made while it waits: sent
    reader.join()
    receiver.close()
