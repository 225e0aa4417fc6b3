"""The README's curl examples: one for every route, each run verbatim by `check_curl`."""

import json
import re
import shlex
import subprocess
from pathlib import Path

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
        "/senales",
        "/optimizaciones ",
        "/optimizaciones/1\n",
        "/optimizaciones/1/resultados",
        "/optimizaciones/2/cancelar",
        "/optimizaciones/2/reanudar",
        "/optimizaciones?",
        "/trabajos/3",
        "/trabajos?",
        "/bots ",
        "/bots/1\n",
        "/bots/1/operaciones",
        "/bots/1/ordenes",
        "/bots/1/eventos",
        "/bots/1/parar",
        "/kill",
        "/openapi.json",
    ):
        assert route in lines + " ", route


def check_curl(line: str, web_port: int) -> dict:
    """Run one README curl line against the web app on `web_port`; its JSON object (2xx asserted).

    tests/test_readme_examples.py runs every README's curl lines in order through this, against a
    real `python run.py` in a fresh checkout.
    """
    command = shlex.split(re.sub(r"localhost:5000", f"localhost:{web_port}", line))
    result = subprocess.run(
        [*command, "-s", "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=120
    )
    body, _, status = result.stdout.rpartition("\n")
    assert result.returncode == 0 and status.startswith("2"), (line, status, body[:300])
    reply = json.loads(body)
    assert isinstance(reply, dict), line
    return reply
