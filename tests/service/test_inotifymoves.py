"""watchdog's inotify move pairing with pfswatchd's cookie index (pfswatchd/service/inotifymoves.py).

The grouper is watchdog's own, fed real inotify event objects; the watcher test runs the real
InotifyObserver on real renames.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent
from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper, PathedInotifyEvent

from pfswatchd.service import inotifymoves
from pfswatchd.service.settle import Hint
from pfswatchd.service.watch import WALK_MOVED


def _event(mask: int, cookie: int, name: str) -> PathedInotifyEvent:
    return PathedInotifyEvent(InotifyEvent(1, mask, cookie, name.encode()), f"/data/{name}".encode())


def _counting_scans(grouper: InotifyMoveEventGrouper) -> list[int]:
    """Wrap the grouper's queue search (DelayedQueue._index_and_item) to count its calls."""
    calls: list[int] = []
    search = grouper._queue._index_and_item

    def counted(predicate):
        calls.append(1)
        return search(predicate)

    grouper._queue._index_and_item = counted
    return calls


def test_a_burst_renamed_in_from_outside_makes_no_scan_and_moves_inside_still_pair():
    assert inotifymoves.install()  # this watchdog's grouper has what the index relies on
    grouper = InotifyMoveEventGrouper()
    scans = _counting_scans(grouper)
    for number in range(2000):  # a burst renamed in: IN_MOVED_TO only, none read yet
        grouper.put_event(_event(InotifyConstants.IN_MOVED_TO, 10_000 + number, f"PFSA{number:08d}.fits"))
    assert scans == []  # watchdog alone walks the queue twice per event: 4,000 walks of up to 2,000
    assert [grouper.read_event().path for _ in range(2000)][:2] == [b"/data/PFSA00000000.fits",
                                                                    b"/data/PFSA00000001.fits"]
    # A rename inside the watched folders: its two halves still become one move.
    grouper.put_event(_event(InotifyConstants.IN_MOVED_FROM, 7, "a.fits"))
    assert grouper.get_queued_moved_from_event(7).path == b"/data/a.fits"
    grouper.put_event(_event(InotifyConstants.IN_MOVED_TO, 7, "b.fits"))
    source, target = grouper.read_event()
    assert (source.path, target.path) == (b"/data/a.fits", b"/data/b.fits")
    # A file moved out: handed on alone after watchdog's delay, and its cookie forgotten.
    grouper.put_event(_event(InotifyConstants.IN_MOVED_FROM, 8, "gone.fits"))
    assert grouper.read_event().path == b"/data/gone.fits"
    assert grouper.get_queued_moved_from_event(8) is None and not grouper._held_cookies


_RENAMES = r"""
import json, os, queue, sys, time
from pathlib import Path
from pfswatchd.service import inotifymoves, watch
if sys.argv[2] == "watchdog alone":
    inotifymoves.install = lambda: False
tmp = Path(sys.argv[1])
root, outside = tmp / "incoming", tmp / "outside"
for folder in (root / "night", outside):
    folder.mkdir(parents=True)
for path in (outside / "in.fits", root / "inside.fits", root / "leaving.fits"):
    path.write_bytes(b"x")
hints = queue.Queue()
watcher = watch.Watcher((root,), lambda path, hint: hints.put((path[len(str(tmp)):], hint)))
watcher.start()
assert watcher.wait_started(10)
os.rename(outside / "in.fits", root / "in.fits")
os.rename(root / "inside.fits", root / "night" / "renamed.fits")
os.rename(root / "night", root / "night-2")
os.rename(root / "leaving.fits", outside / "leaving.fits")
time.sleep(1.5)  # watchdog holds an unpaired IN_MOVED_FROM for half a second
watcher.stop()
print(json.dumps(sorted(set(hints.queue))))
"""


def _hints(tmp_path: Path, mode: str) -> list[list[str]]:
    folder = tmp_path / mode.replace(" ", "-")
    folder.mkdir()
    done = subprocess.run([sys.executable, "-c", _RENAMES, str(folder), mode], capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


def test_the_watcher_gives_the_hints_watchdog_alone_gives(tmp_path):
    """The real observer, in two processes, one without the index: a file renamed in from outside, one
    renamed inside the tree, a folder renamed inside it and a file moved out give the same hints."""
    alone, indexed = _hints(tmp_path, "watchdog alone"), _hints(tmp_path, "indexed")
    assert indexed == alone
    assert ["/incoming/in.fits", Hint.MOVED.value] in indexed  # renamed in from outside
    assert ["/incoming/night/renamed.fits", Hint.MOVED.value] in indexed  # paired inside the tree
    assert ["/incoming/night-2", WALK_MOVED] in indexed  # a folder renamed inside it
    assert not any("leaving" in path for path, _ in indexed)  # moved out: nothing to ingest


def test_install_is_once():
    assert inotifymoves.install()
    put = InotifyMoveEventGrouper.put_event
    assert inotifymoves.install() and InotifyMoveEventGrouper.put_event is put  # not wrapped twice
