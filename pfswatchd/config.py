"""Configuration: one TOML file, validated once into frozen values.

Every key, its default and its meaning is documented in config.example.toml;
keep the two in step (tests/test_config.py checks that they are).  Relative
paths are relative to the folder of the configuration file.  An unknown key,
a value of the wrong type or an impossible value raises ConfigError naming the
key and why.
"""

from __future__ import annotations

import grp
import os
import socket
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfswatchd.butler.transfer import TRANSFER_MODES, inside
from pfswatchd.errors import ConfigError
from pfswatchd.files.cameras import is_camera
from pfswatchd.logconfig import redact
from pfswatchd.permissions import Permissions

if TYPE_CHECKING:
    from pfswatchd.archives.unpack import UnpackLimits

redact_url = redact  # public: cli and daemon print state.url through it

# The defaults live in parse() (documented in config.example.toml), not in these classes.

@dataclass(frozen=True, slots=True)
class RepositoryConfig:
    root: Path
    create: bool
    instruments: tuple[str, ...]
    registry_db: str  # "" = SQLite in root


@dataclass(frozen=True, slots=True)
class WatchConfig:
    paths: tuple[Path, ...]
    recursive: bool
    mode: str  # native (inotify) | polling (NFS, CIFS)
    poll_interval: float
    rescan_interval: float
    settle_seconds: float
    truncated_after: float
    max_depth: int  # folders more than this many levels below a watched folder are recorded, not entered


@dataclass(frozen=True, slots=True)
class IngestConfig:
    transfer: str
    raw_run: str
    pfsconfig_run: str
    fail_fast: bool
    batch_size: int
    retry_initial: float
    retry_max: float
    waiting_recheck: float
    examine_workers: int
    max_attempts: int
    header_corrections: tuple[Path, ...]  # folders of correction YAML files; () = none configured

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait before the next try after ``attempts`` tries: doubling, at most retry_max."""
        return float(min(self.retry_max, self.retry_initial * 2 ** (attempts - 1)))


@dataclass(frozen=True, slots=True)
class StateConfig:
    path: Path
    url: str
    instance: str
    claim_timeout: float


@dataclass(frozen=True, slots=True)
class QuarantineConfig:
    policy: str  # move | leave
    path: Path


@dataclass(frozen=True, slots=True)
class LogConfig:
    format: str  # auto | json | console
    level: str


@dataclass(frozen=True, slots=True)
class StarsConfig:
    run_unpack: bool
    network: str
    timeout: float


@dataclass(frozen=True, slots=True)
class ArchivesConfig:
    extract_to: Path
    after: str  # keep | delete | move
    done_path: Path
    max_members: int
    max_total_bytes: int
    max_ratio: float
    max_depth: int
    verify_checksums: bool
    stars: StarsConfig

    @property
    def limits(self) -> UnpackLimits:
        from pfswatchd.archives.unpack import UnpackLimits  # here: status and retry need no extraction code

        return UnpackLimits(max_members=self.max_members, max_total_bytes=self.max_total_bytes,
                            max_ratio=self.max_ratio, max_depth=self.max_depth)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    file_mode: int
    dir_mode: int
    group: str
    gid: int | None  # resolved from group at load time

    @property
    def permissions(self) -> Permissions:
        return Permissions(self.file_mode, self.dir_mode, self.gid)


@dataclass(frozen=True, slots=True)
class HookConfig:
    command: tuple[str, ...]  # () = no hook; arguments may hold {instrument} and {visit}
    timeout: float
    parallel: int


@dataclass(frozen=True, slots=True)
class HttpConfig:
    enabled: bool
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    interval: float
    default_cameras: tuple[str, ...]
    visit_incomplete_after: float  # alerts: seconds; 0 = off
    waiting_after: float
    pending_after: float
    archive_stuck_after: float
    page_visits: int
    hook: HookConfig
    http: HttpConfig


@dataclass(frozen=True, slots=True)
class Config:
    source: Path | None
    repository: RepositoryConfig
    watch: WatchConfig
    ingest: IngestConfig
    state: StateConfig
    quarantine: QuarantineConfig
    log: LogConfig
    archives: ArchivesConfig
    service: ServiceConfig
    monitor: MonitorConfig

    @property
    def watch_roots(self) -> tuple[Path, ...]:
        """The folders the service watches: watch.paths, plus archives.extract_to (extracted files flow
        into ingest from there) unless it already lies inside one of them."""
        extract_to = self.archives.extract_to
        if any(inside(extract_to, root) for root in self.watch.paths):
            return self.watch.paths
        return (*self.watch.paths, extract_to)


class _Section:
    """Typed reads from one TOML table; remembers which keys were used."""

    def __init__(self, name: str, table: Any, base: Path) -> None:
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{name}] must be a table, got {type(table).__name__}")
        self.name = name
        self.table = table
        self.base = base
        self.used: set[str] = set()

    def _get(self, key: str, default: Any, kinds: tuple[type, ...], what: str) -> Any:
        self.used.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) and bool not in kinds:
            raise ConfigError(f"{self.name}.{key} = {value!r}: expected {what}")
        if not isinstance(value, kinds):
            raise ConfigError(f"{self.name}.{key} = {value!r}: expected {what}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return bool(self._get(key, default, (bool,), "true or false"))

    def string(self, key: str, default: str, choices: tuple[str, ...] | None = None) -> str:
        value = str(self._get(key, default, (str,), "a string"))
        if choices is not None and value not in choices:
            raise ConfigError(f"{self.name}.{key} = {value!r}: expected one of {', '.join(choices)}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = float(self._get(key, default, (int, float), "a number"))
        if value < minimum:
            raise ConfigError(f"{self.name}.{key} = {value!r}: expected a number >= {minimum}")
        return value

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        value = int(self._get(key, default, (int,), "an integer"))
        if value < minimum:
            raise ConfigError(f"{self.name}.{key} = {value!r}: expected an integer >= {minimum}")
        return value

    def path(self, key: str, default: str | Path) -> Path:
        value = self._get(key, str(default), (str,), "a path (string)")
        if not value:
            raise ConfigError(f"{self.name}.{key} is empty: expected a path")
        return _resolve(self.base, value)

    def paths(self, key: str, default: list[str]) -> tuple[Path, ...]:
        value = self._get(key, default, (list,), "a list of paths")
        if not value or not all(isinstance(item, str) and item for item in value):
            raise ConfigError(f"{self.name}.{key} = {value!r}: expected a non-empty list of paths")
        return tuple(_resolve(self.base, item) for item in value)

    def section(self, key: str) -> _Section:
        self.used.add(key)
        return _Section(f"{self.name}.{key}", self.table.get(key, {}), self.base)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise ConfigError(f"{self.name}.{unknown[0]}: unknown key (known: {', '.join(sorted(self.used))})")


def default_examine_workers() -> int:
    """One worker per spare core, at most four (header reads are short)."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path)


