"""obtener_datos_historicos on the demo exchange over real HTTP: exact, idempotent, resumable."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import DataError
from core.exchange.demo import DemoExchangeThread, DemoOptions
from core.exchange.klines import klines_to_frame
from core.exchange.rest import BinanceRest
from core.repository import Database
from data.updater import obtener_datos_historicos

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400_000
JAN1 = 1_704_067_200_000


def test_one_day_of_1m_is_exactly_1440_candles_equal_to_the_exchange(demo_exchange, tmp_path):
    path = tmp_path / "datos_historicos.db"
    result = obtener_datos_historicos(
        ["BTCUSDT"],
        ["1m", "5m"],
        str(path),
        "2024-01-01",
        "2024-01-02",
        rest_url=demo_exchange.rest_url,
    )
    one = result["BTCUSDT", "1m"]
    assert (one.written, one.first_time, one.last_time, one.gaps) == (
        1440,
        JAN1,
        JAN1 + DAY - 60_000,
        [],
    )
    assert result["BTCUSDT", "5m"].written == 288
    stored = Database(path).candles.read_frame("BTCUSDT", "1m")
    rows = BinanceRest(demo_exchange.rest_url).klines("BTCUSDT", "1m", JAN1, JAN1 + DAY - 1, 1500)
    expected = klines_to_frame(rows).drop(columns="close_time")
    assert stored.equals(expected)
    again = obtener_datos_historicos(
        ["BTCUSDT"],
        ["1m", "5m"],
        str(path),
        "2024-01-01",
        "2024-01-02",
        rest_url=demo_exchange.rest_url,
    )
    assert [s.written for s in again.values()] == [0, 0]
    assert [s.pages for s in again.values()] == [0, 0]


def test_without_start_it_resumes_after_the_last_stored_candle_and_stores_only_closed(
    demo_exchange, tmp_path
):
    db = Database(tmp_path / "k.db")
    first = obtener_datos_historicos(
        "ETHUSDT", "1m", db, lookback_days=1, rest_url=demo_exchange.rest_url
    )["ETHUSDT", "1m"]
    assert 1400 <= first.written <= 1441
    now = BinanceRest(demo_exchange.rest_url).server_time()
    assert db.candles.latest_open_time("ETHUSDT", "1m") + 60_000 <= now  # closed candles only
    time.sleep(2.5)  # 60x demo clock: two or three more minutes close
    second = obtener_datos_historicos("ETHUSDT", "1m", db, rest_url=demo_exchange.rest_url)
    assert 1 <= second["ETHUSDT", "1m"].written <= 4
    assert db.candles.find_gaps("ETHUSDT", "1m") == []


def test_bad_symbol_interval_or_range_fails_before_downloading(demo_exchange, tmp_path):
    path = str(tmp_path / "x.db")
    with pytest.raises(DataError, match="unknown symbol"):
        obtener_datos_historicos(["NOPEUSDT"], ["1m"], path, rest_url=demo_exchange.rest_url)
    with pytest.raises(DataError, match="invalid interval"):
        obtener_datos_historicos(["BTCUSDT"], ["7m"], path, rest_url=demo_exchange.rest_url)
    with pytest.raises(DataError, match="must be before"):
        obtener_datos_historicos(
            ["BTCUSDT"], ["1m"], path, "2024-02-01", "2024-01-01", rest_url=demo_exchange.rest_url
        )
    assert Database(path).candles.streams() == []


def test_a_low_weight_budget_slows_the_download_down_but_it_completes(tmp_path):
    # 40 weight a minute (we aim at 80 %: 32): exchangeInfo + time + 6 pages of weight 10 cannot
    # fit one minute, so the updater must wait for the next one instead of provoking 429s/418s.
    exchange = DemoExchangeThread(DemoOptions(weight_budget=40)).start()
    try:
        start = time.time()
        result = obtener_datos_historicos(
            ["BTCUSDT"],
            ["1h"],
            tmp_path / "w.db",
            "2023-01-01",
            "2024-01-01",
            rest_url=exchange.rest_url,
        )
        elapsed = time.time() - start
    finally:
        exchange.stop()
    assert result["BTCUSDT", "1h"].written == 365 * 24
    assert result["BTCUSDT", "1h"].error is None
    next_minute = 60 - start % 60
    assert elapsed >= next_minute - 0.5, "it must have waited for the next weight window"


def test_a_killed_download_resumes_with_no_duplicate_and_no_gap(demo_exchange, tmp_path):
    path = tmp_path / "killed.db"
    command = [
        sys.executable,
        "run.py",
        "update",
        "--symbols",
        "BTCUSDT",
        "--intervals",
        "1m",
        "--start",
        "2023-01-01",
        "--end",
        "2023-06-30",  # a date alone includes that day: 181 days
        "--db",
        str(path),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MARKET": "demo",
        "DEMO_PORT": str(demo_exchange.port),
        "CI": "",
    }
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and Database(path).candles.count("BTCUSDT", "1m") >= 20_000:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = Database(path).candles.count("BTCUSDT", "1m")
    assert 0 < partial < 260_640, "the kill must land mid-way for this test to mean anything"
    assert Database(path).candles.find_gaps("BTCUSDT", "1m") == []
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    db = Database(path)
    times = db.candles.read_arrays("BTCUSDT", "1m").open_time
    assert len(times) == 181 * 1440 and len(np.unique(times)) == len(times)
    assert db.candles.find_gaps("BTCUSDT", "1m", times[0], times[-1] + 60_000) == []


def test_holes_in_the_exchange_data_are_reported_not_retried_forever(tmp_path):
    hole = (JAN1 + 600 * 60_000, JAN1 + 645 * 60_000)  # 45 minutes of maintenance
    exchange = DemoExchangeThread(DemoOptions(outages=(hole,))).start()
    try:
        path = tmp_path / "holes.db"
        first = obtener_datos_historicos(
            "BTCUSDT", "1m", path, "2024-01-01", "2024-01-02", rest_url=exchange.rest_url
        )["BTCUSDT", "1m"]
        again = obtener_datos_historicos(
            "BTCUSDT", "1m", path, "2024-01-01", "2024-01-02", rest_url=exchange.rest_url
        )["BTCUSDT", "1m"]
    finally:
        exchange.stop()
    assert first.written == 1440 - 45
    assert [(g.first_missing, g.last_missing, g.count) for g in first.gaps] == [
        (hole[0], hole[1] - 60_000, 45)
    ]
    assert again.written == 0 and again.pages == 1  # one look at the hole, no loop
    assert again.gaps == first.gaps


def test_the_users_examples_work_verbatim_in_a_plain_python_session(tmp_path):
    """No server running: the demo market starts in-process and both README examples work.

    The download names "datos_historicos.db" and the export names no database: both are the one
    default database in DATA_DIR, the file `python run.py` and the pages use.
    """
    from tests.conftest import free_port

    script = (
        "from data.updater import obtener_datos_historicos\n"
        'r = obtener_datos_historicos(["BTCUSDT"], ["1m", "5m"], "datos_historicos.db")\n'
        "print(r['BTCUSDT', '1m'].written, r['BTCUSDT', '5m'].written)\n"
        "from data.exporter import exportar_datos\n"
        'exportar_datos("BTCUSDT", "1m", formato="csv", salida="export_btc.csv")\n'
    )
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "DATA_DIR": str(tmp_path / "datos"),
        "DEMO_PORT": str(free_port()),
        "DEMO_SPEED": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    one_minute, five_minutes = map(int, result.stdout.split())
    assert 30 * 1440 - 2 <= one_minute <= 30 * 1440 + 1  # the documented 30-day look-back
    assert 30 * 288 - 1 <= five_minutes <= 30 * 288 + 1
    assert (tmp_path / "export_btc.csv").read_text().count("\n") == one_minute + 1
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.db")) == [
        Path("datos/datos_historicos.db")
    ]
    assert "started a local DEMO exchange" in result.stderr
    assert "Traceback" not in result.stderr
