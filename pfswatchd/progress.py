"""The one-shot commands' progress bar: files, MB, rate and time left on a terminal, silent otherwise.

Two bars, drawn by rich: ``examine`` advances with every file whose headers were read, ``ingest``
with every batch the registry committed (a failed or skipped file leaves the ingest total).  Lines
printed while the bars are shown (a failed file's reason) go above them.  When the stream is not a
terminal (a pipe, a log file, cron), nothing but those lines is written.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TextIO

from rich import filesize
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

REFRESH = 0.1  # seconds between redraws: often enough to watch, rarely enough to cost nothing


def on_terminal(stream: TextIO) -> bool:
    """True when :class:`IngestProgress` would draw its bars on ``stream`` (they need the totals)."""
    return Console(file=stream).is_terminal


class IngestProgress:
    def __init__(self, files: int, size: int, stream: TextIO) -> None:
        self.stream = stream
        self._console = Console(file=stream, highlight=False, markup=False, emoji=False, soft_wrap=True)
        self.enabled = self._console.is_terminal
        self._progress: Progress | None = None
        self._last = 0.0
        self._counts = {"examine": 0, "ingest": 0}
        self._totals = {"examine": files, "ingest": files}
        self._tasks: dict[str, TaskID] = {}
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description:8}"),
                BarColumn(bar_width=30),
                TextColumn("{task.fields[files]}"),
                DownloadColumn(binary_units=False),
                _Rate(),
                _TimeLeft(),
                console=self._console,
                auto_refresh=True,
                refresh_per_second=1 / REFRESH,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            for name in ("examine", "ingest"):
                self._tasks[name] = self._progress.add_task(name, total=size, files=self._files(name),
                                                            start=name == "examine")
            self._progress.start()

    def _files(self, name: str) -> str:
        return f"{self._counts[name]}/{self._totals[name]} files"

    def _update(self, name: str, *, advance: int = 0, total_change: int = 0, force: bool = False) -> None:
        if self._progress is None:
            return
        task = self._tasks[name]
        total = self._progress.tasks[task].total or 0
        self._progress.update(task, advance=advance, total=max(0, total + total_change), files=self._files(name))
        now = time.monotonic()
        if force or now - self._last >= REFRESH:
            self._last = now
            self._progress.refresh()

    def examined(self, size: int) -> None:
        """One file's headers were read."""
        self._counts["examine"] += 1
        self._update("examine", advance=size)

    def dropped(self, size: int) -> None:
        """A file goes no further than examination (failed, skipped): it leaves the ingest total."""
        self._totals["ingest"] -= 1
        self._update("ingest", total_change=-size)

    def ingesting(self) -> None:
        """The first batch goes to the butler: the ingest rate counts from now."""
        if self._progress is not None and not self._progress.tasks[self._tasks["ingest"]].started:
            self._progress.start_task(self._tasks["ingest"])

    def committed(self, files: int, size: int) -> None:
        """A batch was written (its files ingested, duplicates, waiting or failed)."""
        self.ingesting()
        self._counts["ingest"] += files
        self._update("ingest", advance=size, force=True)

    def print(self, line: str) -> None:
        """A line for the user (above the bars on a terminal); a byte of a name that is not UTF-8 as \\xNN."""
        from pfswatchd.nametext import escaped

        line = escaped(line)
        if self._progress is not None:
            self._progress.console.print(line)
        else:
            print(line, file=self.stream)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.refresh()
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> IngestProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class _Rate(ProgressColumn):
    """Bytes per second since the bar started: steady for batches that land all at once (rich's own
    speed column needs two updates within its window and shows '?' for a single batch)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if not task.started or elapsed <= 0 or task.completed <= 0:
            return Text("?", style="progress.data.speed")
        return Text(f"{filesize.decimal(int(task.completed / elapsed))}/s", style="progress.data.speed")


class _TimeLeft(ProgressColumn):
    """Time left at the average rate so far, as H:MM:SS."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        total = task.total or 0.0
        if task.finished or (task.started and task.completed >= total):
            return Text("0:00:00", style="progress.remaining")
        if not task.started or elapsed <= 0 or task.completed <= 0:
            return Text("-:--:--", style="progress.remaining")
        seconds = int((total - task.completed) * elapsed / task.completed)
        return Text(f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}", style="progress.remaining")
