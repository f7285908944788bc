"""How a path is written as text when its name is not UTF-8.

Linux names are bytes; Python shows a byte that is not UTF-8 as a lone surrogate (surrogateescape).
Such a path cannot be written to the ledger, the butler's registry or a UTF-8 log, so it is recorded
under its escaped form (the byte spelled \\xff) and not ingested: see README "Guarantees" (what is not
promised).  Every layer uses this (the ledger's columns, logs, the watcher), so it sits at the bottom.
"""

from __future__ import annotations

import os

BAD_NAME_REASON = "the name is not UTF-8 ({bytes}): the service's ledger keys files by their path as text, so it " \
                  "is not {what}; expected a UTF-8 name (rename it, and it is picked up)"


def escaped(text: str) -> str:
    """``text`` with every byte that is not UTF-8 spelled ``\\xNN``; unchanged when it is UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def bad_name(path: str) -> str | None:
    """The first part of ``path`` (a folder, or the file itself) whose name is not UTF-8; None if all are."""
    if path.isascii() or escaped(path) == path:
        return None
    head = ""
    for part in path.split(os.sep):
        head = os.path.join(head, part) if head else (part or os.sep)
        if escaped(part) != part:
            return head
    return path


def bad_name_reason(path: str, *, folder: bool) -> str:
    """The one-line reason recorded for ``path``, a name that is not UTF-8."""
    wrong = sorted({f"\\x{ord(c) - 0xDC00:02x}" for c in os.path.basename(path) if 0xDC80 <= ord(c) <= 0xDCFF})
    return BAD_NAME_REASON.format(bytes=("bytes " if len(wrong) > 1 else "byte ") + " ".join(wrong),
                                  what="entered, and its files are not ingested" if folder else "ingested")
