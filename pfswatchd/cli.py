"""Command line: ``pfswatchd <command> ...``.  The only module that exits.

Exit status: 0 success; 1 some files failed or a runtime error; 2 usage error;
78 (EX_CONFIG) bad configuration, so that systemd does not restart-loop on it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pfswatchd import __version__
from pfswatchd.butler.transfer import TRANSFER_MODES
from pfswatchd.errors import ConfigError, ErrorKind, PfsWatchError, RefusedError
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
    from pfswatchd.butler import obspfs, repo

    instruments = args.instrument or list(repo.DEFAULT_INSTRUMENTS)
    recipe = obspfs.recipe()  # obs_pfs's seed, universe and Instrument classes where obs_pfs imports
    existed = repo.is_repository(args.repo)
    butler = repo.create(args.repo, instruments=instruments, registry_db=args.registry_db, recipe=recipe)
    try:
        shape = repo.check_universe(butler, args.repo)
        print(f"{args.repo}: PFS repository ready ({shape}) with instruments {', '.join(instruments)}")
        if not existed:
            print(f"  made from {_made_from(recipe)}")
        for instrument in instruments:
            chain = repo.defaults_chain(instrument)
            print(f"  {chain} -> {', '.join(butler.collections.get_info(chain).children)}")
    finally:
        butler.close()
    return EX_OK


def _made_from(recipe: Any) -> str:
    from pfswatchd.butler import obspfs

    if recipe is obspfs.OBS_PFS_RECIPE:
        return (f"obs_pfs's configuration ({obspfs.product_dir() / 'gen3'}), instruments registered by obs_pfs's "
                "Instrument classes")
    return ("pfswatchd's configuration (obs_pfs is not importable here): raws and pfsConfigs are read with "
            "pfswatchd's formatters; run `pfswatchd hand-over` where the PFS pipeline is installed")


def _hand_over(args: argparse.Namespace) -> int:
    from pfswatchd.butler.handover import hand_over

    report = hand_over(args.repo, update_records=args.update_instrument_records)
    print(f"{args.repo}: handed over to obs_pfs" if report.changed else f"{args.repo}:")
    for line in report.lines():
        print(f"  {line}")
    return EX_OK


def _import(args: argparse.Namespace) -> int:
    from pfswatchd.butler import repo
    from pfswatchd.butler.exports import import_export

    butler = repo.open_butler(args.repo)
    try:
        report = import_export(butler, args.directory, export_file=args.export_file,
                               transfer=None if args.transfer == "none" else args.transfer,
                               skip_dimensions=set(args.skip_dimensions or ()) or None)
    finally:
        butler.close()
    print(f"{args.repo}: imported {sum(report.datasets.values())} datasets from {args.directory}")
    for line in report.lines():
        print(f"  {line}")
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

    paths = make_visits(args.dir, visits=args.visits, first_visit=args.first_visit, date=args.date,
                        full_size=args.full_size, pfsf=args.pfsf)
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


def _date(text: str) -> str:
    import datetime

    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a date as YYYY-MM-DD, e.g. 2024-10-25") from None
    return text


def _open_ledger(config_path: str | None) -> Ledger:
    """The ledger the configuration names; never created here (that is the service's job)."""
    from pfswatchd.state.ledger import Ledger
    from pfswatchd.state.ledgerdb import NoLedgerError, missing_ledger

    cfg = _load_config(config_path)
    where = missing_ledger(cfg.state.url)
    if where is not None:
        source = f"--config {config_path}" if config_path else "the embedded default configuration (no --config)"
        raise NoLedgerError(f"no ledger at {where} (state.url of {source}); run the service there first "
                            "(pfswatchd run), or pass the --config FILE it runs with")
    return Ledger(cfg.state.url, instance=cfg.state.instance)


@contextlib.contextmanager
def _reading_ledger(config_path: str | None) -> Iterator[Ledger]:
    """The ledger, open; a database error while it is read is one line saying which ledger and why."""
    import sqlalchemy.exc

    from pfswatchd.errors import first_line
    from pfswatchd.logconfig import redact
    from pfswatchd.state.ledgerdb import NoLedgerError, sqlite_path

    ledger = _open_ledger(config_path)
    try:
        yield ledger
    except sqlalchemy.exc.SQLAlchemyError as exc:
        url = str(ledger.engine.url.render_as_string(hide_password=True))
        where = sqlite_path(url) or redact(url)
        reason = first_line(exc.orig) if isinstance(exc, sqlalchemy.exc.DBAPIError) else first_line(exc)
        raise NoLedgerError(f"cannot read the ledger {where}: {reason}; expected the ledger the service keeps "
                            "(deleted or replaced while the service ran? its log says ledger_lost)") from None
    finally:
        ledger.close()


def _status(args: argparse.Namespace) -> int:
    import os

    from pfswatchd.monitor import report
    from pfswatchd.state import status
    from pfswatchd.state.ledgerview import FileFilter

    prefix = args.path
    if prefix is not None and not os.path.isabs(prefix):
        prefix = os.path.join(os.getcwd(), prefix)  # not abspath: a trailing "/" means "inside this folder"
    wanted = FileFilter(states=frozenset(args.state or ()), since=args.since, prefix=prefix, limit=args.limit)
    limits = _load_config(args.config).monitor
    with _reading_ledger(args.config) as ledger:
        if args.visits:
            report.show_visits(ledger, limits, sys.stdout, as_json=args.json, limit=args.limit or 50)
            return EX_OK
        found = report.alert_report(ledger, limits)
        status.show(ledger, sys.stdout, as_json=args.json, wanted=wanted, extra={"alerts": found})
        if not args.json:
            for line in report.alert_lines(found):
                sys.stdout.write(line + "\n")
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

    with _reading_ledger(args.config) as ledger:
        status.retry(ledger, kinds=args.kind, paths=args.paths, out=sys.stdout)
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


_TRANSFER_HELP = (
    "how files get into the datastore (default: %(default)s): auto = link for files outside the repository, "
    "in place for files already inside; link = hard link, else symbolic link; symlink, relsymlink = "
    "absolute or relative symbolic link; hardlink = hard link only; copy = a copy; move = copy or link, then "
    "remove the source once registered; direct = no file placed, the registry records the absolute path"
)
_PATH_HELP = ("a file, a folder (searched recursively for *.fits, *.fit, *.fits.fz) or a quoted glob such as "
              "'raw/2024-10-*/sps/PFSA*.fits'")
_REPO_HELP = "the butler repository: the folder that holds its butler.yaml"
_CONFIG_HELP = ("the TOML configuration whose [state] names the ledger (default: the embedded default, "
                "whose ledger is ./var/state/ledger.sqlite3 under the current folder)")


class _Formatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal; lines indented by two spaces (examples) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line if line.startswith("  ") else super(_Formatter, self)._fill_text(
            line, width, indent) for line in text.splitlines())


