"""Benchmark of a year of data on one host: status, restarts, rescans and memory at 2 million ledger rows.

    .venv/bin/python benchmarks/bench_scale.py [--files 200000] [--rows 2000000]
        [--small-files 20000] [--small-rows 20000] [--drops 60] [--idle 60] [--rss-every 20000] [--keep DIR]
    .venv/bin/python benchmarks/bench_scale.py --restart DIR/big [--repeat 3] [--drops 20] [--linked 200000]

A small run (about a minute): --files 2400 --rows 20000 --small-files 1200 --small-rows 1200 --drops 10 --idle 5

Two scale points, each in a fresh work folder, the small one first: (--small-files, --small-rows), the
figures the big one (--files, --rows) is compared with.  At each:

1. Real files: ``files`` small raws (tiny images cloned from pfswatchd.fakedata templates, 12 per
   visit) are written into a staging folder, one folder of 6,000 per night, then renamed into the
   watched tree (incoming/night-NNN/) night by night, paced so that at most 4,000 wait, and ingested
   by a real ``pfswatchd run`` (link transfer, SQLite registry and ledger).  The daemon's RSS is read
   (from /proc, the main process; its worker processes apart) when ``small-files`` files and when all
   of them are in (and every ``--rss-every`` files: the slope), each time once everything renamed in is
   ingested, and again after ``--idle``
   seconds with nothing to do (the issue asks for an hour: pass --idle 3600 for that; the small run idles
   60 s at most).
2. The daemon is stopped, and the ledger grown to ``rows`` rows with bulk SQL inserts: rows of
   ingested raws of earlier visits (copies of a real row with another path, visit, data ID, dataset
   ID), and a visits row for each of those visits.  Their files are not on disk.
3. ``pfswatchd status`` and ``pfswatchd status --json --limit 100``, each run 3 times as a
   subprocess (interpreter start-up included; the daemon stopped, so nothing else competes): median
   wall time, peak RSS of the subprocess (by /usr/bin/time: see measured), bytes written.
4. Restart: ``pfswatchd run`` again, with ``rescan_interval = 1`` so that full rescans of the tree
   follow one another from start-up on.  Time from the process start to READY=1, and to the
   first new file ingested (a file renamed into tonight's folder the moment READY arrives).
5. While those rescans run, ``--drops`` new files are renamed into tonight's folder one per second;
   each one's latency is the time from its rename to its ingested_at in the ledger (p50, p99, max).
   The daemon's log (rescan_done events) says how many passes ran and how long they took, and how
   many of the drops fell inside a pass.

Targets (issue 14): status < 1 s and < 200 MiB at 2M rows; a new file during a rescan p99 < 300 ms;
restart to first new file < 5 s at 2M rows; RSS growth < 50 MiB from 20k to 200k files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pfswatchd import fakedata

PER_NIGHT = 6000  # files per night folder (500 visits x 12)
BACKLOG = 4000  # files renamed in and not yet ingested, at most
FINAL = ("ingested", "duplicate", "ignored", "failed", "quarantined")
MiB = 2**20


def config_text(rescan_interval: float, level: str) -> str:
    return (
        '[repository]\nroot = "repo"\n'
        f'[watch]\npaths = ["incoming"]\nrescan_interval = {rescan_interval}\n'
        '[ingest]\ntransfer = "link"\n[state]\npath = "state"\n[quarantine]\npath = "quarantine"\n'
        f'[log]\nformat = "json"\nlevel = "{level}"\n'
    )


def start_daemon(work: Path, config: str, log: Path) -> tuple[subprocess.Popen[bytes], float, float]:
    """Start `pfswatchd run`; return it, the perf_counter time it was started and when it said READY=1."""
    (work / "pfswatchd.toml").write_text(config)
    address = work / "notify.sock"
    address.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(address))
    sock.settimeout(600)
    with log.open("ab") as output:  # the log is on stdout
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "pfswatchd", "run", "--config",
                                    str(work / "pfswatchd.toml")],
                                   env={**os.environ, "NOTIFY_SOCKET": str(address)}, stdout=output,
                                   stderr=subprocess.STDOUT)
    while b"READY=1" not in sock.recv(4096):
        pass
    ready = time.perf_counter()
    sock.close()
    return process, started, ready


def stop_daemon(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=120)


def rss_mib(pid: int) -> float:
    """VmRSS of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_rss_mib(pid: int) -> float:
    """VmRSS of every descendant of ``pid`` (the examiner and rescan workers, the forkserver), in MiB."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    total, wanted = 0.0, {pid}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in wanted and child not in wanted:
                wanted.add(child)
                changed = True
    for child in wanted - {pid}:
        with contextlib.suppress(OSError):  # gone meanwhile
            total += rss_mib(child)
    return total


def finished(ledger: sqlite3.Connection) -> int:
    (count,), = ledger.execute(f"SELECT count(*) FROM files WHERE state IN {FINAL}").fetchall()
    return int(count)


def ingested_at(ledger: sqlite3.Connection, path: str) -> float | None:
    row = ledger.execute("SELECT ingested_at FROM files WHERE path = ? AND state = 'ingested'", (path,)).fetchone()
    return row[0] if row else None


def wait_ingested(ledger: sqlite3.Connection, path: str, timeout: float = 300.0) -> float:
    end = time.time() + timeout
    while (done := ingested_at(ledger, path)) is None:
        if time.time() > end:
            raise RuntimeError(f"{path} not ingested after {timeout:.0f} s")
        time.sleep(0.001)
    return done


def wait_finished(ledger: sqlite3.Connection, count: int, timeout: float = 1800.0) -> None:
    end = time.time() + timeout
    while finished(ledger) < count:
        if time.time() > end:
            raise RuntimeError(f"fewer than {count} files finished after {timeout:.0f} s")
        time.sleep(0.2)


def nights(files: int) -> Iterator[tuple[int, int]]:
    """(night number, files in it) for ``files`` files."""
    night = 0
    while files > 0:
        yield night, min(PER_NIGHT, files)
        files -= PER_NIGHT
        night += 1


def ingest_tree(work: Path, staging: Path, files: int, checkpoint: int, process: subprocess.Popen[bytes],
                ledger: sqlite3.Connection, rss_every: int) -> dict[str, float]:
    """Rename the staged nights into incoming/, paced; the daemon's RSS at ``checkpoint``, every
    ``rss_every`` files and at the end."""
    figures: dict[str, float] = {}
    renamed = 0
    start = time.perf_counter()
    for night, _ in nights(files):
        folder = work / "incoming" / f"night-{night:03d}"
        folder.mkdir()
        for path in sorted((staging / f"night-{night:03d}").iterdir()):
            os.rename(path, folder / path.name)
            renamed += 1
            if renamed in (checkpoint, files) or renamed % rss_every == 0:
                wait_finished(ledger, renamed)
                time.sleep(2.0)
                figures[f"rss_at_{renamed}"] = rss_mib(process.pid)
                figures[f"workers_rss_at_{renamed}"] = children_rss_mib(process.pid)
            elif renamed % 500 == 0:
                while renamed - finished(ledger) > BACKLOG:
                    time.sleep(0.1)
    figures["ingest_seconds"] = time.perf_counter() - start
    return figures


def grow_ledger(ledger_path: Path, rows: int, root: Path, first_visit: int) -> tuple[int, float]:
    """Add ``rows`` rows of ingested raws of visits before ``first_visit`` (files not on disk), and their
    visits rows, with bulk inserts; return how many visits and the seconds taken."""
    start = time.perf_counter()
    db = sqlite3.connect(ledger_path)
    db.row_factory = sqlite3.Row
    # Bulk load: the indexes' pages stay in memory (random dataset ids otherwise cost a page read per row).
    db.execute("PRAGMA cache_size = -1048576")
    db.execute("PRAGMA synchronous = OFF")
    template = dict(db.execute("SELECT * FROM files WHERE state = 'ingested' AND kind = 'raw_ccd' "
                               "ORDER BY id LIMIT 1").fetchone())
    visit_template = db.execute("SELECT * FROM visits ORDER BY visit LIMIT 1").fetchone()
    data_id = json.loads(template["data_id"])
    del template["id"]
    columns = list(template)
    n_visits = (rows + 11) // 12
    year = 365 * 86400.0
    now = time.time()
    visit0 = first_visit - n_visits
    if visit0 < 1:
        raise SystemExit(f"--rows {rows}: too many synthesised visits below visit {first_visit}")

    # One INSERT ... SELECT over a generated series (no Python per row): visit, camera, time and path of
    # row i; the other columns are the template row's.
    computed = {
        "path": "? || '/year-' || printf('%03d', i / 6000) || '/PFS' || CASE WHEN i % 3 = 2 THEN 'B' ELSE 'A' END"
                " || printf('%06d', ? + i / 12) || ((i % 12) / 3 + 1) || (i % 3 + 1) || '.fits'",
        "visit": "? + i / 12",
        "kind": "CASE WHEN i % 3 = 2 THEN 'raw_nir' ELSE 'raw_ccd' END",
        "data_id": "json_object('arm', substr('brn', i % 3 + 1, 1), 'instrument', ?, 'spectrograph', "
                   "(i % 12) / 3 + 1, 'visit', ? + i / 12)",
        "dataset_id": "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)"
                      " || '-' || hex(randomblob(2)) || '-' || hex(randomblob(6)))",
        "inode": "1000000000 + i",
        **{name: "? + ? * i" for name in ("seen_at", "complete_at", "ingested_at", "updated_at")},
    }
    expressions, parameters = [], []
    for column in columns:
        if column in computed:
            expressions.append(computed[column])
            parameters.extend({"path": [str(root), visit0], "visit": [visit0],
                               "data_id": [data_id.get("instrument", "PFS"), visit0]}.get(
                column, [now - year, year / rows] if column.endswith("_at") else []))
        else:
            expressions.append("?")
            parameters.append(template[column])

    with db:
        db.execute(f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {rows - 1}) "
                   f"INSERT INTO files ({', '.join(columns)}) SELECT {', '.join(expressions)} FROM n", parameters)
        if visit_template is not None:
            vt = dict(visit_template)
            vcolumns = list(vt)

            def visit_rows() -> Iterator[tuple[object, ...]]:
                for v in range(n_visits):
                    when = now - year + year * v / n_visits
                    values = {**vt, "visit": visit0 + v, "first_seen_at": when, "complete_at": when,
                              "hook_started_at": None, "hook_finished_at": None}
                    yield tuple(values[c] for c in vcolumns)

            db.executemany(f"INSERT INTO visits ({', '.join(vcolumns)}) VALUES ({', '.join('?' * len(vcolumns))})",
                           visit_rows())
    # One bulk transaction leaves a WAL as large as the rows (1 GB at 2M); the service's small transactions
    # are checkpointed as they go.  Without this, `status` would be measured reading through that WAL.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return n_visits, time.perf_counter() - start


def measured(argv: list[str]) -> tuple[float, float, bytes, int, float]:
    """Run ``argv``: wall seconds, its peak RSS in MiB, its stdout, its exit status and its CPU seconds
    (user + system: on a loaded machine the wall time is mostly waiting for a core).

    The peak is measured by /usr/bin/time (a small process that forks it): a child of this process would
    report at least this process's own peak (Linux keeps ru_maxrss across exec, and subprocess uses vfork),
    which after grow_ledger's 1 GiB page cache is more than 1 GiB.  Without /usr/bin/time, os.wait4's
    ru_maxrss is used, which has that floor.
    """
    timer = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile(prefix="pfswatchd-rss-") as peak:
        wrapped = [str(timer), "-q", "-f", "%M %U %S", "-o", peak.name, *argv] if timer.exists() else argv
        start = time.perf_counter()
        process = subprocess.Popen(wrapped, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = process.stdout.read() if process.stdout else b""
        _, code, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        text = Path(peak.name).read_text().split()
        if timer.exists() and len(text) >= 3:
            mib, cpu = int(text[-3]) / 1024, float(text[-2]) + float(text[-1])
        else:
            mib, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    return seconds, mib, out, os.waitstatus_to_exitcode(code), cpu


def run_status(config: Path, *extra: str, runs: int = 3) -> tuple[float, float, int]:
    """Median wall seconds, max peak RSS (MiB) and output bytes of `pfswatchd status` ``extra``."""
    times, peaks, size = [], [], 0
    for _ in range(runs):
        seconds, mib, out, code, _ = measured([sys.executable, "-m", "pfswatchd", "status", "--config", str(config),
                                            *extra])
        if code != 0:
            raise RuntimeError(f"status {' '.join(extra)} exited {code}")
        times.append(seconds)
        peaks.append(mib)
        size = len(out)
    return statistics.median(times), max(peaks), size


def progress(text: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))]


def rescans(log: Path, since: float) -> list[tuple[float, float, int]]:
    """(start, end, files) of the rescan passes the log reports ending after ``since`` (epoch seconds)."""
    return [(end - float(str(event.get("seconds", 0.0))), end, int(str(event.get("files", 0))))
            for end, event in events(log, "rescan_done", since)]


def scale_point(work: Path, files: int, rows: int, checkpoint: int, drops: int, idle: float,
                rss_every: int) -> dict[str, float]:
    figures: dict[str, float] = {"files": files, "rows": max(rows, files), "idle": idle}
    templates, staging = work / "templates", work / "staging"
    (work / "incoming").mkdir(parents=True)
    first_visit = 400_000
    start = time.perf_counter()
    visit = first_visit
    for night, count in nights(files):
        fakedata.clone_burst(staging / f"night-{night:03d}", count, visit, templates)
        visit += (count + 11) // 12
    extra = fakedata.clone_burst(staging / "new", drops + 1, visit + 1, templates)
    figures["write_seconds"] = time.perf_counter() - start
    progress(f"{files:,} files written in {figures['write_seconds']:.0f} s")
    log = work / "daemon.log"
    config = work / "pfswatchd.toml"

    process, _, _ = start_daemon(work, config_text(3600.0, os.environ.get("BENCH_LOG_LEVEL", "warning")), log)
    ledger = sqlite3.connect(f"file:{work / 'state' / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=30)
    figures.update(ingest_tree(work, staging, files, min(checkpoint, files), process, ledger, rss_every))
    figures["rss_ingested"] = figures[f"rss_at_{files}"]
    figures["rss_checkpoint"] = figures[f"rss_at_{min(checkpoint, files)}"]
    idle_start = time.perf_counter()
    for share in range(1, 7):  # the RSS six times over the idle period: flat, or growing while nothing happens
        time.sleep(max(0.0, idle_start + idle * share / 6 - time.perf_counter()))
        figures[f"rss_idle_{share}"] = rss_mib(process.pid)
    progress(f"ingested in {figures['ingest_seconds']:.0f} s; idle {idle:g} s")
    figures["rss_idle"] = rss_mib(process.pid)
    figures["workers_rss_idle"] = children_rss_mib(process.pid)
    states = dict(ledger.execute("SELECT state, count(*) FROM files GROUP BY state").fetchall())
    figures["not_ingested"] = files - states.get("ingested", 0)
    ledger.close()
    stop_daemon(process)

    if rows > files:
        n_visits, seconds = grow_ledger(work / "state" / "ledger.sqlite3", rows - files, work / "incoming",
                                        first_visit)
        figures["synth_seconds"] = seconds
        progress(f"ledger grown to {rows:,} rows ({n_visits:,} visits) in {seconds:.0f} s")
    figures["status_s"], figures["status_mib"], _ = run_status(config)
    figures["json_s"], figures["json_mib"], figures["json_bytes"] = run_status(config, "--json", "--limit", "100")

    tonight = work / "incoming" / f"night-{max(n for n, _ in nights(files)):03d}"
    figures.update(restart(work, tonight, extra))
    return figures


def restart(work: Path, tonight: Path, extra: list[Path]) -> dict[str, float]:
    """Restart the daemon on ``work`` (rescan_interval 1 s): start -> READY, -> ``extra[0]`` ingested, then
    ``extra[1:]`` dropped one per second into ``tonight`` during the rescans; the figures."""
    figures: dict[str, float] = {}
    log = work / "daemon.log"
    wall_start = time.time()
    level = os.environ.get("BENCH_RESTART_LOG_LEVEL", "info")  # debug: every step's timings, heap trims
    process, started, ready = start_daemon(work, config_text(1.0, level), log)
    ledger = sqlite3.connect(f"file:{work / 'state' / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=30)
    sent = time.time()
    first = tonight / extra[0].name
    os.rename(extra[0], first)
    done = wait_ingested(ledger, str(first))
    figures["ready_s"] = ready - started
    figures["first_file_s"] = ready - started + (done - sent)
    figures["first_after_ready_s"] = done - sent

    drop_times: list[tuple[float, float]] = []
    for path in extra[1:]:
        sent = time.time()
        target = tonight / path.name
        os.rename(path, target)
        done = wait_ingested(ledger, str(target))
        drop_times.append((sent, done))
        time.sleep(max(0.0, sent + 1.0 - time.time()))
    ledger.close()
    stop_daemon(process)
    figures.update(startup_phases(log, wall_start, wall_start + (ready - started)))
    passes = rescans(log, wall_start)
    latencies = [done - sent for sent, done in drop_times]
    inside = sum(any(begin <= sent <= end for begin, end, _ in passes) for sent, _ in drop_times)
    figures.update(drop_p50=statistics.median(latencies), drop_p99=percentile(latencies, 0.99),
                   drop_max=max(latencies), drops=len(latencies), drops_inside=inside, passes=len(passes),
                   pass_s=statistics.median([end - begin for begin, end, _ in passes]) if passes else 0.0,
                   pass_files=max((n for _, _, n in passes), default=0))
    return figures


def events(log: Path, name: str, since: float) -> Iterator[tuple[float, dict[str, object]]]:
    """(epoch seconds, event) of the log's ``name`` events logged at or after ``since``."""
    import datetime

    for line in log.read_text(errors="replace").splitlines():
        if f'"{name}"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        stamp = event.get("timestamp") or event.get("ts") or event.get("time")
        if isinstance(stamp, str):
            when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        elif isinstance(stamp, int | float):
            when = float(stamp)
        else:
            continue
        if when >= since:
            yield when, event


