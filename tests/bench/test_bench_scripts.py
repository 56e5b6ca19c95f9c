"""Every benchmark the docs name still starts: each bench/ script answers ``--help`` (which
imports everything it uses), and every ``bench/NAME.py`` the README and docs mention exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py")
                 if '__name__ == "__main__"' in p.read_text())
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_bench_script_answers_help(script: Path) -> None:
    run = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("usage:")


def test_every_bench_script_the_docs_name_exists() -> None:
    named = {m for doc in DOCS for m in re.findall(r"bench/([\w-]+\.(?:py|sh))", doc.read_text())}
    assert named, "the docs name no benchmark at all"
    missing = sorted(n for n in named if not (ROOT / "bench" / n).is_file())
    assert missing == []
