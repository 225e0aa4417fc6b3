"""A database that cannot be opened stops every entry point with one line, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "secret-pw"
ENTRY_POINTS = {
    "run.py": ["run.py"],
    "run.py web": ["run.py", "web"],
    "python -m wsbridge": ["-m", "wsbridge"],
    "run.py db current": ["run.py", "db", "current"],
}


def _unreachable(kind: str, tmp_path: Path) -> str:
    if kind == "postgresql":
        return f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:{free_port()}/db"
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where a folder should be")
    return f"sqlite:///{blocker / 'sub' / 'k.db'}"


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_unreachable_database_gives_one_line_naming_database_url(entry, kind, tmp_path):
    ports = {name: str(free_port()) for name in ("WEB_PORT", "BRIDGE_PORT", "DEMO_PORT")}
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": _unreachable(kind, tmp_path),
        **ports,
    }
    result = subprocess.run(
        [sys.executable, *ENTRY_POINTS[entry]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(lines) <= 2, result.stderr[-3000:]
    assert "DATABASE_URL" in lines[-1]
    assert PASSWORD not in result.stderr + result.stdout
    cause = "Connection refused" if kind == "postgresql" else "Not a directory"
    assert cause in lines[-1]
