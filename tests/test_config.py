"""Configuration: defaults, validation messages, and config.example.toml kept in step with the code."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from pfswatchd import config
from pfswatchd.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"


def test_example_documents_every_key_with_its_default():
    """Parsing config.example.toml gives exactly the embedded default (paths relative to the file)."""
    parsed = config.load(EXAMPLE)
    default = config.default(ROOT)
    assert replace(parsed, source=None, state=replace(parsed.state, instance="x")) == replace(
        default, state=replace(default.state, instance="x"))


def test_example_names_every_section_and_key_the_code_reads():
    text = EXAMPLE.read_text()
    data = tomllib.loads(text)
    assert set(data) == set(config.SECTIONS)
    required = {
        "repository": {"root", "create"},
        "watch": {"paths", "recursive"},
        "ingest": {"transfer", "raw_run", "pfsconfig_run", "fail_fast"},
        "state": {"url"},
        "quarantine": {"policy", "path"},
        "log": {"format", "level"},
        "archives": {"extract_to", "after", "done_path", "max_members", "max_total_bytes", "max_ratio"},
    }
    for section, keys in required.items():
        assert keys <= set(data[section]), section
    assert {"run_unpack", "network", "timeout"} <= set(data["archives"]["stars"])
    assert "examine_workers" in text  # documented (commented: its default depends on the machine)


def test_relative_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "p.toml"
    path.write_text('[repository]\nroot = "../data/repo"\n[watch]\npaths = ["/abs/in", "rel"]\n')
    cfg = config.load(path)
    assert cfg.repository.root == tmp_path / "etc" / "../data/repo"
    assert cfg.watch.paths == (Path("/abs/in"), tmp_path / "etc" / "rel")
    assert cfg.state.url == f"sqlite:///{tmp_path / 'etc' / 'var/state' / 'ledger.sqlite3'}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[watch]\npats = []\n", "watch.pats: unknown key"),
        ("[wach]\n", "[wach]: unknown section"),
        ("[watch]\npaths = \"incoming\"\n", "watch.paths = 'incoming': expected a list of paths"),
        ("[watch]\npaths = []\n", "expected a non-empty list"),
        ("[ingest]\ntransfer = \"rsync\"\n", "ingest.transfer = 'rsync': expected one of auto, link"),
        ("[ingest]\nfail_fast = \"yes\"\n", "ingest.fail_fast = 'yes': expected true or false"),
        ("[ingest]\nbatch_size = 0\n", "ingest.batch_size = 0: expected an integer >= 1"),
        ("[watch]\nsettle_seconds = -1\n", "watch.settle_seconds = -1.0: expected a number >= 0.0"),
        ("[quarantine]\npolicy = \"delete\"\n", "quarantine.policy = 'delete': expected one of move, leave"),
        ("[state]\nurl = \"mysql://u:secret@h/db\"\n", "state.url = 'mysql://u:***@h/db'"),
        ("[state]\nurl = \"postgresql://h/db\"\n", "use postgresql+psycopg2://"),
        ("[archives]\nafter = \"burn\"\n", "archives.after = 'burn': expected one of keep, delete, move"),
        ("[archives.stars]\nrun_unpack = 1\n", "archives.stars.run_unpack = 1: expected true or false"),
        ("[service]\nfile_mode = \"rw\"\n", "service.file_mode = 'rw': expected an octal mode"),
        ("[log]\nlevel = \"loud\"\n", "log.level = 'loud': expected one of debug"),
        ("[watch]\npaths = [\"data\"]\n[repository]\nroot = \"data/repo\"\n",
         "repository.root = "),
        ("this is not toml", "not valid TOML"),
        ("[monitor.hook]\ncommand = [\"/bin/ql\", \"{exposure}\"]\n",
         "monitor.hook.command argument '{exposure}': 'exposure' is not a field; expected only {instrument}, {visit}"),
        ("[monitor.hook]\ncommand = \"/bin/ql {visit}\"\n",
         "monitor.hook.command = '/bin/ql {visit}': expected a list"),
        ("[monitor]\ndefault_cameras = [\"b5\"]\n", "monitor.default_cameras = ['b5']: expected a non-empty list"),
        ("[monitor.http]\nport = 70000\n", "monitor.http.port = 70000: expected a port number"),
        ("[monitor.http]\nenabled = \"yes\"\n", "monitor.http.enabled = 'yes': expected true or false"),
    ],
)
def test_bad_configuration_names_the_key_and_why(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        config.load(path)
    assert message in str(error.value)
    assert "secret" not in str(error.value)


def test_check_config_command(tmp_path):
    good = subprocess.run([str(Path(sys.executable).parent / "pfswatchd"), "check-config", str(EXAMPLE)],
                          capture_output=True, text=True)
    assert good.returncode == 0 and "OK" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[ingest]\ntransfer = \"rsync\"\n")
    result = subprocess.run([str(Path(sys.executable).parent / "pfswatchd"), "check-config", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 78
    assert result.stderr.strip().startswith("pfswatchd: configuration error: ingest.transfer = 'rsync'")
    run = subprocess.run([str(Path(sys.executable).parent / "pfswatchd"), "run", "--config", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 78 and "Traceback" not in run.stderr


def test_password_never_printed(tmp_path):
    path = tmp_path / "pg.toml"
    path.write_text('[state]\nurl = "postgresql+psycopg2://pfs:hunter2@db.example/ledger"\n')
    result = subprocess.run([str(Path(sys.executable).parent / "pfswatchd"), "check-config", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert "hunter2" not in result.stdout and "pfs:***@db.example" in result.stdout


def test_passwords_are_redacted_inside_messages():
    """SQLAlchemy takes a password with '/' or ':' as written; every URL in a message loses its password."""
    from pfswatchd.logconfig import redact

    message = ("could not connect to 'postgresql+psycopg2://pfs:se/cr:et@db.example:5432/ledger' "
               "nor postgresql://ops:p@ss@db2/ledger (sqlite:////var/pfs/ledger.sqlite3 is fine)")
    assert redact(message) == ("could not connect to 'postgresql+psycopg2://pfs:***@db.example:5432/ledger' "
                               "nor postgresql://ops:***@db2/ledger (sqlite:////var/pfs/ledger.sqlite3 is fine)")
