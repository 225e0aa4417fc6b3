"""The README's curl examples, verbatim, against a real `python run.py` process."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from tests.test_cli import _free_port, _wait_for

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
    web, demo = _free_port(), _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "WEB_PORT": str(web),
        "DEMO_PORT": str(demo),
        "DATA_DIR": str(tmp_path),
    }
    server = subprocess.Popen(
        [sys.executable, "run.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{web}/health")
        for line in readme_curls():
            command = shlex.split(re.sub(r"localhost:5000", f"localhost:{web}", line))
            result = subprocess.run(
                [*command, "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=120
            )
            body, _, status = result.stdout.rpartition("\n")
            assert result.returncode == 0 and status.startswith("2"), (line, status, body[:300])
            assert isinstance(json.loads(body), dict), line
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert "Traceback" not in err