SECTIONS = ("repository", "watch", "ingest", "state", "quarantine", "log", "archives", "service", "monitor")
HOOK_FIELDS = ("instrument", "visit")  # what a hook argument may name in braces


def load(path: str | Path) -> Config:
    """Read and validate a configuration file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, base=path.resolve().parent, source=path)


def default(base: str | Path = ".") -> Config:
    """The embedded default: local folders under ``base`` and a SQLite ledger."""
    return parse({}, base=Path(base).resolve(), source=None)


def parse(data: Mapping[str, Any], *, base: Path, source: Path | None) -> Config:
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"[{unknown[0]}]: unknown section (known: {', '.join(SECTIONS)})")
    sections = {name: _Section(name, data.get(name, {}), base) for name in SECTIONS}

    s = sections["repository"]
    instruments = s._get("instruments", ["PFS", "PFS-F", "PFS-L"], (list,), "a list of instrument names")
    registry_db = s.string("registry_db", "")
    if registry_db and not registry_db.startswith(("sqlite://", "postgresql+psycopg2://")):
        raise ConfigError(f"repository.registry_db = {redact_url(registry_db)!r}: expected a "
                          "postgresql+psycopg2:// URL (or \"\" for SQLite in the repository)")
    repository = RepositoryConfig(
        root=s.path("root", "var/repo"), create=s.boolean("create", True), instruments=tuple(instruments),
        registry_db=registry_db,
    )

    s = sections["watch"]
    watch = WatchConfig(
        paths=s.paths("paths", ["var/incoming"]),
        recursive=s.boolean("recursive", True),
        mode=s.string("mode", "native", ("native", "polling")),
        poll_interval=s.number("poll_interval", 2.0, 0.05),
        rescan_interval=s.number("rescan_interval", 300.0, 1.0),
        settle_seconds=s.number("settle_seconds", 2.0, 0.0),
        truncated_after=s.number("truncated_after", 600.0, 1.0),
        max_depth=s.integer("max_depth", 64, 1),
    )

    s = sections["ingest"]
    ingest = IngestConfig(
        transfer=s.string("transfer", "link", TRANSFER_MODES),
        raw_run=s.string("raw_run", ""),
        pfsconfig_run=s.string("pfsconfig_run", ""),
        fail_fast=s.boolean("fail_fast", False),
        batch_size=s.integer("batch_size", 1000, 1),
        retry_initial=s.number("retry_initial", 2.0, 0.01),
        retry_max=s.number("retry_max", 600.0, 0.01),
        waiting_recheck=s.number("waiting_recheck", 30.0, 0.1),
        examine_workers=s.integer("examine_workers", default_examine_workers(), 0),
        max_attempts=s.integer("max_attempts", 10, 1),
        header_corrections=_optional_folder(s, "header_corrections"),
    )

    s = sections["state"]
    state_path = s.path("path", "var/state")
    url = s.string("url", "") or f"sqlite:///{state_path / 'ledger.sqlite3'}"
    if not url.startswith(("sqlite://", "postgresql")):
        raise ConfigError(f"state.url = {redact_url(url)!r}: expected a sqlite:/// or postgresql+psycopg2:// URL")
    if url.startswith("postgresql://"):
        raise ConfigError("state.url: use postgresql+psycopg2:// (plain postgresql:// needs another driver)")
    state = StateConfig(
        path=state_path,
        url=url,
        instance=s.string("instance", "") or f"{socket.gethostname()}:{os.getpid()}",
        claim_timeout=s.number("claim_timeout", 300.0, 1.0),
    )

    s = sections["quarantine"]
    quarantine = QuarantineConfig(
        policy=s.string("policy", "move", ("move", "leave")), path=s.path("path", "var/quarantine")
    )

    s = sections["log"]
    log = LogConfig(
        format=s.string("format", "auto", ("auto", "json", "console")),
        level=s.string("level", "info", ("debug", "info", "warning", "error")),
    )

    s = sections["archives"]
    stars_section = s.section("stars")
    stars = StarsConfig(
        run_unpack=stars_section.boolean("run_unpack", False),
        network=stars_section.string("network", "1"),
        timeout=stars_section.number("timeout", 3600.0, 1.0),
    )
    archives = ArchivesConfig(
        extract_to=s.path("extract_to", "var/extracted"),
        after=s.string("after", "keep", ("keep", "delete", "move")),
        done_path=s.path("done_path", "var/done"),
        max_members=s.integer("max_members", 100_000, 1),
        max_total_bytes=s.integer("max_total_bytes", 200 * 2**30, 1),
        max_ratio=s.number("max_ratio", 200.0, 1.0),
        max_depth=s.integer("max_depth", 3, 0),
        verify_checksums=s.boolean("verify_checksums", True),
        stars=stars,
    )
    stars_section.finish()

    s = sections["service"]
    group = s.string("group", "")
    service = ServiceConfig(
        file_mode=_mode(s, "file_mode", "0644"),
        dir_mode=_mode(s, "dir_mode", "0755"),
        group=group,
        gid=_gid(group),
    )
    monitor = _monitor(sections["monitor"])
    for section in sections.values():
        section.finish()
    _check_folders(repository, watch, state, quarantine, archives)
    return Config(source, repository, watch, ingest, state, quarantine, log, archives, service, monitor)


def _monitor(s: _Section) -> MonitorConfig:
    cameras = s._get("default_cameras", [f"{arm}{sm}" for sm in (1, 2, 3, 4) for arm in "brn"], (list,),
                     "a list of cameras such as \"b1\"")
    bad = [c for c in cameras if not (isinstance(c, str) and is_camera(c))]
    if bad or not cameras:
        raise ConfigError(f"monitor.default_cameras = {cameras!r}: expected a non-empty list of cameras, an arm "
                          "b, r, n or m and a spectrograph 1-4 (e.g. \"b1\", \"n4\")")
    hook_section, http_section = s.section("hook"), s.section("http")
    command = hook_section._get("command", [], (list,), "a list of strings (the program and its arguments)")
    if not all(isinstance(arg, str) and arg for arg in command):
        raise ConfigError(f"monitor.hook.command = {command!r}: expected a list of non-empty strings")
    for arg in command:
        try:
            arg.format_map({name: "" for name in HOOK_FIELDS})
        except (KeyError, ValueError, IndexError) as exc:
            raise ConfigError(f"monitor.hook.command argument {arg!r}: {exc!s} is not a field; expected only "
                              f"{', '.join('{' + f + '}' for f in HOOK_FIELDS)} in braces") from None
    hook = HookConfig(command=tuple(command), timeout=hook_section.number("timeout", 600.0, 1.0),
                      parallel=hook_section.integer("parallel", 2, 1))
    http = HttpConfig(enabled=http_section.boolean("enabled", False),
                      address=http_section.string("address", "127.0.0.1"),
                      port=http_section.integer("port", 9187, 0))
    if http.port > 65535:
        raise ConfigError(f"monitor.http.port = {http.port}: expected a port number 0-65535")
    hook_section.finish()
    http_section.finish()
    return MonitorConfig(
        interval=s.number("interval", 5.0, 0.1),
        default_cameras=tuple(cameras),
        visit_incomplete_after=s.number("visit_incomplete_after", 1800.0, 0.0),
        waiting_after=s.number("waiting_after", 900.0, 0.0),
        pending_after=s.number("pending_after", 900.0, 0.0),
        archive_stuck_after=s.number("archive_stuck_after", 3600.0, 0.0),
        page_visits=s.integer("page_visits", 40, 1),
        hook=hook,
        http=http,
    )


def folder_problem(path: Path) -> str | None:
    """Why ``path`` can never be a folder (it is a file, or lies under one), or None when it is a folder
    or ``mkdir -p`` could make one.  Only what is certain is said: a parent that cannot be read or
    written is left to the moment the service creates the folder."""
    probe = path
    while True:
        try:
            mode = probe.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            if os.path.lexists(probe) and probe.is_symlink():
                return f"{probe} is a symbolic link to nothing" if probe != path else \
                    "it is a symbolic link to nothing"
            if probe.parent == probe:
                return None
            probe = probe.parent
            continue
        except OSError:
            return None
        if stat.S_ISDIR(mode):
            return None
        what = "a regular file" if stat.S_ISREG(mode) else "not a folder"
        return f"it is {what}" if probe == path else f"it lies under {probe}, which is {what}"


def _check_folders(repository: RepositoryConfig, watch: WatchConfig, state: StateConfig,
                   quarantine: QuarantineConfig, archives: ArchivesConfig) -> None:
    """pfswatchd's own folders must not be inside a watched folder, or it would ingest its own output;
    every folder it watches or writes must be a folder, or a path where ``run`` can make one."""
    own = {"repository.root": repository.root, "state.path": state.path, "quarantine.path": quarantine.path,
           "archives.done_path": archives.done_path}
    folders = [*(("watch.paths entry", root) for root in watch.paths), *own.items(),
               ("archives.extract_to", archives.extract_to)]
    for key, folder in folders:
        problem = folder_problem(folder)
        if problem is not None:
            raise ConfigError(f"{key} {folder}: {problem}: expected a folder, or a path where one can be "
                              "created")
    for key, folder in own.items():
        if inside(archives.extract_to, folder) or inside(folder, archives.extract_to):
            raise ConfigError(f"archives.extract_to = {archives.extract_to} overlaps {key} = {folder}: expected "
                              "separate folders")
    for root in watch.paths:
        for key, folder in own.items():
            if inside(folder, root):
                raise ConfigError(f"{key} = {folder} is inside the watched folder {root}: expected it outside "
                                  "(pfswatchd would watch its own output)")
            if inside(root, folder):
                raise ConfigError(f"watch.paths entry {root} is inside {key} = {folder}: expected it outside")


def _optional_folder(section: _Section, key: str) -> tuple[Path, ...]:
    """A folder, or none for "" (the default)."""
    value = section.string(key, "")
    return (_resolve(section.base, value),) if value else ()


def _gid(group: str) -> int | None:
    if not group:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise ConfigError(f"service.group = {group!r}: no such group on this host") from None


def _mode(section: _Section, key: str, default: str) -> int:
    text = section.string(key, default)
    try:
        value = int(text, 8)
    except ValueError:
        raise ConfigError(f"{section.name}.{key} = {text!r}: expected an octal mode such as '0644'") from None
    if not 0 <= value <= 0o7777:
        raise ConfigError(f"{section.name}.{key} = {text!r}: expected an octal mode such as '0644'")
    return value

