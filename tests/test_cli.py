"""The one-shot commands, run as a user runs them: real subprocesses, real `butler` CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_config, write_raw
from pfswatchd.fakedata import make_visits

BIN = Path(sys.executable).parent


def run(*args, check=True, cwd=None):
    result = subprocess.run([str(BIN / args[0]), *map(str, args[1:])], capture_output=True, text=True, cwd=cwd,
                            timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    if args[0] == "pfswatchd":
        assert "Traceback" not in result.stderr, result.stderr
    return result


def test_create_ingest_and_query_with_the_real_butler(tmp_path):
    """`pfswatchd ingest-raws` fills a repository that `butler query-datasets` lists with the expected ids."""
    repo, data = tmp_path / "repo", tmp_path / "data"
    run("pfswatchd", "create", repo)
    paths = make_visits(data, visits=2, first_visit=123456, spectrographs=(1,), arms=("b", "r", "n"))
    result = run("pfswatchd", "ingest-raws", repo, data / "raw", "--transfer", "link")
    assert "6 ingested" in result.stdout and "0 failed" in result.stdout
    result = run("pfswatchd", "ingest-pfsconfig", repo, "PFS", "PFS/raw/pfsConfig",
                 str(data / "raw" / "*" / "pfsConfig" / "pfsConfig-*.fits"))
    assert "2 ingested" in result.stdout
    listing = run("butler", "query-datasets", repo, "raw", "--collections", "PFS/raw/sps").stdout
    header = listing.strip().splitlines()[0].split()
    assert header == ["type", "run", "id", "instrument", "arm", "spectrograph", "visit", "dither", "pfs_design_id"]
    rows = [line.split() for line in listing.strip().splitlines()[2:]]
    assert len(rows) == 6
    row = next(r for r in rows if r[4:7] == ["b", "1", "123456"])
    assert row[:4] == ["raw", "PFS/raw/sps", "60b3a6bf-e07f-508e-8a44-d72f99c2ae38", "PFS"]
    configs = run("butler", "query-datasets", repo, "pfsConfig", "--collections", "PFS/defaults").stdout
    assert "0c4d42ab-4422-5d49-a7a8-751782d3fde0" in configs
    assert len(paths) == 8


def test_output_run_and_glob(tmp_path):
    """--output-run as in the official tool: the RUN of the raws, whose ids then equal that RUN's vectors."""
    repo, data = tmp_path / "repo", tmp_path / "data"
    run("pfswatchd", "create", repo)
    write_raw(data, visit=123456, arm="b", spectrograph=1)
    write_raw(data, visit=123457, arm="b", spectrograph=1)
    write_raw(data, visit=123456, arm="r", spectrograph=1)
    run("pfswatchd", "ingest-raws", repo, str(data / "PFSA*1.fits"), "--output-run", "PFS/raw/all",
        "--ingest-task", "lsst.obs.pfs.gen3.PfsRawIngestTask")
    listing = run("butler", "query-datasets", repo, "raw", "--collections", "PFS/raw/all").stdout
    assert "f2ce997f-110d-5a7b-885e-2f7fb47ee345" in listing and "5d0d5f18-b1ab-53be-b387-a103bc3a1c50" in listing
    assert len(listing.strip().splitlines()) == 4  # the glob took the two b frames, not the r one


def test_bad_files_get_one_line_and_a_nonzero_status(tmp_path):
    repo, data = tmp_path / "repo", tmp_path / "data"
    run("pfswatchd", "create", repo)
    good = write_raw(data, visit=100, arm="b")
    mismatch = write_raw(data, visit=101, arm="b", extra_cards={"W_VISIT": 999})
    missing = write_raw(data, visit=102, arm="b", drop_cards=["W_PFDSGN"])
    truncated = write_raw(data, visit=103, arm="b")
    truncated.write_bytes(truncated.read_bytes()[:5000])
    result = run("pfswatchd", "ingest-raws", repo, data, check=False)
    assert result.returncode == 1
    failures = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failures) == 3
    assert any(mismatch.name in f and "[name_mismatch]" in f and "W_VISIT 999" in f for f in failures)
    assert any(missing.name in f and "[bad_header]" in f and "W_PFDSGN" in f for f in failures)
    assert any(truncated.name in f and "[truncated]" in f and "ends at byte 5000" in f for f in failures)
    assert "1 ingested" in result.stdout and "3 failed" in result.stdout
    assert good.exists()


def test_fail_fast_stops_before_anything_more_is_written(tmp_path):
    repo, data = tmp_path / "repo", tmp_path / "data"
    run("pfswatchd", "create", repo)
    write_raw(data / "a", visit=100, arm="b", extra_cards={"W_VISIT": 5})  # sorted first: bad
    write_raw(data / "b", visit=101, arm="b")
    result = run("pfswatchd", "ingest-raws", repo, data, "--fail-fast", check=False)
    assert result.returncode == 1 and "0 ingested" in result.stdout
    listing = run("butler", "query-datasets", repo, "raw", "--collections", "PFS/raw/sps", check=False)
    assert "101" not in listing.stdout and "No datasets of type 'raw'" in listing.stderr
    result = run("pfswatchd", "ingest-raws", repo, data, check=False)
    assert "1 ingested" in result.stdout and result.returncode == 1


def test_create_refuses_a_repository_without_the_pfs_universe(tmp_path):
    repo = tmp_path / "lsst"
    run("butler", "create", repo)
    before = {p: p.stat().st_mtime_ns for p in repo.rglob("*")}
    result = run("pfswatchd", "create", repo, check=False)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "dimension universe is 'daf_butler'" in line and "expected the PFS universe" in line
    assert {p: p.stat().st_mtime_ns for p in repo.rglob("*")} == before
    result = run("pfswatchd", "ingest-raws", repo, tmp_path, check=False)
    assert result.returncode == 1 and "expected the PFS universe" in result.stderr


