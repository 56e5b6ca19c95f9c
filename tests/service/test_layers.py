"""The API process never imports torch: a fresh interpreter builds the app and checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import sys
from pathlib import Path
from core.settings import Settings
import app.main, cli.service, core.client, core.registry.catalog
from fastapi.testclient import TestClient
application = app.main.create_app(Settings(data_dir=Path(sys.argv[1])))
with TestClient(application) as c:
    assert c.get('/v1/health').status_code == 200
    assert c.get('/docs').status_code == 200
    assert c.get('/v1/jobs').status_code == 401
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchdiffeq'))
print('HEAVY', heavy)
"""


@pytest.mark.slow
def test_app_builds_and_serves_without_importing_torch(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
