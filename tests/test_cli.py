"""run.py and setup_env.py as a user runs them: real subprocesses, real files."""

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest

import setup_env
from backtesting.simulador import ejecutar_backtest
from config.settings import Settings, load_settings
from core.repository import Database
from estrategias.factory import crear_estrategia
from tests.conftest import running_kryptelion, wait_for

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = (
    "web", "bridge", "update", "export", "backtest", "optimizar", "bot", "demo-exchange", "db",
)  # fmt: skip
BACKTEST = [
    "backtest", "--symbol", "BTCUSDT", "--interval", "1h", "--strategy", "sma_cruce",
    "--start", "2024-01-01", "--end", "2024-02-29", "--capital", "1000",
    "--param", "rapida=9", "--param", "lenta=21",
]  # fmt: skip
BOT = ["bot", "--strategy", "sma_cruce", "--symbol", "BTCUSDT", "--interval", "1m"]


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
    head = Database.head()
    assert upgraded.returncode == 0
    assert f"schema at revision {head} (head {head})" in upgraded.stdout
    after = _run("db", "current", env=env)
    assert f"revision {head}, up to date" in after.stdout
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


def _metrics(stdout: str) -> dict[str, str]:
    """The printed metrics table, metric -> value as printed."""
    return {line.split()[0]: line.split()[1] for line in stdout.splitlines()[2:]}


def test_backtest_command_downloads_runs_and_prints_metrics(demo_exchange, tmp_path):
    env = {"DEMO_PORT": str(demo_exchange.port)}
    args = [*BACKTEST, "--db", str(tmp_path / "bt.db")]
    result = _run(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert "SmaCruce(rapida=9, lenta=21, modo='ambos') on BTCUSDT 1h: 1440 candles" in result.stdout
    lines = _metrics(result.stdout)
    assert int(lines["trades"]) > 0 and float(lines["start_equity"]) == 1000
    bad = _run(*args[:-2], "--param", "rapid=3", env=env)
    assert bad.returncode == 1 and "no parameter 'rapid'" in bad.stderr


def test_backtest_trailing_reaches_the_engine(demo_exchange, tmp_path):
    path = tmp_path / "bt.db"
    result = _run(*BACKTEST, "--db", str(path), "--trailing", "0.01",
                  env={"DEMO_PORT": str(demo_exchange.port)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    database = Database(path)
    velas = database.candles.read_frame("BTCUSDT", "1h", 1_704_067_200_000, 1_709_251_200_000)
    database.close()
    direct = ejecutar_backtest(
        velas, crear_estrategia("sma_cruce", rapida=9, lenta=21), capital=1000, trailing=0.01
    )
    printed = _metrics(result.stdout)
    assert len(velas) == 1440 and int(printed["trades"]) == len(direct.trades) > 0
    assert float(printed["final_equity"]) == pytest.approx(direct.metricas["final_equity"], 1e-5)


OPTIMISE = [
    "optimizar", "--symbol", "BTCUSDT", "--interval", "1h", "--strategy", "sma_cruce",
    "--start", "2024-01-01", "--end", "2024-02-29", "--capital", "1000",
    "--espacio", "rapida=5:20:5", "--espacio", "lenta=10:40:10",
]  # fmt: skip


def test_optimizar_prints_the_best_combinations_as_optimizar_finds_them(demo_exchange, tmp_path):
    from backtesting.optimizador import optimizar

    path = tmp_path / "opt.db"
    result = _run(*OPTIMISE, "--db", str(path), "--top", "3",
                  env={"DEMO_PORT": str(demo_exchange.port)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    database = Database(path)
    velas = database.candles.read_frame("BTCUSDT", "1h", 1_704_067_200_000, 1_709_251_200_000)
    database.close()
    direct = optimizar(
        velas, "sma_cruce", {"rapida": [5, 10, 15, 20], "lenta": [10, 20, 30, 40]}, capital=1000
    )
    refused = sum(1 for f in (5, 10, 15, 20) for s in (10, 20, 30, 40) if f >= s)
    assert f"1440 candles, grid, {16 - refused} combinations ({refused} refused)" in result.stdout
    lines = result.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("rapida")))
    top = [line.split() for line in lines[header + 1 : header + 4]]
    best = direct.resultados.sort_values("sharpe", ascending=False).head(3)
    assert [(int(r[0]), int(r[1])) for r in top] == list(zip(best.rapida, best.lenta, strict=True))
    assert f"best: {direct.mejor}" in result.stdout
    assert "deflated Sharpe:" in result.stdout and "PBO:" in result.stdout


def test_optimizar_on_two_workers_matches_one_process_and_keeps_dask_quiet(demo_exchange, tmp_path):
    """Dask logs its cluster's start and stop at INFO and, at shutdown, a closed connection with a
    traceback; a user running `--workers 2` should see only Kryptelion's output."""
    env = {"DEMO_PORT": str(demo_exchange.port)}
    one = _run(*OPTIMISE, "--db", str(tmp_path / "one.db"), env=env)
    two = _run(*OPTIMISE, "--db", str(tmp_path / "two.db"), "--workers", "2", env=env)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert "distributed" not in two.stderr and "Traceback" not in two.stderr, two.stderr

    def without_timings(out: str) -> str:
        return re.sub(r" in [0-9.]+ s", "", out)

    assert without_timings(two.stdout) == without_timings(one.stdout)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("rapida", "expected NAME=SPEC"), ("rapida=9:5:1", "a <= b"), ("rapida=1..x", "a..b")],
)
def test_a_bad_espacio_is_an_argparse_error_naming_it(spec, message):
    result = _run(*OPTIMISE[:-4], "--espacio", spec)
    assert result.returncode == 2 and "argument --espacio:" in result.stderr
    assert message in result.stderr


def test_an_unknown_parameter_in_espacio_is_named(demo_exchange, tmp_path):
    result = _run(*OPTIMISE[:-2], "--espacio", "lentaa=10:40:10", "--db", str(tmp_path / "o.db"),
                  env={"DEMO_PORT": str(demo_exchange.port)})  # fmt: skip
    assert result.returncode == 1 and "no parameter 'lentaa'" in result.stderr
    assert "did you mean 'lenta'" in result.stderr


@pytest.mark.parametrize("command", [BACKTEST, BOT])
@pytest.mark.parametrize("value", ["0.5", "0.0001", "nan", "1%"])
def test_a_bad_trailing_is_an_argparse_error_naming_it(command, value):
    result = _run(*command, "--trailing", value)
    assert result.returncode == 2 and "argument --trailing:" in result.stderr


def _line(process: subprocess.Popen, timeout: float = 30) -> str:
    """The process's next line of output, failing after `timeout` seconds without one."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not selector.select(timeout=0.1):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no output in time"
    return process.stdout.readline()


def test_bot_trailing_is_stored_with_the_bot(demo_exchange, tmp_path):
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path),
           "DEMO_PORT": str(demo_exchange.port)}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "run.py", *BOT, "--nombre", "movil", "--trailing", "0.01"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _line(process).startswith("bot 1 'movil': sma_cruce on BTCUSDT 1m")
    finally:
        process.send_signal(signal.SIGTERM)  # status 0 at any moment (SIGINT: 130 before the loop)
        process.communicate(timeout=30)
    assert process.returncode == 0
    database = Database(tmp_path / "datos_historicos.db")
    assert database.bots.get_by_name("movil").trailing == 0.01
    database.close()
