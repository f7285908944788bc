"""docs/commands.md, the command reference: the real ``--help`` of pfswatchd and every sub-command.

``scripts/command-reference`` writes it with this module; tests/test_docs.py compares it with what the
installed command prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "pfswatchd"
COMMANDS = ("create", "ingest-raws", "ingest-pfsconfig", "import", "hand-over", "fake-data", "run", "check-config",
            "status", "retry", "unpack")
WIDTH = "100"


def help_text(*command: str) -> str:
    """What ``pfswatchd COMMAND --help`` prints on a 100-column terminal."""
    result = subprocess.run([str(BIN), *command, "--help"], capture_output=True, text=True, check=True,
                            env={**os.environ, "COLUMNS": WIDTH}, timeout=120)
    return result.stdout.rstrip() + "\n"


def reference() -> str:
    parts = ["# pfswatchd command reference\n",
             "The `--help` of every command, as `pfswatchd` prints it (written by `scripts/command-reference`;\n"
             "`tests/test_docs.py` checks that it matches the installed command).\n",
             "## pfswatchd\n", "```text\n" + help_text() + "```\n"]
    for command in COMMANDS:
        parts += [f"## pfswatchd {command}\n", "```text\n" + help_text(command) + "```\n"]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(reference())
