"""The demo exchange's account API over real sockets, through python-binance's own Client."""

import time

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException

from config.errors import ConfigError
from config.settings import DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET
from core.exchange.demo import DemoExchangeThread, DemoOptions
from core.exchange.demo.accounts import LISTEN_KEY_TTL_MS, Accounts
from core.exchange.demo.auth import sign
from core.exchange.demo.brackets import brackets_of, max_leverage, max_notional
from core.exchange.demo.errors import BinanceError
from core.exchange.demo.premium import funding_rate, next_funding_ms
from core.intervals import to_ms

pytestmark = pytest.mark.timeout(30)

OTHER_KEY, OTHER_SECRET = "second-account", "second-secret"


@pytest.fixture
def exchange():
    """A demo exchange at 1x (its clock is the wall clock) with two accounts of 2500 USDT."""
    keys = {DEFAULT_DEMO_API_KEY: DEFAULT_DEMO_API_SECRET, OTHER_KEY: OTHER_SECRET}
    server = DemoExchangeThread(DemoOptions(speed=1, api_keys=keys, balance=2500)).start()
    yield server
    server.stop()


def _client(exchange, key=DEFAULT_DEMO_API_KEY, secret=DEFAULT_DEMO_API_SECRET) -> Client:
    client = Client(key, secret, ping=False)
    client.FUTURES_URL = exchange.rest_url + "/fapi"
    return client


def _code(call, *args, **kwargs) -> tuple[int, int]:
    with pytest.raises(BinanceAPIException) as caught:
        call(*args, **kwargs)
    return caught.value.status_code, caught.value.code


def _signed_get(exchange, path, **params):
    """A signed GET with the demo's own key, built by hand (for paths python-binance skips)."""
    params["timestamp"] = int(time.time() * 1000)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    key, secret = DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET
    url = f"{exchange.rest_url}{path}?{query}&signature={sign(secret, query)}"
    return requests.get(url, headers={"X-MBX-APIKEY": key}, timeout=5)


def test_new_account_reads_its_balance_account_and_no_positions(exchange):
    client = _client(exchange)
    [usdt] = client.futures_account_balance()
    assert (usdt["asset"], usdt["balance"], usdt["availableBalance"]) == (
        "USDT",
        "2500.00000000",
        "2500.00000000",
    )
    assert usdt["crossUnPnl"] == "0.00000000" and usdt["marginAvailable"] is True
    account = client.futures_account()  # v2
    assert account["totalWalletBalance"] == "2500.00000000"
    assert account["availableBalance"] == account["totalMarginBalance"] == "2500.00000000"
    assert account["assets"][0]["walletBalance"] == "2500.00000000"
    btc = {p["symbol"]: p for p in account["positions"]}["BTCUSDT"]
    assert (btc["positionAmt"], btc["leverage"], btc["isolated"], btc["positionSide"]) == (
        "0.000",
        "20",
        False,
        "BOTH",
    )
    assert client.futures_position_information() == []  # v3 lists open positions only
    assert client.futures_get_position_mode() == {"dualSidePosition": False}


def test_v2_and_v3_paths_answer_binance_field_names(exchange):
    v3 = _signed_get(exchange, "/fapi/v3/account").json()
    assert v3["totalWalletBalance"] == "2500.00000000" and v3["positions"] == []
    assert _signed_get(exchange, "/fapi/v2/balance").json()[0]["balance"] == "2500.00000000"
    rows = _signed_get(exchange, "/fapi/v2/positionRisk", symbol="ETHUSDT").json()
    assert [(r["symbol"], r["positionAmt"], r["marginType"], r["leverage"]) for r in rows] == [
        ("ETHUSDT", "0.000", "cross", "20")
    ]
    assert float(rows[0]["markPrice"]) > 0 and rows[0]["maxNotionalValue"] == "15000000"
    assert _signed_get(exchange, "/fapi/v3/positionRisk", symbol="ETHUSDT").json() == []


