"""Whether a process of this host is still running (claims, locks and scratch files name their pid)."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True if ``pid`` runs on this host (also when it is another user's: signal 0 is then refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