def test_missing_path_is_a_clear_error(tmp_path):
    repo = tmp_path / "repo"
    run("pfswatchd", "create", repo)
    result = run("pfswatchd", "ingest-raws", repo, tmp_path / "nope", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"pfswatchd: {tmp_path / 'nope'}: no such file or directory"


def test_ingest_pfsconfig_accepts_an_instrument_class(tmp_path):
    repo, data = tmp_path / "repo", tmp_path / "data"
    run("pfswatchd", "create", repo)
    write_raw(data, visit=55, site="F")
    write_config(data, visit=55)
    run("pfswatchd", "ingest-raws", repo, data)
    result = run("pfswatchd", "ingest-pfsconfig", repo, "lsst.obs.pfs.PfsSimulator", "PFS-F/raw/pfsConfig", data,
                 "--transfer", "copy")
    assert "1 ingested" in result.stdout
    listing = run("butler", "query-datasets", repo, "pfsConfig", "--collections", "PFS-F/defaults").stdout
    assert re.search(r"PFS-F/raw/pfsConfig\s+\S+\s+PFS-F\s+55", listing)


def test_fake_data_writes_the_summit_layout(tmp_path):
    result = run("pfswatchd", "fake-data", tmp_path / "d", "--visits", "3", "--pfsf")
    files = sorted(p.relative_to(tmp_path / "d") for p in (tmp_path / "d").rglob("*.fits"))
    assert "wrote" in result.stdout
    assert {p.parts[2] for p in files} == {"sps", "ramps", "pfsConfig"}
    assert all(p.parts[0] == "raw" and re.fullmatch(r"\d{4}-\d\d-\d\d", p.parts[1]) for p in files)
    assert sum(p.name.startswith("PFSF") for p in files) == 9


@pytest.mark.parametrize("command", [["--version"], ["ingest-raws", "--help"], ["ingest-pfsconfig", "--help"]])
def test_help(command):
    result = run("pfswatchd", *command)
    assert result.stdout


def test_status_without_a_ledger_says_where_it_looked_and_creates_nothing(tmp_path):
    result = run("pfswatchd", "status", check=False, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"pfswatchd: no ledger at {tmp_path / 'var' / 'state' / 'ledger.sqlite3'} ")
    assert "embedded default configuration" in line
    config = write_config_file(tmp_path, "[state]\npath = \"elsewhere\"\n")
    result = run("pfswatchd", "status", "--json", "--config", config, check=False, cwd=tmp_path)
    assert result.returncode == 1 and str(tmp_path / "elsewhere" / "ledger.sqlite3") in result.stderr
    result = run("pfswatchd", "retry", "--config", config, check=False, cwd=tmp_path)
    assert result.returncode == 1 and "no ledger at" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pfswatchd.toml"]  # nothing created


def write_config_file(folder: Path, text: str) -> Path:
    path = folder / "pfswatchd.toml"
    path.write_text(text)
    return path


def test_retry_with_an_unknown_kind_names_the_known_ones(tmp_path):
    result = run("pfswatchd", "retry", "--kind", "not_fit", check=False, cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid choice: 'not_fit'" in result.stderr and "'not_fits'" in result.stderr
    assert "'permission_denied'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _subcommands():
    from pfswatchd.cli import build_parser

    parser = build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    return commands.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_command_and_option_explains_itself(name):
    """Every sub-command has a description; every argument says what it is; every option its default."""
    parser = _subcommands()[name]
    assert parser.description and len(parser.description) > 60, name
    assert parser.epilog and "example:" in parser.epilog, name
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.help, (name, action.dest)
        if action.option_strings and action.dest != "version":
            assert "default" in action.help, (name, action.option_strings)
    if name in ("status", "retry"):
        config = next(a for a in parser._actions if a.dest == "config")
        assert "./var/state/ledger.sqlite3" in config.help
    if name in ("ingest-raws", "ingest-pfsconfig"):
        transfer = next(a for a in parser._actions if a.dest == "transfer")
        assert all(f"{mode} = " in transfer.help or f"{mode}, " in transfer.help for mode in transfer.choices)
    if name == "retry":
        kind = next(a for a in parser._actions if a.dest == "kind")
        assert "not_fits" in kind.help and "concurrent_write" in kind.help


def test_fake_data_date(tmp_path):
    run("pfswatchd", "fake-data", tmp_path / "d", "--visits", "2", "--date", "2024-10-25")
    files = sorted((tmp_path / "d").rglob("*.fits"))
    assert files and {p.relative_to(tmp_path / "d").parts[1] for p in files} == {"2024-10-25"}
    from astropy.io import fits

    raw = next(p for p in files if p.name.startswith("PFSA"))
    assert fits.getheader(raw)["DATE-OBS"].startswith("2024-10-25")
    result = run("pfswatchd", "fake-data", tmp_path / "e", "--date", "25/10/2024", check=False)
    assert result.returncode == 2 and "expected a date as YYYY-MM-DD" in result.stderr


def test_package_metadata_has_an_spdx_license_expression():
    """PEP 639: `license = "BSD-3-Clause"` gives License-Expression (the table form is deprecated)."""
    from importlib.metadata import metadata

    info = metadata("pfswatchd")
    assert info["License-Expression"] == "BSD-3-Clause" and info.get("License") is None
