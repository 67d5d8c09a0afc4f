"""Prints one of the README's commands, verbatim, for .ci/run: the first ```bash block after the
paragraph that starts with LEAD ("Set up" or "Run the tests"). Fails, naming what is missing,
when the README lost it.

    python3 .ci/readme_commands.py README.md "Set up"
"""

import re
import sys
from pathlib import Path


def block_after(text: str, lead: str, path: str) -> str:
    match = re.search(rf"^{re.escape(lead)}.*?\n```bash\n(.*?)```", text, re.S | re.M)
    if not match:
        sys.exit(f"{path}: no ```bash block after a paragraph starting with {lead!r}")
    return match.group(1).strip()


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: readme_commands.py README.md LEAD")
    path, lead = sys.argv[1:]
    print(block_after(Path(path).read_text(encoding="utf-8"), lead, path))


if __name__ == "__main__":
    main()
