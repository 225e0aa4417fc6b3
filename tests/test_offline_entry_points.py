"""Every entry point that needs the market works offline with MARKET=demo and nothing running.

Each test runs the real command in a subprocess with a free DEMO_PORT where nothing listens, so
the command has to start the local demo exchange itself, say so in one line, and exit cleanly.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
NOTICE = "started a local DEMO exchange"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "DATA_DIR": str(tmp_path),
        "DEMO_PORT": str(free_port()),
        **extra,
    }


def _run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A long-running command, its output kept for the checks after it stops."""
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _notices(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if NOTICE in line]


def test_update_starts_the_demo_exchange_and_stores_into_the_default_database(tmp_path):
    env = _env(tmp_path)
    started = time.monotonic()
    result = _run(
        ["run.py", "update", "--symbols", "BTCUSDT", "--intervals", "1h"]
        + ["--start", "2024-01-01", "--end", "2024-01-02"],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15  # no retrying an absent exchange for 20 s
    assert len(_notices(result.stderr)) == 1 and "Traceback" not in result.stderr
    row = result.stdout.splitlines()[1].split()
    assert row[:3] == ["BTCUSDT", "1h", "48"]
    assert (tmp_path / "datos_historicos.db").is_file()


def test_update_and_export_with_a_bare_db_name_use_the_file_in_data_dir(tmp_path):
    env = _env(tmp_path)
    update = _run(
        ["run.py", "update", "--symbols", "ETHUSDT", "--intervals", "4h"]
        + ["--start", "2024-01-01", "--end", "2024-01-01", "--db", "mia.db"],
        env,
    )
    assert update.returncode == 0, update.stderr
    assert (tmp_path / "mia.db").is_file() and not (ROOT / "mia.db").exists()
    out = tmp_path / "eth.json"
    export = _run(["run.py", "export", "ETHUSDT", "4h", "--formato", "json", "--salida", str(out)]
                  + ["--db", "mia.db"], env)  # fmt: skip
    assert export.returncode == 0, export.stderr
    assert len(json.loads(out.read_text())) == 6
    assert _notices(export.stderr) == []  # reading stored candles needs no market


def test_backtest_starts_the_demo_exchange(tmp_path):
    env = _env(tmp_path)
    result = _run(
        ["run.py", "backtest", "--symbol", "BTCUSDT", "--interval", "1h"]
        + ["--start", "2024-01-01", "--end", "2024-01-14", "--db", str(tmp_path / "bt.db")],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "on BTCUSDT 1h: 336 candles" in result.stdout
    assert len(_notices(result.stderr)) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["update", "--symbols", "BTCUSDT", "--intervals", "1m,2m"], 2, "argument --intervals: "),
        (["update", "--symbols", "BTCUSDT", "--intervals", "1m", "--start", "ayer"], 2,
         "argument --start: "),
        (["update", "--symbols", "NOPEUSDT", "--intervals", "1h"], 1,
         "error: unknown symbol(s) NOPEUSDT on this market"),
        (["update", "--symbols", "BTCUSDT", "--intervals", "1h", "--start", "2024-01-03",
          "--end", "2024-01-01"], 1, "error: start_time 2024-01-03"),
        (["backtest", "--symbol", "BTCUSDT", "--interval", "2m"], 2, "argument --interval: "),
        (["backtest", "--symbol", "NOPEUSDT", "--interval", "1h", "--start", "2024-01-01"], 1,
         "error: unknown symbol(s) NOPEUSDT on this market"),
        (["backtest", "--symbol", "BTCUSDT", "--interval", "1h", "--param", "rapid=3"], 1,
         "no parameter 'rapid'"),
    ],
)  # fmt: skip
def test_a_bad_argument_is_named_at_once(tmp_path, args, status, message):
    started = time.monotonic()
    result = _run(["run.py", *args], _env(tmp_path))
    assert (result.returncode, time.monotonic() - started < 15) == (status, True), result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    return out, err


@pytest.mark.parametrize("command", [["-m", "wsbridge"], ["run.py", "bridge"]])
def test_the_bridge_alone_starts_the_demo_exchange_and_serves_a_snapshot(tmp_path, command):
    env = _env(tmp_path, BRIDGE_PORT=str(free_port()))
    process = _start(command, env)
    try:
        wait_for(f"http://127.0.0.1:{env['BRIDGE_PORT']}/health")
        url = f"ws://127.0.0.1:{env['BRIDGE_PORT']}/?symbol=BTCUSDT&interval=1m"
        with connect(url, open_timeout=10) as ws:
            first = json.loads(ws.recv(timeout=20))
        assert first["tipo"] == "snapshot" and len(first["velas"]) > 0, first
    finally:
        _, err = _stop(process)
    assert len(_notices(err)) == 1


def test_the_web_app_alone_starts_the_demo_exchange_and_serves_fresh_candles(tmp_path):
    env = _env(tmp_path, WEB_PORT=str(free_port()))
    process = _start(["run.py", "web"], env)
    try:
        base = f"http://127.0.0.1:{env['WEB_PORT']}"
        wait_for(f"{base}/health")
        query = "/velas?symbol=BTCUSDT&interval=1h&start=2024-01-01&end=2024-01-02"
        answer = json.loads(wait_for(base + query))
        assert answer["aviso"] is None and len(answer["velas"]) == 24
    finally:
        _, err = _stop(process)
    assert len(_notices(err)) == 1


def test_the_stream_smoke_script_starts_the_demo_exchange_and_prints_klines(tmp_path):
    env = _env(tmp_path)
    result = _run(["websocket/test_ws_connection.py", "BTCUSDT", "1m", "3"], env)
    assert result.returncode == 0, result.stderr
    klines = [line for line in result.stdout.splitlines() if line.startswith("open   BTCUSDT 1m")]
    assert klines, result.stdout
    assert len(_notices(result.stderr)) == 1 and "Traceback" not in result.stderr


def test_the_stream_smoke_script_stops_cleanly_on_sigterm(tmp_path):
    process = _start(["websocket/test_ws_connection.py"], _env(tmp_path))
    line = process.stdout.readline()  # blocks until the first event (the script's default: 30 s)
    assert line.startswith(("[conectado]", "open ", "CLOSED ")), line
    _stop(process)


def test_run_py_uses_a_demo_exchange_already_listening_on_demo_port(demo_exchange, tmp_path):
    env = _env(tmp_path, WEB_PORT=str(free_port()), BRIDGE_PORT=str(free_port()))
    env["DEMO_PORT"] = str(demo_exchange.port)
    process = _start(["run.py"], env)
    try:
        wait_for(f"http://127.0.0.1:{env['WEB_PORT']}/health")
    finally:
        out, err = _stop(process)
    assert f"DEMO market at http://127.0.0.1:{demo_exchange.port} (already running)" in out
    assert _notices(err) == []
