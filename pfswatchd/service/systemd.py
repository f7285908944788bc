"""The systemd notify protocol (sd_notify(3)) in a few lines of stdlib.

Messages go as one datagram to $NOTIFY_SOCKET (a path, or an abstract socket
when it starts with '@').  Without $NOTIFY_SOCKET (not under systemd, or
Type=simple) every call is a no-op.  $WATCHDOG_USEC gives the watchdog
interval; pfswatchd pings at half of it, from its main loop, so a stalled loop
is restarted by systemd rather than sitting silent.

A send never holds the service up.  The receiving socket's queue is short (10
datagrams by default, ``net.unix.max_dgram_qlen``) and a blocking send waits
while it is full, for as long as its reader (systemd, busy in a reload; a
supervisor that reads late) does not read: the main loop, or the status thread
that the shutdown waits for, would stall with it.  So the periodic messages
(WATCHDOG, STATUS) are sent without waiting, and dropped when the queue is full
(the next one replaces them); the state changes (READY, RELOADING, STOPPING)
wait at most ``STATE_WAIT`` seconds.
"""

from __future__ import annotations

import os
import socket
import time

STATE_WAIT = 5.0  # seconds a state change waits for room in the receiver's queue


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_interval = int(usec) / 1e6 / 2 if watchdog else None
        self.dropped = 0  # periodic messages not sent: the receiver's queue was full

    def notify(self, *, wait: float = 0.0, **fields: str | int) -> bool:
        """Send e.g. ``notify(READY=1, STATUS="...")``; True if sent.  ``wait``: seconds to wait for room
        in the receiver's queue (0: not at all)."""
        if self._address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(wait if wait > 0 else 0.0)  # 0.0: non-blocking (a full queue: BlockingIOError)
                sock.connect(self._address)
                sock.sendall(message)
        except (BlockingIOError, TimeoutError):
            self.dropped += 1
            return False
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(wait=STATE_WAIT, READY=1, STATUS=status)

    def status(self, status: str) -> bool:
        return self.notify(STATUS=status)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def reloading(self) -> bool:
        # systemd >= 253 wants the monotonic time with RELOADING=1; older ones ignore it.
        return self.notify(wait=STATE_WAIT, RELOADING=1,
                           MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> bool:
        return self.notify(wait=STATE_WAIT, STOPPING=1)