def _command(commands: Any, name: str, summary: str, description: str, epilog: str | None = None
             ) -> argparse.ArgumentParser:
    """A sub-command whose --help starts with what it does and ends with an example."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description, epilog=epilog, formatter_class=_Formatter)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfswatchd",
        description="Ingest Subaru PFS raw frames (PFSA, PFSB) and pfsConfig files into a butler repository: "
                    "once by hand (ingest-raws, ingest-pfsconfig) or as a service that watches download "
                    "folders (run). 'pfswatchd COMMAND --help' explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"pfswatchd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = _command(commands, "create", "create a butler repository with the PFS universe",
                      "Create a butler repository with the PFS dimension universe, register the instruments and "
                      "their dataset types (raw, pfsConfig, the calibrations), and make the collections "
                      "<instrument>/raw/sps, <instrument>/raw/pfsConfig and the chain <instrument>/defaults over "
                      "them. Where obs_pfs is importable (the PFS pipeline set up) this is `butler create` with "
                      "obs_pfs's gen3/butler.yaml and gen3/dimensions.yaml plus `butler register-instrument` of its "
                      "Instrument classes; elsewhere the same shape with pfswatchd's own readers (hand it over "
                      "later with `pfswatchd hand-over`). An existing PFS repository is left as it is; one with "
                      "another universe is refused.",
                      "example:\n  pfswatchd create /data/pfs/repo")
    create.add_argument("repo", metavar="REPO", help="the folder of the new repository")
    create.add_argument("--instrument", action="append", metavar="NAME",
                        help="instrument to register, repeatable (default: PFS, PFS-F and PFS-L)")
    create.add_argument("--registry-db", metavar="URL", help="registry database, e.g. "
                        "postgresql+psycopg2://user@host/db (default: SQLite in REPO); a password in the URL "
                        "is used but not stored (other tools read it from ~/.lsst/db-auth.yaml)")
    create.set_defaults(func=_create)

    raws = _command(commands, "ingest-raws", "ingest PFSA/PFSB raw frames (like butler ingest-raws)",
                    "Ingest PFSA (CCD) and PFSB (NIR) raw frames, as 'butler ingest-raws' does with "
                    "PfsRawIngestTask. Every file is examined (headers only) first; bad files get one line each "
                    "on stderr and the rest is ingested. The files of one visit may come in several calls. "
                    "Exit status: 0 all ingested (or already there), 1 some failed, 130 interrupted.",
                    "example:\n  pfswatchd ingest-raws /data/pfs/repo 'raw/2024-10-*/sps' --transfer link")
    raws.add_argument("repo", metavar="REPO", help=_REPO_HELP)
    raws.add_argument("paths", metavar="PATH", nargs="+", help=_PATH_HELP)
    raws.add_argument("--transfer", choices=TRANSFER_MODES, default="auto", metavar="MODE", help=_TRANSFER_HELP)
    raws.add_argument("--fail-fast", action="store_true",
                      help="stop at the first bad file, before anything more is written (default: go on)")
    raws.add_argument("--output-run", metavar="RUN", help="RUN collection of the raws, as in butler ingest-raws "
                      "(default: <instrument>/raw/sps, obs_pfs's default raw RUN)")
    raws.add_argument("--ingest-task", metavar="TASK", help="accepted so that the PFS tutorial's command lines "
                      f"paste as they are: {INGEST_TASKS[0]} is the only value, and pfswatchd always computes "
                      "the visit records, data IDs and dataset ids that task computes (it does not run it; "
                      "default: that task)")
    raws.add_argument("--header-corrections", metavar="DIR", help="folder of header-correction files "
                      "(<instrument>-<visit>.yaml), looked for before $METADATA_CORRECTIONS_PATH and obs_pfs's "
                      "own corrections (used when obs_pfs is importable; default: those two only)")
    raws.set_defaults(func=_ingest_raws)

    configs = _command(commands, "ingest-pfsconfig", "ingest pfsConfig/PFSF files (like ingestPfsConfig.py)",
                       "Ingest pfsConfig files (pfsConfig-0x<design>-<visit>.fits, and the STARS copies "
                       "PFSF<visit><NN>.fits), as ingestPfsConfig.py does. A pfsConfig needs the raws of its "
                       "visit in the repository first: one whose raws are not there yet is reported WAITING, "
                       "remembered in the repository, and ingested by the next ingest-raws or ingest-pfsconfig "
                       "into it once they are. Exit status: 0 all ingested, 1 some failed, 3 some waiting, "
                       "130 interrupted.",
                       "example:\n  pfswatchd ingest-pfsconfig /data/pfs/repo PFS PFS/raw/pfsConfig "
                       "'raw/2024-10-*/pfsConfig'")
    configs.add_argument("repo", metavar="REPO", help=_REPO_HELP)
    configs.add_argument("instrument", metavar="INSTRUMENT",
                         help="instrument name (PFS, PFS-F, PFS-L) or its obs_pfs class, e.g. "
                              "lsst.obs.pfs.PrimeFocusSpectrograph")
    configs.add_argument("run", metavar="RUN", help="RUN collection of the full pfsConfigs, e.g. PFS/raw/pfsConfig "
                         "(a customised PFSF......NN goes to RUN/NN)")
    configs.add_argument("paths", metavar="PATH", nargs="+", help=_PATH_HELP)
    configs.add_argument("--transfer", choices=TRANSFER_MODES, default="auto", metavar="MODE",
                         help=_TRANSFER_HELP)
    configs.add_argument("--fail-fast", action="store_true",
                         help="stop at the first bad file, before anything more is written (default: go on)")
    configs.add_argument("--no-update", action="store_true", help="accepted for compatibility with "
                         "ingestPfsConfig.py, where it keeps existing records; pfswatchd never updates them, so it "
                         "changes nothing (default: off)")
    configs.set_defaults(func=_ingest_pfsconfig)

    handover = _command(commands, "hand-over", "make a repository written without obs_pfs read with obs_pfs's classes",
                        "Run where the PFS pipeline is set up (obs_pfs importable), on a repository pfswatchd made or "
                        "filled without it: register its instruments through obs_pfs's Instrument classes, name "
                        "obs_pfs's formatter in the record of every dataset pfswatchd stored (one transaction), and "
                        "put obs_pfs's storage classes, formatters and file templates in its butler.yaml (the old one "
                        "is kept as butler.yaml.pfswatchd-standalone). Says what it changed; a second run changes "
                        "nothing, and an interrupted one is finished by the next. Refused, changing nothing, where "
                        "obs_pfs is not importable. Stop pfswatchd services writing to the repository first.",
                        "example:\n  setup pfs_pipe2d\n  pfswatchd hand-over /data/pfs/repo")
    handover.add_argument("repo", metavar="REPO", help="the repository")
    handover.add_argument("--update-instrument-records", action="store_true",
                          help="rewrite instrument records that differ from obs_pfs's, as butler register-instrument "
                          "--update does (default: refuse)")
    handover.set_defaults(func=_hand_over)

    imports = _command(commands, "import", "butler import of an export made elsewhere, e.g. the observatory's "
                       "calibrations", "Import a `butler export` (dimension records, collections, calibration "
                       "validity ranges, files) as `butler import` does. One difference: a file whose formatter "
                       "does not import here (obs_pfs's, on a host without the LSST stack) is recorded with the "
                       "formatter this repository configures for its dataset type; `pfswatchd hand-over` names "
                       "obs_pfs's again. Nothing is imported when one has no such stand-in.",
                       "example:\n  pfswatchd import /data/pfs/repo /data/calib-export --transfer copy")
    imports.add_argument("repo", metavar="REPO", help="the repository to import into")
    imports.add_argument("directory", metavar="DIRECTORY", help="the folder the export's file paths are relative to")
    imports.add_argument("--export-file", metavar="FILE", help="the export (default: DIRECTORY/export.yaml)")
    imports.add_argument("--transfer", default="auto", choices=("auto", "link", "symlink", "relsymlink", "hardlink",
                         "copy", "move", "direct", "none"), help="as butler import --transfer (default: auto)")
    imports.add_argument("--skip-dimensions", "-s", action="append", metavar="ELEMENT",
                         help="a dimension element whose records are not imported (repeatable; default: none skipped)")
    imports.set_defaults(func=_import)

    fake = _command(commands, "fake-data", "write realistic synthetic PFS files for trying pfswatchd",
                    "Write complete synthetic visits (PFSA for b and r, PFSB ramps for n, one pfsConfig per "
                    "visit) in the summit layout DIR/raw/<date>/{sps,ramps,pfsConfig}/, with headers as the "
                    "instrument writes them. The visits start at 06:00 UTC on --date, 20 minutes apart.",
                    "example:\n  pfswatchd fake-data /tmp/pfs-sample --visits 3 --date 2024-10-25")
    fake.add_argument("dir", metavar="DIR", help="the folder to write into (created; existing files are replaced)")
    fake.add_argument("--visits", type=int, default=2, metavar="N", help="number of visits (default: %(default)s)")
    fake.add_argument("--first-visit", type=int, default=100, metavar="VISIT",
                      help="the first visit number; the others follow (default: %(default)s)")
    fake.add_argument("--date", type=_date, default="2025-05-01", metavar="YYYY-MM-DD",
                      help="observing date (UTC) of the first visit (default: %(default)s)")
    fake.add_argument("--full-size", action="store_true",
                      help="full-size 4300x4416 CCD and 4096x4096 NIR images (default: small images)")
    fake.add_argument("--pfsf", action="store_true",
                      help="also write the STARS-style PFSF<visit>00/01/02 files (default: no)")
    fake.set_defaults(func=_fake_data)

    run = _command(commands, "run", "run the service: watch folders and ingest files as they complete",
                   "Run the service in the foreground: watch the configured folders, unpack archives, and "
                   "ingest every raw frame and pfsConfig once it is whole. Logs go to stdout (JSON when not a "
                   "terminal). SIGTERM or Ctrl-C finishes the batch in flight and exits 0; SIGHUP reloads the "
                   "configuration. Exit status 78: bad configuration.",
                   "example:\n  pfswatchd run --config config.example.toml")
    run.add_argument("--config", metavar="FILE",
                     help="TOML configuration, see config.example.toml (default: the embedded default: "
                          "folders under ./var/, SQLite registry and ledger)")
    run.set_defaults(func=_run)

    check = _command(commands, "check-config", "validate a configuration file and exit",
                     "Read and validate a configuration file, print the main settings and exit 0; exit 78 with "
                     "a message naming the key when it is wrong.",
                     "example:\n  pfswatchd check-config /etc/pfswatchd/pfswatchd.toml")
    check.add_argument("file", metavar="FILE", help="the TOML configuration to check")
    check.set_defaults(func=_check_config)

    status = _command(commands, "status", "what happened to every file (from the ledger)",
                      "Print the files per state, the oldest pending file, the archives and the recent errors, "
                      "from the ledger the service keeps. Exits 1, creating nothing, when there is no ledger.",
                      "example:\n  pfswatchd status --config config.example.toml --json --state failed")
    status.add_argument("--config", metavar="FILE", help=_CONFIG_HELP)
    status.add_argument("--json", action="store_true", help="print one JSON object: counts, archives, errors "
                        "and the files (last, one per line, streamed) (default: a summary)")
    status.add_argument("--state", action="append", choices=FILE_STATES, metavar="STATE",
                        help=f"list only files in this state, repeatable (default: every state); one of "
                             f"{', '.join(FILE_STATES)}")
    status.add_argument("--since", type=_since, metavar="WHEN", help="list only files changed since WHEN: "
                        "a duration back from now (90s, 30m, 6h, 2d), an ISO 8601 date or time, or Unix seconds "
                        "(default: all)")
    status.add_argument("--limit", type=_count, metavar="N",
                        help="list at most N files, first seen first (default: no limit); with --visits, the N "
                             "newest visits (default 50)")
    status.add_argument("--visits", action="store_true", help="list the visits instead, newest first: each "
                        "camera's state, the pfsConfig, what is missing, the hook (--json: one object; "
                        "default: the files)")
    status.add_argument("--path", metavar="PREFIX", help="list only files whose path starts with PREFIX "
                        "(relative to the current folder unless absolute; default: all)")
    status.set_defaults(func=_status)

    retry = _command(commands, "retry", "queue failed and quarantined files again",
                     "Put failed and quarantined files back in the service's queue (quarantined files are moved "
                     "back first); the running service picks them up.",
                     "example:\n  pfswatchd retry --kind truncated --config config.example.toml")
    retry.add_argument("--config", metavar="FILE", help=_CONFIG_HELP)
    retry.add_argument("--kind", action="append", choices=[kind.value for kind in ErrorKind], metavar="KIND",
                       help="only files that failed with this error kind, repeatable (default: every kind); one "
                            f"of {', '.join(kind.value for kind in ErrorKind)}")
    retry.add_argument("paths", metavar="PATH", nargs="*", help="only these files (default: every failed file)")
    retry.set_defaults(func=_retry)

    unpack = _command(commands, "unpack", "extract an archive safely, once, by hand (as the service does)",
                      "Extract a .tar, .tar.gz/.tgz, .tar.bz2 or .tar.xz archive under the service's safety "
                      "checks and limits, verify its checksum sidecars, and publish it into DEST/<archive "
                      "name>/. A STARS2 bundle is extracted and the command to fetch its data is printed.",
                      "example:\n  pfswatchd unpack ~/Downloads/S2Query.tar /data/pfs/extracted")
    unpack.add_argument("archive", metavar="ARCHIVE", help="the archive file")
    unpack.add_argument("dest", metavar="DEST", help="published into DEST/<archive name>/")
    unpack.add_argument("--config", metavar="FILE",
                        help="take the [archives] limits and file modes from this file (default: the built-in "
                             "limits)")
    unpack.add_argument("--no-verify", action="store_true",
                        help="do not check md5/sha1/sha256/sha512 sidecars (default: check them)")
    unpack.set_defaults(func=_unpack)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        # Every failure of a one-shot command is reported here in one line; the butler's own error
        # log lines ("Failed to instantiate Butler ...") would only repeat it.  The service logs them.
        import logging

        logging.getLogger("lsst").setLevel(logging.CRITICAL)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"pfswatchd: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except UsageError as exc:
        print(f"pfswatchd: {exc}", file=sys.stderr)
        return EX_USAGE
    except (PfsWatchError, RefusedError, OSError) as exc:
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
        lines = str(exc).strip().splitlines()  # SQLAlchemy appends the statement and a link: one line is enough
        print(f"pfswatchd: internal error: {type(exc).__name__}: {lines[0] if lines else ''}", file=sys.stderr)
        return EX_FAILED
