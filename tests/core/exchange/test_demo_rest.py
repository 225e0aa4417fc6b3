"""The demo exchange's REST side over real sockets: python-binance compatibility, errors."""

import time

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException

from core.exchange.demo import DemoExchangeThread, DemoOptions
from core.intervals import close_time, interval_ms, to_ms

pytestmark = pytest.mark.timeout(30)

MAIN_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")


def _klines(exchange, **params):
    response = requests.get(exchange.rest_url + "/fapi/v1/klines", params=params, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _binance_client(exchange) -> Client:
    client = Client(None, None, ping=False)
    client.FUTURES_URL = exchange.rest_url + "/fapi"
    return client


def test_python_binance_client_reads_klines_unchanged(demo_exchange):
    client = _binance_client(demo_exchange)
    client.futures_ping()
    rows = client.futures_klines(symbol="BTCUSDT", interval="1h", limit=1000)
    server_time = client.futures_time()["serverTime"]
    assert len(rows) == 1000
    for row in rows:
        assert len(row) == 12
        assert all(isinstance(row[i], int) for i in (0, 6, 8))
        assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
        assert float(row[3]) <= min(float(row[1]), float(row[4]))
        assert float(row[2]) >= max(float(row[1]), float(row[4]))
        assert row[6] == close_time(row[0], "1h")
    opens = [row[0] for row in rows]
    assert all(b - a == interval_ms("1h") for a, b in zip(opens, opens[1:], strict=False))
    # The last one is the open candle (the demo clock runs 60 s per real second).
    assert opens[-1] <= server_time <= rows[-1][6] + 60_000
    assert 10_000 < float(rows[-1][4]) < 1_000_000  # a plausible BTC price


def test_python_binance_client_reads_exchange_info_and_errors(demo_exchange):
    client = _binance_client(demo_exchange)
    info = client.futures_exchange_info()
    assert info["timezone"] == "UTC" and isinstance(info["serverTime"], int)
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert set(MAIN_SYMBOLS) <= set(symbols)
    btc = symbols["BTCUSDT"]
    assert btc["contractType"] == "PERPETUAL" and btc["status"] == "TRADING"
    assert (btc["baseAsset"], btc["quoteAsset"], btc["pair"]) == ("BTC", "USDT", "BTCUSDT")
    assert btc["onboardDate"] == to_ms("2019-09-01")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10"
    assert filters["LOT_SIZE"]["stepSize"] == filters["MARKET_LOT_SIZE"]["stepSize"] == "0.001"
    assert float(filters["MIN_NOTIONAL"]["notional"]) > 0
    assert info["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    with pytest.raises(BinanceAPIException) as caught:
        client.futures_klines(symbol="NOPEUSDT", interval="1m")
    assert (caught.value.status_code, caught.value.code) == (400, -1121)


def test_start_time_only_pages_forward_from_it(demo_exchange):
    start = to_ms("2021-03-04T05:06:07Z")
    rows = _klines(demo_exchange, symbol="ETHUSDT", interval="5m", startTime=start, limit=7)
    assert len(rows) == 7
    assert rows[0][0] == to_ms("2021-03-04T05:10:00Z")  # the first open time >= startTime


def test_end_time_only_returns_the_last_candles_up_to_it(demo_exchange):
    end = to_ms("2022-01-01T00:00:00Z")
    rows = _klines(demo_exchange, symbol="BTCUSDT", interval="1d", endTime=end, limit=3)
    assert [r[0] for r in rows] == [end - 2 * 86_400_000, end - 86_400_000, end]


def test_both_times_bound_the_page_and_default_limit_is_500(demo_exchange):
    start, end = to_ms("2020-05-01"), to_ms("2020-05-01T01:00:00Z")
    rows = _klines(demo_exchange, symbol="XRPUSDT", interval="1m", startTime=start, endTime=end)
    assert len(rows) == 61 and rows[-1][0] == end
    assert len(_klines(demo_exchange, symbol="XRPUSDT", interval="1m")) == 500
    assert len(_klines(demo_exchange, symbol="XRPUSDT", interval="1m", limit=1500)) == 1500


def test_latest_page_ends_with_the_open_candle_and_nothing_after_now(demo_exchange):
    rows = _klines(demo_exchange, symbol="SOLUSDT", interval="1m", limit=5)
    server_time = requests.get(demo_exchange.rest_url + "/fapi/v1/time", timeout=5).json()
    assert rows[-1][0] <= server_time["serverTime"] < rows[-1][6] + 60_000
    future = server_time["serverTime"] + 3_600_000
    assert _klines(demo_exchange, symbol="SOLUSDT", interval="1m", startTime=future) == []


def test_no_klines_before_a_symbol_is_listed(demo_exchange):
    listed = to_ms("2020-07-10")
    before = _klines(demo_exchange, symbol="DOGEUSDT", interval="1h", endTime=listed - 1)
    assert before == []
    first = _klines(demo_exchange, symbol="DOGEUSDT", interval="1h", startTime=0, limit=1)
    assert first[0][0] == listed
    month = _klines(demo_exchange, symbol="DOGEUSDT", interval="1M", startTime=0, limit=2)
    assert [r[0] for r in month] == [to_ms("2020-07-01"), to_ms("2020-08-01")]
    assert month[0][1] == first[0][1]  # the July candle opens with the listing's first trade


KLINES = {"symbol": "BTCUSDT", "interval": "1m"}
MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
ILLEGAL = "Illegal characters found in parameter '{}'; legal range is '^[0-9]{{1,20}}$'."
BAD_LIMIT = "Data sent for parameter 'limit' is not valid."
BAD_REQUESTS = [
    ({"symbol": "BTCUSD", "interval": "1m"}, -1121, "Invalid symbol."),
    ({"symbol": "BTCUSDT", "interval": "7m"}, -1120, "Invalid interval."),
    ({"interval": "1m"}, -1102, MANDATORY.format("symbol")),
    ({"symbol": "BTCUSDT"}, -1102, MANDATORY.format("interval")),
    ({**KLINES, "limit": 1501}, -1130, BAD_LIMIT),
    ({**KLINES, "limit": 0}, -1130, BAD_LIMIT),
    ({**KLINES, "limit": "ten"}, -1100, ILLEGAL.format("limit")),
    ({**KLINES, "startTime": "x"}, -1100, ILLEGAL.format("startTime")),
    ({**KLINES, "startTime": 2, "endTime": 1}, -1023, "Start time is greater than end time."),
]


@pytest.mark.parametrize(("params", "code", "msg"), BAD_REQUESTS)
def test_bad_parameters_get_binance_error_bodies(demo_exchange, params, code, msg):
    response = requests.get(demo_exchange.rest_url + "/fapi/v1/klines", params=params, timeout=5)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"code": code, "msg": msg}


def _await_fresh_minute() -> None:
    """Weight windows are real minutes: don't straddle a boundary."""
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.05)


