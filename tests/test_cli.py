"""run.py and setup_env.py as a user runs them: real subprocesses, real files."""

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import setup_env
from config.settings import Settings, load_settings
from tests.conftest import running_kryptelion, wait_for

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("web", "bridge", "update", "export", "backtest", "demo-exchange", "db")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "run.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command):
    result = _run(command, "--help")
    assert result.returncode == 0
    assert f"run.py {command}" in result.stdout


def test_db_upgrade_then_current(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}"}
    before = _run("db", "current", env=env)
    assert before.returncode == 0 and "revision none (empty)" in before.stdout
    upgraded = _run("db", "upgrade", env=env)
    assert upgraded.returncode == 0 and "schema at revision 0004 (head 0004)" in upgraded.stdout
    after = _run("db", "current", env=env)
    assert "revision 0004, up to date" in after.stdout
    assert (tmp_path / "k.db").is_file()


def test_bad_setting_stops_start_up_with_one_line_naming_the_key():
    result = _run("db", "current", env={"WEB_PORT": "70000"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: WEB_PORT: '70000' is not a port number (1-65535)"
    ]


def test_setup_env_creates_env_and_never_overwrites_without_force(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "datos"))
    env_file = tmp_path / ".env"
    done = setup_env.setup(env_file)
    assert env_file.read_text() == setup_env.EXAMPLE.read_text()
    assert (tmp_path / "datos").is_dir() and "created" in done[0]
    env_file.write_text("MARKET=binance\n")
    assert "kept existing" in setup_env.setup(env_file)[0]
    assert env_file.read_text() == "MARKET=binance\n"
    setup_env.setup(env_file, force=True)
    assert env_file.read_text() == setup_env.EXAMPLE.read_text()


def test_env_example_documents_every_setting_and_loads_as_demo(tmp_path):
    example = setup_env.EXAMPLE.read_text()
    keys = {
        line.split("=")[0]
        for line in example.splitlines()
        if "=" in line and not line.startswith("#")
    }
    # Every setting, and nothing else: each Settings field is the key in upper case.
    assert keys == {f.name.upper() for f in fields(Settings)}
    settings = load_settings(setup_env.EXAMPLE, environ={})
    assert settings.market == "demo" and settings.trading_mode == "paper"


def test_run_without_command_serves_database_demo_market_bridge_and_web_app(tmp_path):
    with running_kryptelion(tmp_path) as app:
        ports = app.ports
        assert b"serverTime" in wait_for(f"http://127.0.0.1:{ports['DEMO_PORT']}/fapi/v1/time")
        assert b'"estado": "ok"' in wait_for(f"http://127.0.0.1:{ports['BRIDGE_PORT']}/health")
        metrics = wait_for(f"http://127.0.0.1:{ports['WEB_PORT']}/metrics")
        assert b'"conectado"' in metrics  # /metrics sees the running bridge
    assert "database ready" in app.out and "DEMO market" in app.out and "REST API on" in app.out
    assert "Bridge on ws://" in app.out
    assert (tmp_path / "datos_historicos.db").is_file()


def test_backtest_command_downloads_runs_and_prints_metrics(demo_exchange, tmp_path):
    env = {"DEMO_PORT": str(demo_exchange.port)}
    args = [
        "backtest",
        "--symbol",
        "BTCUSDT",
        "--interval",
        "1h",
        "--strategy",
        "sma_cruce",
        "--start",
        "2024-01-01",
        "--end",
        "2024-03-01",
        "--capital",
        "1000",
        "--param",
        "rapida=9",
        "--param",
        "lenta=21",
        "--db",
        str(tmp_path / "bt.db"),
    ]
    result = _run(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert "SmaCruce(rapida=9, lenta=21, modo='ambos') on BTCUSDT 1h: 1440 candles" in result.stdout
    lines = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[2:]}
    assert int(lines["trades"]) > 0 and float(lines["start_equity"]) == 1000
    bad = _run(*args[:-2], "--param", "rapid=3", env=env)
    assert bad.returncode == 1 and "no parameter 'rapid'" in bad.stderr
