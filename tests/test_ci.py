"""CI runs the README's set-up and test commands verbatim (.ci/run reads them from the README)."""

import subprocess
import sys

from conftest import REPO

READER = REPO / ".ci" / "readme_commands.py"


def command(readme, lead: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(READER), str(readme), lead], capture_output=True, text=True)


def test_ci_reads_the_readmes_setup_and_test_commands_as_written():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    setup, tests = (command(REPO / "README.md", lead).stdout.strip() for lead in ("Set up", "Run the tests"))
    assert setup.startswith("python -m venv .venv && . .venv/bin/activate") and "pytest" in tests
    assert f"```bash\n{setup}\n```" in text and f"```bash\n{tests}\n```" in text
    ci = (REPO / ".ci" / "run").read_text()
    assert '"Set up"' in ci and '"Run the tests"' in ci


def test_a_readme_without_the_commands_is_named(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# A project\n\nSet up: see the wiki.\n")
    proc = command(readme, "Set up")
    assert proc.returncode != 0
    assert f"{readme}: no ```bash block after a paragraph starting with 'Set up'" in proc.stderr
