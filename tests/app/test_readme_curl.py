"""The README's curl examples, verbatim, against a real `python run.py` process."""

import json
import re
import shlex
import subprocess
from pathlib import Path

from tests.conftest import running_kryptelion

ROOT = Path(__file__).resolve().parents[2]


def readme_curls() -> list[str]:
    """Every `curl` line of the README's REST API section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## REST API", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("curl ")]


def test_readme_lists_a_curl_example_for_every_route():
    lines = "\n".join(readme_curls())
    for route in (
        "/health",
        "/estrategias",
        "/backtest ",
        "/backtest/1",
        "/backtests",
        "/velas",
        "/ordenes ",
        "/ordenes?",
        "/ordenes/1 ",
        "PUT",
        "DELETE",
        "/ordenes/1/eventos",
        "/metrics",
        "/cruces",
        "/ultimos_cruces",
        "/openapi.json",
    ):
        assert route in lines + " ", route


def test_readme_curl_examples_work_against_a_fresh_run_py(tmp_path):
    with running_kryptelion(tmp_path) as app:
        web = app.ports["WEB_PORT"]
        for line in readme_curls():
            command = shlex.split(re.sub(r"localhost:5000", f"localhost:{web}", line))
            result = subprocess.run(
                [*command, "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=120
            )
            body, _, status = result.stdout.rpartition("\n")
            assert result.returncode == 0 and status.startswith("2"), (line, status, body[:300])
            assert isinstance(json.loads(body), dict), line
    assert "Traceback" not in app.err