def test_leverage_and_margin_type_change_and_show_in_positions(exchange):
    client = _client(exchange)
    answer = client.futures_change_leverage(symbol="BTCUSDT", leverage=50)
    assert answer == {"leverage": 50, "maxNotionalValue": "3000000", "symbol": "BTCUSDT"}
    assert _code(client.futures_change_leverage, symbol="BTCUSDT", leverage=126) == (400, -4028)
    assert _code(client.futures_change_leverage, symbol="BTCUSDT", leverage=0) == (400, -4028)
    assert _code(client.futures_change_leverage, symbol="NOPEUSDT", leverage=5) == (400, -1121)
    ok = client.futures_change_margin_type(symbol="BTCUSDT", marginType="ISOLATED")
    assert ok == {"code": 200, "msg": "success"}
    again = _code(client.futures_change_margin_type, symbol="BTCUSDT", marginType="ISOLATED")
    assert again == (400, -4046)
    bad = _code(client.futures_change_margin_type, symbol="BTCUSDT", marginType="SIDEWAYS")
    assert bad == (400, -1102)
    [row] = _signed_get(exchange, "/fapi/v2/positionRisk", symbol="BTCUSDT").json()
    assert (row["leverage"], row["marginType"], row["maxNotionalValue"]) == (
        "50",
        "isolated",
        "3000000",
    )
    # Another API key is another account, with the defaults.
    other = _client(exchange, OTHER_KEY, OTHER_SECRET).futures_account()
    btc = {p["symbol"]: p for p in other["positions"]}["BTCUSDT"]
    assert (btc["leverage"], btc["isolated"]) == ("20", False)


