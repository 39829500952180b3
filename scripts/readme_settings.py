"""Write the settings table of ``tap-segments --about --format=markdown`` into README.md.

python scripts/readme_settings.py          # update README.md in place
python scripts/readme_settings.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table() -> str:
    about = subprocess.run(
        [sys.executable, "-m", "tap_segments", "--about", "--format=markdown"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"^\| Setting .*?(?=\n\n|\Z)", about, flags=re.S | re.M)
    if not match:
        raise SystemExit("no settings table in --about output")
    return match.group(0).strip()


def render(readme: str, table: str) -> str:
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{table}\n{END}{after}"


def main() -> int:
    readme = README.read_text()
    updated = render(readme, settings_table())
    if "--check" in sys.argv:
        return 0 if updated == readme else 1
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
