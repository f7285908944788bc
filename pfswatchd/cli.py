"""Command line: ``pfswatchd <command> ...``.  The only module that exits.

Exit status: 0 success; 1 some files failed or a runtime error; 2 usage error;
78 (EX_CONFIG) bad configuration, so that systemd does not restart-loop on it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pfswatchd import __version__
from pfswatchd.butler.transfer import TRANSFER_MODES
from pfswatchd.errors import ConfigError, PfsWatchError
from pfswatchd.model import FileKind

if TYPE_CHECKING:
    from pfswatchd.config import Config
    from pfswatchd.state.ledger import Ledger

EX_OK = 0
EX_FAILED = 1
EX_USAGE = 2
EX_CONFIG = 78
# The ledger's file states (pfswatchd.state.ledgerdb.FileState), spelled here so that `--help` does not
# import SQLAlchemy; tests/state/test_status.py checks that they agree.
FILE_STATES = ("pending", "ingesting", "waiting", "ingested", "duplicate", "ignored", "failed", "quarantined")
# The --ingest-task values of `butler ingest-raws` that pfswatchd stands in for (obs_pfs's PFS task).
INGEST_TASKS = ("lsst.obs.pfs.gen3.PfsRawIngestTask",)


class UsageError(Exception):
    """A command-line value pfswatchd cannot honour (exit status 2, as argparse's own errors)."""


def _create(args: argparse.Namespace) -> int:
    from pfswatchd.butler import repo

    instruments = args.instrument or list(repo.DEFAULT_INSTRUMENTS)
    butler = repo.create(args.repo, instruments=instruments, registry_db=args.registry_db)
    try:
        shape = repo.check_universe(butler, args.repo)
        print(f"{args.repo}: PFS repository ready ({shape}) with instruments {', '.join(instruments)}")
        for instrument in instruments:
            chain = repo.defaults_chain(instrument)
            print(f"  {chain} -> {', '.join(butler.collections.get_info(chain).children)}")
    finally:
        butler.close()
    return EX_OK


def _ingest_raws(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pfswatchd.butler.ingest import IngestSettings
    from pfswatchd.files.corrections import HeaderCorrections
    from pfswatchd.oneshot import run_ingest

    if args.ingest_task not in (None, *INGEST_TASKS):
        raise UsageError(f"--ingest-task {args.ingest_task}: pfswatchd computes what {INGEST_TASKS[0]} "
                         "computes and nothing else; expected that task (or no --ingest-task)")
    settings = IngestSettings(transfer=args.transfer, raw_run=args.output_run, fail_fast=args.fail_fast)
    configured = (Path(args.header_corrections),) if args.header_corrections else ()
    return run_ingest(
        args.repo, args.paths, accept=frozenset({FileKind.RAW_CCD, FileKind.RAW_NIR}), settings=settings,
        corrections=HeaderCorrections.standard(configured),
    )


def _ingest_pfsconfig(args: argparse.Namespace) -> int:
    from pfswatchd.butler import repo
    from pfswatchd.butler.ingest import IngestSettings
    from pfswatchd.oneshot import run_ingest

    instrument = repo.INSTRUMENT_ALIASES.get(args.instrument, args.instrument)
    settings = IngestSettings(transfer=args.transfer, pfsconfig_run=args.run, fail_fast=args.fail_fast)
    return run_ingest(
        args.repo,
        args.paths,
        accept=frozenset({FileKind.PFSCONFIG}),
        settings=settings,
        instrument=instrument,
    )


def _fake_data(args: argparse.Namespace) -> int:
    from pfswatchd.fakedata import make_visits

    paths = make_visits(
        args.dir, visits=args.visits, first_visit=args.first_visit, full_size=args.full_size, pfsf=args.pfsf
    )
    print(f"{args.dir}: wrote {len(paths)} files for {args.visits} visits")
    return EX_OK


def _load_config(path: str | None) -> Config:
    from pfswatchd import config

    return config.load(path) if path else config.default()


def _run(args: argparse.Namespace) -> int:
    from pfswatchd.service.daemon import run_service

    return run_service(args.config)  # loads the configuration first: a bad file exits 78 (ConfigError)


def _check_config(args: argparse.Namespace) -> int:
    from pfswatchd.config import redact_url

    cfg = _load_config(args.file)
    print(f"{args.file}: OK")
    print(f"  repository.root = {cfg.repository.root} (create = {str(cfg.repository.create).lower()})")
    print(f"  watch.paths     = {', '.join(str(p) for p in cfg.watch.paths)} ({cfg.watch.mode})")
    print(f"  ingest.transfer = {cfg.ingest.transfer}")
    print(f"  state.url       = {redact_url(cfg.state.url)}")
    print(f"  quarantine      = {cfg.quarantine.policy} -> {cfg.quarantine.path}")
    return EX_OK


def _open_ledger(config_path: str | None) -> Ledger:
    from pfswatchd.state.ledger import Ledger

    cfg = _load_config(config_path)
    ledger = Ledger(cfg.state.url, instance=cfg.state.instance)
    ledger.create()
    return ledger


def _status(args: argparse.Namespace) -> int:
    import os

    from pfswatchd.state import status
    from pfswatchd.state.ledgerview import FileFilter

    prefix = args.path
    if prefix is not None and not os.path.isabs(prefix):
        prefix = os.path.join(os.getcwd(), prefix)  # not abspath: a trailing "/" means "inside this folder"
    wanted = FileFilter(states=frozenset(args.state or ()), since=args.since, prefix=prefix, limit=args.limit)
    ledger = _open_ledger(args.config)
    try:
        status.show(ledger, sys.stdout, as_json=args.json, wanted=wanted)
    finally:
        ledger.close()
    return EX_OK


def _since(text: str) -> float:
    from pfswatchd.state.status import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--limit {text!r}: expected a whole number of files (0 or more)")
    return int(text)


def _retry(args: argparse.Namespace) -> int:
    from pfswatchd.state import status

    ledger = _open_ledger(args.config)
    try:
        status.retry(ledger, kinds=args.kind, paths=args.paths, out=sys.stdout)
    finally:
        ledger.close()
    return EX_OK


def _unpack(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pfswatchd.archives.stars import operator_instructions
    from pfswatchd.archives.unpack import unpack

    cfg = _load_config(args.config)
    result = unpack(Path(args.archive), Path(args.dest), limits=cfg.archives.limits, verify=not args.no_verify,
                    file_mode=cfg.service.file_mode, dir_mode=cfg.service.dir_mode)
    print(f"{args.archive}: {result.members} members, {len(result.published)} files published into {result.dest}")
    for member, reason in result.failed:
        print(f"FAILED {member}: {reason}", file=sys.stderr)
    if result.stars_bundle:
        print(operator_instructions(result.dest))
    return EX_FAILED if result.failed else EX_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfswatchd", description="Ingest Subaru PFS raw frames and pfsConfigs into a butler repository."
    )
    parser.add_argument("--version", action="version", version=f"pfswatchd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", help="create a butler repository with the PFS universe")
    create.add_argument("repo", metavar="REPO")
    create.add_argument("--instrument", action="append", help="instrument to register (repeatable)")
    create.add_argument("--registry-db", metavar="URL", help="registry database, e.g. "
                        "postgresql+psycopg2://user@host/db (default: SQLite in REPO); a password in the URL "
                        "is used but not stored (other tools read it from ~/.lsst/db-auth.yaml)")
    create.set_defaults(func=_create)

    raws = commands.add_parser("ingest-raws", help="ingest PFSA/PFSB raw frames (like butler ingest-raws)")
    raws.add_argument("repo", metavar="REPO")
    raws.add_argument("paths", metavar="PATH", nargs="+", help="file, directory (recursive) or glob")
    raws.add_argument("--transfer", choices=TRANSFER_MODES, default="auto")
    raws.add_argument("--fail-fast", action="store_true", help="stop at the first bad file")
    raws.add_argument("--output-run", metavar="RUN", help="RUN collection of the raws, as in butler ingest-raws "
                      "(default <instrument>/raw/sps, obs_pfs's default raw RUN)")
    raws.add_argument("--ingest-task", metavar="TASK", help="accepted so that the PFS tutorial's command lines "
                      f"paste as they are: {INGEST_TASKS[0]} is the only value, and pfswatchd always computes "
                      "the visit records, data IDs and dataset ids that task computes (it does not run it)")
    raws.add_argument("--header-corrections", metavar="DIR", help="folder of header-correction files "
                      "(<instrument>-<visit>.yaml), looked for before $METADATA_CORRECTIONS_PATH and obs_pfs's "
                      "own corrections (used when obs_pfs is importable)")
    raws.set_defaults(func=_ingest_raws)

    configs = commands.add_parser(
        "ingest-pfsconfig", help="ingest pfsConfig/PFSF files (like ingestPfsConfig.py)"
    )
    configs.add_argument("repo", metavar="REPO")
    configs.add_argument("instrument", metavar="INSTRUMENT", help="instrument name (PFS) or class")
    configs.add_argument("run", metavar="RUN", help="RUN collection, e.g. PFS/raw/pfsConfig")
    configs.add_argument("paths", metavar="PATH", nargs="+", help="file, directory (recursive) or glob")
    configs.add_argument("--transfer", choices=TRANSFER_MODES, default="auto")
    configs.add_argument("--fail-fast", action="store_true", help="stop at the first bad file")
    configs.add_argument("--no-update", action="store_true", help="accepted for compatibility; records "
                         "are never updated")
    configs.set_defaults(func=_ingest_pfsconfig)

    fake = commands.add_parser("fake-data", help="write realistic synthetic PFS files for trying pfswatchd")
    fake.add_argument("dir", metavar="DIR")
    fake.add_argument("--visits", type=int, default=2)
    fake.add_argument("--first-visit", type=int, default=100)
    fake.add_argument("--full-size", action="store_true", help="full-size 4300x4416 CCD / 4096^2 NIR images")
    fake.add_argument("--pfsf", action="store_true", help="also write STARS-style PFSF files (00, 01, 02)")
    fake.set_defaults(func=_fake_data)

    run = commands.add_parser("run", help="run the service: watch folders and ingest files as they complete")
    run.add_argument("--config", metavar="FILE", help="TOML configuration (default: the embedded default)")
    run.set_defaults(func=_run)

    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_check_config)

    status = commands.add_parser("status", help="what happened to every file (from the ledger)")
    status.add_argument("--config", metavar="FILE")
    status.add_argument("--json", action="store_true", help="one JSON object: counts, archives, errors and "
                        "the files (last, one per line, streamed)")
    status.add_argument("--state", action="append", choices=FILE_STATES,
                        help="list only files in this state (repeatable)")
    status.add_argument("--since", type=_since, metavar="WHEN", help="list only files changed since WHEN: "
                        "a duration back from now (90s, 30m, 6h, 2d), an ISO 8601 date or time, or Unix seconds")
    status.add_argument("--limit", type=_count, metavar="N", help="list at most N files (first seen first)")
    status.add_argument("--path", metavar="PREFIX", help="list only files whose path starts with PREFIX "
                        "(relative to the current folder unless absolute)")
    status.set_defaults(func=_status)

    retry = commands.add_parser("retry", help="queue failed and quarantined files again")
    retry.add_argument("--config", metavar="FILE")
    retry.add_argument("--kind", action="append", help="only this error kind (repeatable)")
    retry.add_argument("paths", metavar="PATH", nargs="*", help="only these files")
    retry.set_defaults(func=_retry)

    unpack = commands.add_parser("unpack", help="extract an archive safely, once, by hand (as the service does)")
    unpack.add_argument("archive", metavar="ARCHIVE")
    unpack.add_argument("dest", metavar="DEST", help="published into DEST/<archive name>/")
    unpack.add_argument("--config", metavar="FILE", help="take the [archives] limits from this file")
    unpack.add_argument("--no-verify", action="store_true", help="do not check md5/sha256 sidecars")
    unpack.set_defaults(func=_unpack)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"pfswatchd: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except UsageError as exc:
        print(f"pfswatchd: {exc}", file=sys.stderr)
        return EX_USAGE
    except (PfsWatchError, OSError) as exc:
        print(f"pfswatchd: {exc}", file=sys.stderr)
        return EX_FAILED
    except KeyboardInterrupt:
        print("pfswatchd: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one catch-all: a bug, reported in one line
        from pfswatchd.oneshot import PathError

        if isinstance(exc, PathError):
            print(f"pfswatchd: {exc}", file=sys.stderr)
            return EX_FAILED
        print(f"pfswatchd: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EX_FAILED