def startup_phases(log: Path, since: float, ready: float) -> dict[str, float]:
    """The daemon's startup_phase events: seconds from the process start to the end of each phase
    (``phase_<name>_s``), and what came before the first one (interpreter, imports)."""
    figures: dict[str, float] = {}
    for when, event in events(log, "startup_phase", since):
        figures[f"phase_{event.get('phase')}_s"] = when - since
    if figures:
        figures["ready_after_phases_s"] = ready - since
    return figures


def link_rows(work: Path, count: int) -> None:
    """Put ``count`` of the synthesised rows' files on disk (so that rescans have that many to look at): hard
    links to the real raws in turn, and those rows given the size, mtime and inode of their file (ingested
    files as they are)."""
    db = sqlite3.connect(work / "state" / "ledger.sqlite3")
    sources = [p for p in sorted((work / "incoming").glob("night-*/*.fits")) if os.stat(p).st_nlink < 60_000]
    rows = db.execute("SELECT id, path FROM files WHERE path LIKE ? ORDER BY id LIMIT ?",
                      (f"{work / 'incoming'}/year-%", count)).fetchall()
    start = time.perf_counter()
    made = 0
    identities = []
    for number, (row_id, path) in enumerate(rows):
        target = Path(path)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(sources[number % len(sources)], target)  # ext4 allows 65,000 links to a file
            made += 1
        st = os.stat(target)
        identities.append((st.st_size, st.st_mtime_ns, st.st_ino, row_id))
    with db:
        db.executemany("UPDATE files SET size = ?, mtime_ns = ?, inode = ? WHERE id = ?", identities)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    progress(f"{len(rows):,} synthesised rows on disk ({made:,} links made) in {time.perf_counter() - start:.0f} s")


