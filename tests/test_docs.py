"""The README states what the code does: its two set-up commands, every error kind, every test it cites."""

from __future__ import annotations

import re
from pathlib import Path

from pfswatchd.errors import ERROR_HELP, RETRYABLE_KINDS, WARNING_KINDS, ErrorKind

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_error_kind_is_documented_as_the_code_says():
    for kind in ErrorKind:
        how = "retried" if kind in RETRYABLE_KINDS else "warning" if kind in WARNING_KINDS else "permanent"
        row = f"| `{kind.value}` | {how} | {ERROR_HELP[kind]} |"
        assert row in README, kind


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, flags=re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert "pfswatchd run --config config.example.toml" in commands[0]
    assert commands[1] == "scripts/test"
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_every_test_the_guarantees_cite_exists():
    guarantees = README.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", guarantees)
    assert cited
    for path, name in cited:
        source = (ROOT / path).read_text()
        if name:
            assert f"def {name}(" in source, f"{path}::{name}"
    for name in re.findall(r"`(test_\w+)`", guarantees):
        assert any(f"def {name}(" in p.read_text() for p in (ROOT / "tests").rglob("test_*.py")), name


def test_the_command_reference_is_the_real_help_of_every_command():
    """docs/commands.md, linked from the README, is what `pfswatchd COMMAND --help` prints (regenerate it
    with scripts/command-reference)."""
    import commandref
    from pfswatchd.cli import build_parser

    assert "(docs/commands.md)" in README
    [commands] = [a for a in build_parser()._actions if a.dest == "command"]
    assert set(commandref.COMMANDS) == set(commands.choices)
    assert (ROOT / "docs" / "commands.md").read_text() == commandref.reference(), \
        "docs/commands.md is out of date: run scripts/command-reference"