def test_weight_header_counts_binance_weights_by_limit(demo_exchange):
    _await_fresh_minute()
    session, used = requests.Session(), []
    for limit in (99, 100, 499, 500, 1000, 1001):
        response = session.get(
            demo_exchange.rest_url + "/fapi/v1/klines",
            params={"symbol": "BTCUSDT", "interval": "1m", "limit": limit},
            timeout=5,
        )
        used.append(int(response.headers["X-MBX-USED-WEIGHT-1M"]))
    assert [b - a for a, b in zip(used, used[1:], strict=False)] == [2, 2, 5, 5, 10]


def test_weight_budget_answers_429_with_retry_after():
    _await_fresh_minute()
    with DemoExchangeThread(DemoOptions(weight_budget=25)) as exchange:
        info = requests.get(exchange.rest_url + "/fapi/v1/exchangeInfo", timeout=5).json()
        assert info["rateLimits"][0]["limit"] == 25
        params = {"symbol": "BTCUSDT", "interval": "1m", "limit": 1500}
        statuses = []
        for _ in range(3):
            response = requests.get(exchange.rest_url + "/fapi/v1/klines", params=params, timeout=5)
            statuses.append(response.status_code)
        assert statuses == [200, 200, 429]
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert response.json()["code"] == -1003
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "21"


def test_fault_routes_exist_only_when_enabled(demo_exchange):
    status = requests.get(demo_exchange.rest_url + "/_demo/status", timeout=5).json()
    assert status["speed"] == 60 and status["paused"] is False
    with DemoExchangeThread() as plain:
        for route in ("drop", "pause", "resume"):
            response = requests.post(f"{plain.rest_url}/_demo/fault/{route}", timeout=5)
            assert response.status_code == 404
