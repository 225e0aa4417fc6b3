"""data.candles on the demo exchange over real HTTP: one end rule, one download, same candles for
the API and the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import data.candles
from core.errors import DataError
from core.intervals import end_ms, to_ms
from core.repository import Database
from data.candles import Download, NotEnoughCandlesError, load_run_candles, missing_candles

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
JAN1 = to_ms("2024-01-01")
JAN3 = to_ms("2024-01-03")


def _load(db: Database, url: str, start: str | None, end: str | None, interval: str = "1h"):
    return load_run_candles(
        db,
        "BTCUSDT",
        interval,
        None if start is None else to_ms(start),
        None if end is None else end_ms(end),
        rest_url=url,
    )


def test_a_bare_end_date_includes_that_whole_day(demo_exchange, sqlite_db):
    velas = _load(sqlite_db, demo_exchange.rest_url, "2024-01-01", "2024-01-02")
    assert list(velas.columns) == ["open_time", "open", "high", "low", "close", "volume"]
    assert len(velas) == 48
    assert (velas["open_time"].iloc[0], velas["open_time"].iloc[-1]) == (JAN1, JAN3 - HOUR)
    # Only the range was downloaded: Jan 3's first candle is neither read nor stored.
    assert sqlite_db.candles.latest_open_time("BTCUSDT", "1h") == JAN3 - HOUR


@pytest.mark.parametrize("end", ["2024-01-02T00:00:00Z", str(JAN1 + 24 * HOUR)])
def test_an_instant_end_is_exclusive(demo_exchange, sqlite_db, end):
    velas = _load(sqlite_db, demo_exchange.rest_url, "2024-01-01", end)
    assert len(velas) == 24 and velas["open_time"].iloc[-1] == JAN1 + 23 * HOUR


def test_missing_candles_are_downloaded_once(demo_exchange, sqlite_db, monkeypatch):
    url = demo_exchange.rest_url
    written: list[int] = []
    download = data.candles.obtener_datos_historicos

    def counting(*args, **kwargs):
        summaries = download(*args, **kwargs)
        written.extend(summary.written for summary in summaries.values())
        return summaries

    monkeypatch.setattr(data.candles, "obtener_datos_historicos", counting)
    start, end = JAN1, end_ms("2024-01-02")
    assert missing_candles(sqlite_db, "BTCUSDT", "1h", start, end, rest_url=url) == Download(
        start, end, 48
    )
    first = load_run_candles(sqlite_db, "BTCUSDT", "1h", start, end, rest_url=url)
    again = load_run_candles(sqlite_db, "BTCUSDT", "1h", start, end, rest_url=url)
    assert written == [48, 0] and first.equals(again)
    assert missing_candles(sqlite_db, "BTCUSDT", "1h", start, end, rest_url=url).missing == 0
    # Without dates a stored stream is used as it is: nothing is even asked of the market.
    assert len(load_run_candles(sqlite_db, "BTCUSDT", "1h", rest_url=url)) == 48
    assert missing_candles(sqlite_db, "BTCUSDT", "1h", rest_url=url) is None
    assert written == [48, 0]


def test_an_end_alone_reads_the_default_lookback_before_it(demo_exchange, sqlite_db):
    velas = _load(sqlite_db, demo_exchange.rest_url, None, "2024-01-31", interval="1d")
    assert len(velas) == 30
    assert (velas["open_time"].iloc[0], velas["open_time"].iloc[-1]) == (
        to_ms("2024-01-02"),
        to_ms("2024-01-31"),
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [("2015-01-01", "2015-01-31"), ("2024-01-01", "2024-01-01T01:00:00Z")],  # none; one
)
def test_fewer_than_two_candles_is_not_enough_candles(demo_exchange, sqlite_db, start, end):
    with pytest.raises(NotEnoughCandlesError, match="no candles for BTCUSDT 1h in that range") as e:
        _load(sqlite_db, demo_exchange.rest_url, start, end)
    assert isinstance(e.value, DataError)
    assert e.value.detail == {"symbol": "BTCUSDT", "interval": "1h"}


def test_a_start_not_before_the_end_is_refused_before_any_download(demo_exchange, sqlite_db):
    with pytest.raises(DataError, match="must be before end"):
        _load(sqlite_db, demo_exchange.rest_url, "2024-01-03", "2024-01-02")
    assert sqlite_db.candles.count("BTCUSDT", "1h") == 0


@pytest.mark.parametrize("end", ["2024-01-02", "2024-01-02T12:00:00Z"])
def test_the_api_and_the_cli_run_on_the_same_candles(demo_exchange, client, tmp_path, end):
    body = {"symbol": "BTCUSDT", "interval": "1h", "start_date": "2024-01-01", "end_date": end}
    response = client.post("/backtest", json=body)
    assert response.status_code == 201, response.json
    api_candles = len(response.json["equity"])  # one point per candle below 2,000 candles
    cli = subprocess.run(
        [sys.executable, "run.py", "backtest", "--symbol", "BTCUSDT", "--interval", "1h",
         "--start", "2024-01-01", "--end", end, "--db", str(tmp_path / "cli.db")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path),
             "DEMO_PORT": str(demo_exchange.port)},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    expected = 48 if end == "2024-01-02" else 36
    assert api_candles == expected
    assert f"on BTCUSDT 1h: {expected} candles" in cli.stdout