def restart_only(work: Path, drops: int, repeat: int, linked: int = 0) -> None:
    """Restart the daemon ``repeat`` times on a point folder kept by an earlier --keep run."""
    if linked:
        link_rows(work, linked)
    ledger = sqlite3.connect(work / "state" / "ledger.sqlite3")
    (visit,), = ledger.execute("SELECT max(visit) FROM files").fetchall()
    ledger.close()
    used = work / "bench-visits-used"  # a ledger put back between runs does not know the repository has them
    visit = max(visit, int(used.read_text()) if used.exists() else 0)
    tonight = max((work / "incoming").glob("night-*"))
    for run in range(repeat):
        visit += 1 + (drops + 12) // 12
        used.write_text(str(visit + (drops + 12) // 12))
        extra = fakedata.clone_burst(work / "staging" / f"new-{visit}", drops + 1, visit, work / "templates")
        print(f" {os.popen('uptime').read().strip()}", flush=True)
        figures = restart(work, tonight, extra)
        print(f"restart {run + 1}: " + json.dumps({k: round(v, 3) for k, v in figures.items()}), flush=True)


def report(small: dict[str, float], big: dict[str, float]) -> None:
    def row(name: str, key: str, fmt: str, target: str = "") -> None:
        print(f"  {name:52s} {format(small[key], fmt):>14s} {format(big[key], fmt):>14s}   {target}")

    print()
    print(f"  {'':52s} {int(small['files']):>8,} files {int(big['files']):>8,} files")
    print(f"  {'':52s} {int(small['rows']):>9,} rows {int(big['rows']):>9,} rows")
    row("files written (staging), seconds", "write_seconds", ".1f")
    row("ingest through the daemon, seconds (renamed in, paced)", "ingest_seconds", ".1f")
    print(f"  {'  ... files/s':52s} {small['files'] / small['ingest_seconds']:14.0f} "
          f"{big['files'] / big['ingest_seconds']:14.0f}")
    row("files not ingested (should be 0)", "not_ingested", ".0f")
    if "synth_seconds" in big:
        print(f"  {'ledger rows synthesised, seconds':52s} {small.get('synth_seconds', 0.0):14.1f} "
              f"{big['synth_seconds']:14.1f}")
    row("`status` (one line): seconds (median of 3)", "status_s", ".2f", "target < 1 s at 2M rows")
    row("`status`: peak RSS, MiB", "status_mib", ".0f", "target < 200 MiB")
    row("`status --json --limit 100`: seconds", "json_s", ".2f", "target < 1 s")
    row("`status --json --limit 100`: peak RSS, MiB", "json_mib", ".0f", "target < 200 MiB")
    row("`status --json --limit 100`: bytes out", "json_bytes", ".0f")
    row("restart: start -> READY, seconds", "ready_s", ".2f")
    row("restart: start -> first new file ingested, seconds", "first_file_s", ".2f", "target < 5 s at 2M rows")
    row("restart: READY -> that file ingested, seconds", "first_after_ready_s", ".2f")
    for key in ("drop_p50", "drop_p99", "drop_max"):
        small[key + "_ms"], big[key + "_ms"] = small[key] * 1000, big[key] * 1000
    row("files dropped 1/s during rescans: p50, ms", "drop_p50_ms", ".0f")
    row("  ... p99, ms", "drop_p99_ms", ".0f", "target < 300 ms")
    row("  ... max, ms", "drop_max_ms", ".0f")
    row("  ... files dropped", "drops", ".0f")
    row("  ... dropped during a pass", "drops_inside", ".0f")
    row("  ... rescan passes finished meanwhile", "passes", ".0f")
    row("  ... seconds per pass (median)", "pass_s", ".2f")
    row("  ... files per pass", "pass_files", ".0f")
    row("daemon RSS at the checkpoint (small run's size), MiB", "rss_checkpoint", ".0f")
    row("daemon RSS after ingesting all files, MiB", "rss_ingested", ".0f")
    row("daemon RSS after the idle period, MiB", "rss_idle", ".0f")
    row("its worker processes' RSS after idle, MiB", "workers_rss_idle", ".0f")
    print("  daemon RSS in the big run over the idle period, MiB: "
          + ", ".join(f"{big['idle'] * share / 6 / 60:.3g} min: {big[f'rss_idle_{share}']:.0f}" for share in range(1, 7)
                      if f"rss_idle_{share}" in big))
    at = sorted((int(k.removeprefix("rss_at_")), v) for k, v in big.items() if k.startswith("rss_at_"))
    print("  daemon RSS in the big run by files ingested, MiB: "
          + ", ".join(f"{n:,}: {v:.0f}" for n, v in at))
    later = [(n, v) for n, v in at if n >= small["files"]]
    if len(later) > 1:
        (n0, v0), (n1, v1) = later[0], later[-1]
        print(f"  ... slope from {n0:,} to {n1:,} files: {(v1 - v0) / (n1 - n0) * 10_000:+.1f} MiB per 10,000 files "
              f"(a straight line to 200,000 files: {(v1 - v0) / (n1 - n0) * (200_000 - n0):+.0f} MiB)")
    growth = big["rss_ingested"] - big["rss_checkpoint"]
    print(f"  RSS growth in the big run from {int(small['files']):,} to {int(big['files']):,} files ingested: "
          f"{growth:+.0f} MiB   (target < 50 MiB); after idle {big['rss_idle'] - big['rss_checkpoint']:+.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000, help="real files in the big run's tree")
    parser.add_argument("--rows", type=int, default=2_000_000, help="ledger rows of the big run")
    parser.add_argument("--small-files", type=int, default=20_000, help="real files in the small run")
    parser.add_argument("--small-rows", type=int, default=20_000, help="ledger rows of the small run")
    parser.add_argument("--drops", type=int, default=60, help="files dropped one per second during rescans")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle before the last RSS reading "
                        "(the issue's figure is after an hour: 3600)")
    parser.add_argument("--rss-every", type=int, default=20_000, help="also read the daemon's RSS every this "
                        "many files ingested (the slope)")
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one, removed)")
    parser.add_argument("--restart", type=Path, metavar="POINT", help="only restart the daemon on a point "
                        "folder an earlier --keep run left (e.g. KEEP/big): READY, first file, drops; --repeat times")
    parser.add_argument("--repeat", type=int, default=1, help="restarts with --restart")
    parser.add_argument("--linked", type=int, default=0, help="with --restart: first put that many synthesised "
                        "rows' files on disk (hard links to one raw), for rescans of a large tree")
    args = parser.parse_args()
    if args.restart:
        restart_only(args.restart, args.drops, args.repeat, args.linked)
        return
    base = args.keep or Path(tempfile.mkdtemp(prefix="pfswatchd-scale-bench-"))
    print(f"bench_scale: --files {args.files} --rows {args.rows} --small-files {args.small_files} "
          f"--small-rows {args.small_rows} --drops {args.drops} --idle {args.idle:g} --rss-every {args.rss_every}; "
          f"work in {base}", flush=True)
    try:
        points = []
        for name, files, rows in (("small", args.small_files, args.small_rows), ("big", args.files, args.rows)):
            began = time.perf_counter()
            idle = args.idle if name == "big" else min(args.idle, 60.0)  # the hour is the big run's
            points.append(scale_point(base / name, files, rows, args.small_files, args.drops, idle, args.rss_every))
            print(f"{name} run ({files:,} files, {max(rows, files):,} rows) took "
                  f"{time.perf_counter() - began:.0f} s; its figures: "
                  f"{json.dumps({k: round(v, 4) for k, v in points[-1].items()})}", flush=True)
            if args.keep is None:
                shutil.rmtree(base / name, ignore_errors=True)
        report(*points)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
