"""The settle rules alone (pure bookkeeping, no I/O): a file found in a just-created folder."""

from __future__ import annotations

import pytest

from pfswatchd.service.settle import NEW_FOLDER_QUIET, Hint, Settler

FILE = "/in/raw/2025-06-01/PFSA00034511.fits"
SIZE = (5760, 1_000, 1_000, 7)  # size, mtime_ns, ctime_ns, inode


def test_found_in_a_new_folder_it_is_ready_once_a_second_stat_finds_it_unchanged():
    settler = Settler(settle_seconds=30.0, truncated_after=60.0)
    settler.observe(FILE, SIZE, Hint.NEW_FOLDER, now=100.0)
    assert settler.ready(100.0) == []  # one stat proves nothing: a writer may still be at work
    assert settler.restat_due(100.0 + NEW_FOLDER_QUIET / 2) == []
    assert settler.next_deadline(100.0) == pytest.approx(NEW_FOLDER_QUIET)
    later = 100.0 + NEW_FOLDER_QUIET + 1e-6
    assert settler.restat_due(later) == [FILE]  # stat again then, not after a second
    settler.observe(FILE, SIZE, Hint.MODIFIED, now=later)
    assert settler.ready(later) == [FILE]  # far sooner than settle_seconds


def test_found_in_a_new_folder_and_still_changing_it_waits_for_its_close_or_the_settle_time():
    settler = Settler(settle_seconds=30.0, truncated_after=60.0)
    settler.observe(FILE, SIZE, Hint.NEW_FOLDER, now=100.0)
    grown = (SIZE[0] + 2880, 2_000, 2_000, 7)
    settler.observe(FILE, grown, Hint.MODIFIED, now=100.0 + NEW_FOLDER_QUIET)
    settler.observe(FILE, grown, Hint.MODIFIED, now=101.0 + NEW_FOLDER_QUIET)
    assert settler.ready(101.0 + NEW_FOLDER_QUIET) == []
    settler.observe(FILE, grown, Hint.CLOSED, now=102.0)
    assert settler.ready(102.0) == [FILE]


def test_found_incomplete_it_does_not_take_the_new_folder_shortcut_again():
    settler = Settler(settle_seconds=30.0, truncated_after=60.0)
    settler.observe(FILE, SIZE, Hint.NEW_FOLDER, now=100.0)
    settler.observe(FILE, SIZE, Hint.MODIFIED, now=100.0 + NEW_FOLDER_QUIET + 1e-6)
    assert settler.ready(100.2) == [FILE]
    settler.examining([FILE])
    settler.examined(FILE)
    settler.incomplete(FILE, SIZE, "has 1 HDU", now=100.2)
    settler.observe(FILE, SIZE, Hint.NEW_FOLDER, now=100.3)  # another walk of the folder
    settler.observe(FILE, SIZE, Hint.MODIFIED, now=101.0)
    assert settler.ready(101.0) == []


RENAMED = (5760, 1_000, 5_000, 7)  # written, then renamed (or stamped): its ctime is later than its mtime


def test_found_in_a_new_folder_after_it_was_renamed_it_is_ready_at_once():
    settler = Settler(settle_seconds=30.0, truncated_after=60.0)
    settler.observe(FILE, RENAMED, Hint.NEW_FOLDER, now=100.0)
    assert settler.ready(100.0) == [FILE]  # no second stat: its writer finished before the rename
    assert settler.closed(FILE)


def test_a_rescan_or_a_write_event_never_takes_the_renamed_shortcut():
    settler = Settler(settle_seconds=30.0, truncated_after=60.0)
    settler.observe(FILE, RENAMED, Hint.RESCAN, now=100.0)  # only a new folder's walk says "no event of its own"
    settler.observe(FILE, RENAMED, Hint.MODIFIED, now=100.5)
    assert settler.ready(100.5) == []
    assert settler.ready(130.0) == [FILE]  # the settle time decides


def test_found_incomplete_as_it_is_the_renamed_shortcut_does_not_make_it_ready_again():
    settler = Settler(settle_seconds=30.0, truncated_after=60.0)
    settler.observe(FILE, RENAMED, Hint.NEW_FOLDER, now=100.0)
    settler.examining([FILE])
    settler.examined(FILE)
    settler.incomplete(FILE, RENAMED, "has 1 HDU", now=100.1)
    settler.observe(FILE, RENAMED, Hint.NEW_FOLDER, now=100.3)  # another walk of the folder
    assert settler.ready(100.3) == []
    grown = (RENAMED[0] + 2880, 6_000, 6_000, 7)  # written again: equal times, a writer at work
    settler.observe(FILE, grown, Hint.NEW_FOLDER, now=100.4)
    assert settler.ready(100.4) == []