def test_leverage_brackets_follow_binance_tiers(exchange):
    client = _client(exchange)
    btc = client.futures_leverage_bracket(symbol="BTCUSDT")
    first, second = btc["brackets"][:2]
    assert btc["symbol"] == "BTCUSDT"
    assert first == {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000,
                     "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0}  # fmt: skip
    assert (second["notionalFloor"], second["maintMarginRatio"], second["cum"]) == (
        50000,
        0.005,
        50.0,
    )
    everything = client.futures_leverage_bracket()
    assert {entry["symbol"] for entry in everything} >= {"BTCUSDT", "ETHUSDT", "SOLUSDT"}


def test_mark_price_and_funding_from_the_demo_market(exchange):
    client = _client(exchange)
    mark = client.futures_mark_price(symbol="BTCUSDT")
    klines = client.futures_klines(symbol="BTCUSDT", interval="1m", limit=1)
    assert 10_000 < float(mark["markPrice"]) < 1_000_000
    # Same market: the mark is within a minute's move of the last kline's close.
    assert abs(float(mark["markPrice"]) / float(klines[0][4]) - 1) < 0.01
    assert mark["nextFundingTime"] == next_funding_ms(mark["time"])
    assert mark["nextFundingTime"] % (8 * 3_600_000) == 0 and mark["nextFundingTime"] > mark["time"]
    assert mark["lastFundingRate"] == f"{funding_rate(42, 'BTCUSDT', mark['nextFundingTime']):.8f}"
    assert {entry["symbol"] for entry in client.futures_mark_price()} >= {"BTCUSDT", "ETHUSDT"}
    assert _code(client.futures_mark_price, symbol="NOPEUSDT") == (400, -1121)


def test_listen_key_opens_keeps_alive_and_closes(exchange):
    client = _client(exchange)
    key = client.futures_stream_get_listen_key()
    assert len(key) == 64 and key.isalnum()
    assert client.futures_stream_get_listen_key() == key  # one live key per account
    assert client.futures_stream_keepalive(key) == {"listenKey": key}
    assert _code(client.futures_stream_keepalive, "x" * 64) == (400, -1125)  # not this key
    assert client.futures_stream_close(key) == {}
    assert _code(client.futures_stream_keepalive, key) == (400, -1125)
    assert client.futures_stream_get_listen_key() != key
    stranger = _client(exchange, "nobody", "nothing")
    assert _code(stranger.futures_stream_get_listen_key) == (401, -2015)


def test_wrong_secret_unknown_key_and_stale_timestamp_are_refused(exchange):
    tampered = _client(exchange, DEFAULT_DEMO_API_KEY, "not-the-secret")
    assert _code(tampered.futures_account_balance) == (400, -1022)
    assert _code(_client(exchange, "nobody", "nothing").futures_account) == (401, -2015)
    stale = _client(exchange)
    # python-binance sends recvWindow=10000: 30 s behind the demo clock is well outside it.
    stale.timestamp_offset = -30_000
    assert _code(stale.futures_account_balance) == (400, -1021)
    ahead = _client(exchange)
    ahead.timestamp_offset = 5_000
    assert _code(ahead.futures_account_balance) == (400, -1021)
    no_key = requests.get(exchange.rest_url + "/fapi/v2/balance", timeout=5)
    assert (no_key.status_code, no_key.json()["code"]) == (401, -2014)


@pytest.mark.parametrize(
    "options",
    [{"balance": 0.0}, {"balance": float("nan")}, {"api_keys": {"bad key": "s"}},
     {"api_keys": {"key": ""}}],
)  # fmt: skip
def test_demo_options_refuse_bad_balances_and_keys(options):
    with pytest.raises(ConfigError):
        DemoOptions(**options)


def test_accounts_open_with_the_balance_and_listen_keys_lapse_after_an_hour():
    accounts = Accounts({"k": "s"}, 1234.5)
    now = to_ms("2026-01-01")
    account = accounts.get("k", now)
    assert str(account.wallet_balance) == "1234.5" and account.update_ms == now
    with pytest.raises(KeyError):
        accounts.get("other", now)
    key = accounts.open_listen_key(account, now)
    assert accounts.listen_key_owner(key, now + LISTEN_KEY_TTL_MS - 1) is account
    assert accounts.keep_alive(account, key, now + LISTEN_KEY_TTL_MS - 1) == key
    assert accounts.listen_key_owner(key, now + 2 * LISTEN_KEY_TTL_MS - 2) is account
    lapsed = now + 2 * LISTEN_KEY_TTL_MS - 1
    assert accounts.listen_key_owner(key, lapsed) is None
    with pytest.raises(BinanceError) as caught:
        accounts.keep_alive(account, key, lapsed)
    assert caught.value.code == -1125
    assert accounts.open_listen_key(account, lapsed) != key


def test_brackets_are_continuous_and_leverage_limits_come_from_them():
    for symbol in ("BTCUSDT", "SOLUSDT"):
        tiers = brackets_of(symbol)
        for low, high in zip(tiers, tiers[1:], strict=False):
            assert high.floor == low.cap and high.initial_leverage < low.initial_leverage
            # cum keeps the maintenance margin continuous at each tier's floor.
            at_floor = high.floor * low.maint_margin_ratio - low.cum
            assert high.floor * high.maint_margin_ratio - high.cum == pytest.approx(at_floor)
    assert (max_leverage("BTCUSDT"), max_leverage("SOLUSDT")) == (125, 50)
    assert (max_notional("BTCUSDT", 20), max_notional("BTCUSDT", 125)) == (15_000_000, 50_000)


def test_funding_times_and_rates_are_deterministic():
    assert next_funding_ms(to_ms("2026-01-01 07:59")) == to_ms("2026-01-01 08:00")
    assert next_funding_ms(to_ms("2026-01-01 08:00")) == to_ms("2026-01-01 16:00")
    assert next_funding_ms(to_ms("2026-01-01 23:00")) == to_ms("2026-01-02")
    rate = funding_rate(42, "BTCUSDT", to_ms("2026-01-01 08:00"))
    assert rate == funding_rate(42, "BTCUSDT", to_ms("2026-01-01 08:00"))
    assert 0.00005 <= float(rate) <= 0.00015
