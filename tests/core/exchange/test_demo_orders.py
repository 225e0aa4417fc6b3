"""The demo exchange's order API over real sockets, through python-binance's own Client: fills,
resting orders, modify and cancel, refusals, leverage and margin type, rate limits, faults."""

import time
from collections.abc import Callable

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException

from core.exchange.demo import DemoExchangeThread, DemoOptions
from core.exchange.demo.auth import sign

pytestmark = pytest.mark.timeout(60)

BALANCE = 10_000.0
TAKER = 0.0005
KEYS = {f"orders-{n:02d}": f"orders-secret-{n:02d}" for n in range(40)}
CONDITIONAL = ["STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]


@pytest.fixture(scope="module")
def exchange():
    """One demo exchange at 1x with the fault routes; each test trades on its own account."""
    options = DemoOptions(speed=1, faults=True, api_keys=KEYS, balance=BALANCE)
    server = DemoExchangeThread(options).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def unused_accounts():
    """The (API key, secret) pairs of the module's exchange no test has traded on yet."""
    return iter(KEYS.items())


@pytest.fixture
def account(unused_accounts) -> tuple[str, str]:
    """A fresh account's (API key, secret)."""
    return next(unused_accounts)


@pytest.fixture
def client(exchange, account) -> Client:
    return _client(exchange, *account)


def _client(exchange, key: str, secret: str, **requests_params) -> Client:
    client = Client(key, secret, ping=False, requests_params=requests_params or None)
    client.FUTURES_URL = exchange.rest_url + "/fapi"
    return client


def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> object:
    """The predicate's first truthy value, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)
    return value


def _code(call, *args, **kwargs) -> tuple[int, int]:
    with pytest.raises(BinanceAPIException) as caught:
        call(*args, **kwargs)
    return caught.value.status_code, caught.value.code


def _signed(exchange, method: str, path: str, account: tuple[str, str], **params):
    """A request signed by hand (for what python-binance would send elsewhere)."""
    params["timestamp"] = int(time.time() * 1000)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    key, secret = account
    url = f"{exchange.rest_url}{path}?{query}&signature={sign(secret, query)}"
    return requests.request(method, url, headers={"X-MBX-APIKEY": key}, timeout=5)


def _mark(client: Client, symbol: str = "BTCUSDT") -> float:
    return float(client.futures_mark_price(symbol=symbol)["markPrice"])


def _btc_price(value: float) -> str:
    """A BTCUSDT price on its 0.10 tick."""
    return f"{round(value, 1):.1f}"


def _rest_limit(client: Client, factor: float = 0.98, **params) -> dict:
    """A BTCUSDT LIMIT BUY of 0.010 resting `factor` x the mark (below it: it waits)."""
    price = _btc_price(_mark(client) * factor)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.010", "price": price, **params}  # fmt: skip
    return client.futures_create_order(**order)


def _market(client: Client, side: str = "BUY", quantity: str = "0.010", **params) -> dict:
    return client.futures_create_order(
        symbol="BTCUSDT", side=side, type="MARKET", quantity=quantity, **params
    )


def test_market_order_fills_at_the_mark_and_books_fee_position_and_balance(client):
    mark = _mark(client)
    order = _market(client, newOrderRespType="RESULT")
    assert (order["status"], order["executedQty"], order["origQty"]) == ("FILLED", "0.010", "0.010")
    price = float(order["avgPrice"])
    assert price == pytest.approx(mark, rel=0.002)
    [trade] = client.futures_account_trades(symbol="BTCUSDT")
    assert (trade["orderId"], trade["side"], trade["qty"], trade["maker"]) == (
        order["orderId"], "BUY", "0.010", False,
    )  # fmt: skip
    assert float(trade["price"]) == price and trade["realizedPnl"] == "0.00000000"
    commission = 0.010 * price * TAKER
    assert float(trade["commission"]) == pytest.approx(commission, abs=1e-8)
    [v3] = client.futures_position_information(symbol="BTCUSDT")
    [v2] = client.futures_position_information(symbol="BTCUSDT", version=2)
    for row in (v2, v3):
        assert (row["positionAmt"], float(row["entryPrice"])) == ("0.010", price)
    [usdt] = client.futures_account_balance()
    assert float(usdt["balance"]) == pytest.approx(BALANCE - commission, abs=1e-8)
    queried = client.futures_get_order(symbol="BTCUSDT", orderId=order["orderId"])
    assert (queried["status"], queried["avgPrice"]) == ("FILLED", order["avgPrice"])
    account = client.futures_account()
    [row] = [p for p in account["positions"] if p["symbol"] == "BTCUSDT"]
    assert row["positionAmt"] == "0.010"
    # BTCUSDT's first bracket: 0.4 % of the notional at the mark, per position and in total.
    notional = 0.010 * float(v3["markPrice"])
    assert float(row["maintMargin"]) == pytest.approx(notional * 0.004, abs=0.01)
    assert row["maintMargin"] == account["totalMaintMargin"]


def test_ack_answers_before_the_fill_and_result_after_it(client):
    acked = _market(client)  # newOrderRespType defaults to ACK
    assert (acked["status"], acked["executedQty"], acked["avgPrice"]) == (
        "NEW", "0.000", "0.00000000",
    )  # fmt: skip
    queried = client.futures_get_order(symbol="BTCUSDT", orderId=acked["orderId"])
    assert (queried["status"], queried["executedQty"]) == ("FILLED", "0.010")
    result = _market(client, side="SELL", newOrderRespType="RESULT")
    assert (result["status"], result["executedQty"]) == ("FILLED", "0.010")
    assert client.futures_position_information(symbol="BTCUSDT") == []  # flat again


def test_limit_order_rests_is_queried_modified_and_cancelled(client, exchange):
    order = _rest_limit(client, newClientOrderId="rest-1")
    assert (order["status"], order["clientOrderId"], order["timeInForce"]) == (
        "NEW", "rest-1", "GTC",
    )  # fmt: skip
    [listed] = client.futures_get_open_orders(symbol="BTCUSDT")
    by_id = client.futures_get_order(symbol="BTCUSDT", orderId=order["orderId"])
    by_client = client.futures_get_order(symbol="BTCUSDT", origClientOrderId="rest-1")
    assert listed == by_id == by_client and by_id["status"] == "NEW"
    wait_until(lambda: client.futures_time()["serverTime"] > order["updateTime"])
    new_price = _btc_price(float(order["price"]) - 100)
    modified = client.futures_modify_order(
        symbol="BTCUSDT", orderId=order["orderId"], side="BUY", quantity="0.020", price=new_price
    )
    assert (modified["price"], modified["origQty"], modified["status"]) == (
        f"{float(new_price):.2f}", "0.020", "NEW",
    )  # fmt: skip
    assert modified["updateTime"] > order["updateTime"] and modified["time"] == order["time"]
    assert client.futures_get_order(symbol="BTCUSDT", orderId=order["orderId"]) == modified
    cancelled = client.futures_cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
    assert (cancelled["status"], cancelled["executedQty"]) == ("CANCELED", "0.000")
    assert client.futures_get_open_orders(symbol="BTCUSDT") == []
    again = _code(client.futures_cancel_order, symbol="BTCUSDT", orderId=order["orderId"])
    assert again == (400, -2011)
    assert _code(client.futures_get_order, symbol="BTCUSDT", orderId=123) == (400, -2013)
    unknown = _code(client.futures_get_order, symbol="BTCUSDT", origClientOrderId="never")
    assert unknown == (400, -2013)
    [usdt] = client.futures_account_balance()
    assert usdt["balance"] == f"{BALANCE:.8f}"  # a cancelled order costs nothing


def test_modify_is_refused_where_a_new_order_would_be(client):
    order = _rest_limit(client)
    modify = {"symbol": "BTCUSDT", "orderId": order["orderId"], "side": "BUY"}
    unaffordable = {**modify, "quantity": "5.000", "price": order["price"]}  # ~25k margin
    assert _code(client.futures_modify_order, **unaffordable) == (400, -2019)
    post_only = _rest_limit(client, timeInForce="GTX")
    crossing = {**modify, "orderId": post_only["orderId"], "quantity": "0.010",
                "price": _btc_price(_mark(client) * 1.01)}  # fmt: skip
    assert _code(client.futures_modify_order, **crossing) == (400, -5022)
    same = {**modify, "quantity": "0.010", "price": order["price"]}
    assert _code(client.futures_modify_order, **same) == (400, -5027)
    wrong_side = {**modify, "side": "SELL", "quantity": "0.020", "price": order["price"]}
    assert _code(client.futures_modify_order, **wrong_side) == (400, -1130)
    for resting in (order, post_only):
        row = client.futures_get_order(symbol="BTCUSDT", orderId=resting["orderId"])
        assert (row["status"], row["origQty"], row["price"]) == (
            "NEW", "0.010", resting["price"],
        )  # fmt: skip
    assert client.futures_account_trades(symbol="BTCUSDT") == []
    filled = _market(client)
    done = {**modify, "orderId": filled["orderId"], "quantity": "0.020", "price": order["price"]}
    assert _code(client.futures_modify_order, **done) == (400, -2013)


def test_all_orders_lists_every_order_and_cancel_all_ends_the_open_ones(client):
    resting = [_rest_limit(client, factor=0.97 - n / 100) for n in range(3)]
    filled = _market(client)
    eth = client.futures_create_order(
        symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.100",
        price=f"{_mark(client, 'ETHUSDT') * 0.97:.2f}",
    )  # fmt: skip
    assert len(client.futures_get_open_orders()) == 4  # every symbol's
    done = client.futures_cancel_all_open_orders(symbol="BTCUSDT")
    assert done == {"code": 200, "msg": "The operation of cancel all open order is done."}
    assert [o["orderId"] for o in client.futures_get_open_orders()] == [eth["orderId"]]
    rows = client.futures_get_all_orders(symbol="BTCUSDT")
    assert [(r["orderId"], r["status"]) for r in rows] == [
        *((o["orderId"], "CANCELED") for o in resting), (filled["orderId"], "FILLED"),
    ]  # fmt: skip
    later = client.futures_get_all_orders(symbol="BTCUSDT", orderId=resting[2]["orderId"])
    assert [r["orderId"] for r in later] == [resting[2]["orderId"], filled["orderId"]]
    assert len(client.futures_get_all_orders(symbol="BTCUSDT", limit=1)) == 1


@pytest.mark.parametrize("kind", CONDITIONAL)
def test_conditional_types_on_the_order_endpoint_answer_4120(exchange, account, kind):
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": kind, "quantity": "0.010",
              "stopPrice": "50000.0", "price": "50000.0", "timeInForce": "GTC"}  # fmt: skip
    if kind == "TRAILING_STOP_MARKET":
        params = {**params, "callbackRate": "1"}
    response = _signed(exchange, "POST", "/fapi/v1/order", account, **params)
    assert (response.status_code, response.json()["code"]) == (400, -4120)
    assert "Algo Order API" in response.json()["msg"]


def _refusals(mark: float) -> list[tuple[str, dict, int]]:
    limit = {"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010"}
    return [
        (
            "reduce-only without position",
            {"type": "MARKET", "side": "SELL", "quantity": "0.010", "reduceOnly": "true"},
            -2022,
        ),
        ("margin", {"type": "MARKET", "quantity": "3.000"}, -2019),
        ("min notional", {"symbol": "ETHUSDT", "type": "MARKET", "quantity": "0.001"}, -4164),
        ("precision", {"type": "MARKET", "quantity": "0.0101"}, -1111),
        ("tick", {**limit, "price": f"{round(mark * 0.98):.0f}.15"}, -4014),
        (
            "post-only would take",
            {**limit, "timeInForce": "GTX", "price": _btc_price(mark * 1.01)},
            -5022,
        ),
        (
            "hedge position side",
            {"type": "MARKET", "quantity": "0.010", "positionSide": "LONG"},
            -4061,
        ),
        ("unknown symbol", {"symbol": "NOPEUSDT", "type": "MARKET", "quantity": "1"}, -1121),
        ("missing quantity", {"type": "MARKET"}, -1102),
        ("missing price", {**limit}, -1102),
    ]


def test_orders_binance_refuses_are_refused_with_its_codes(client):
    mark = _mark(client)
    for name, params, expected in _refusals(mark):
        order = {"symbol": "BTCUSDT", "side": "BUY", **params}
        assert _code(client.futures_create_order, **order) == (400, expected), name
    assert client.futures_get_all_orders(symbol="BTCUSDT") == []
    [usdt] = client.futures_account_balance()
    assert usdt["balance"] == f"{BALANCE:.8f}"


def test_client_order_id_is_unique_among_open_orders_only(client):
    resting = _rest_limit(client, newClientOrderId="dup-1")
    assert _code(_rest_limit, client, newClientOrderId="dup-1") == (400, -4116)
    client.futures_cancel_order(symbol="BTCUSDT", orderId=resting["orderId"])
    first = _market(client, newClientOrderId="again-1", newOrderRespType="RESULT")
    assert first["status"] == "FILLED"
    # Filled, the id is free: a blind retry opens a second order (and doubles the position).
    second = _market(client, newClientOrderId="again-1", newOrderRespType="RESULT")
    assert second["orderId"] != first["orderId"]
    latest = client.futures_get_order(symbol="BTCUSDT", origClientOrderId="again-1")
    assert latest["orderId"] == second["orderId"]
    [position] = client.futures_position_information(symbol="BTCUSDT")
    assert position["positionAmt"] == "0.020"
    assert _code(_market, client, newClientOrderId="x" * 37) == (400, -4015)  # 1-36 chars


def test_requests_with_a_wrong_signature_key_or_timestamp_are_refused(exchange, account):
    key, secret = account
    params = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.010"
    query = f"{params}&timestamp={int(time.time() * 1000)}"
    tampered = query.replace("quantity=0.010", "quantity=1.000")  # signed, then changed
    url = f"{exchange.rest_url}/fapi/v1/order?{tampered}&signature={sign(secret, query)}"
    response = requests.post(url, headers={"X-MBX-APIKEY": key}, timeout=5)
    assert (response.status_code, response.json()["code"]) == (400, -1022)
    wrong_secret = _client(exchange, key, "not-the-secret")
    assert _code(_market, wrong_secret) == (400, -1022)
    assert _code(_market, _client(exchange, "nobody", "nothing")) == (401, -2015)
    stale = _client(exchange, key, secret)
    stale.timestamp_offset = -30_000  # python-binance's recvWindow is 10 s
    assert _code(_market, stale) == (400, -1021)
    assert _client(exchange, key, secret).futures_get_all_orders(symbol="BTCUSDT") == []


def test_isolated_margin_holds_entry_over_leverage_and_is_locked_by_a_position(client):
    answer = client.futures_change_leverage(symbol="BTCUSDT", leverage=10)
    assert (answer["leverage"], answer["symbol"]) == (10, "BTCUSDT")
    client.futures_change_margin_type(symbol="BTCUSDT", marginType="ISOLATED")
    order = _market(client, quantity="0.020", newOrderRespType="RESULT")
    [row] = client.futures_position_information(symbol="BTCUSDT")
    entry = float(row["entryPrice"])
    assert entry == float(order["avgPrice"])
    assert (row["marginType"], row["leverage"], row["positionAmt"]) == ("isolated", "10", "0.020")
    assert float(row["isolatedWallet"]) == pytest.approx(0.020 * entry / 10, abs=1e-8)
    locked = _code(client.futures_change_margin_type, symbol="BTCUSDT", marginType="CROSSED")
    assert locked == (400, -4048)
    same = _code(client.futures_change_margin_type, symbol="BTCUSDT", marginType="ISOLATED")
    assert same == (400, -4046)
    _market(client, side="SELL", quantity="0.020", reduceOnly="true")
    client.futures_change_margin_type(symbol="BTCUSDT", marginType="CROSSED")  # flat: allowed
    [flat] = client.futures_position_information(symbol="BTCUSDT", version=2)
    assert (flat["marginType"], flat["positionAmt"], flat["isolatedWallet"]) == (
        "cross", "0.000", "0.00000000",
    )  # fmt: skip


def _order_counts(client: Client) -> tuple[int, int]:
    headers = client.response.headers
    return int(headers["X-MBX-ORDER-COUNT-10S"]), int(headers["X-MBX-ORDER-COUNT-1M"])


def test_order_count_headers_grow_with_each_order(client):
    counts = []
    for side in ("BUY", "SELL", "BUY"):
        _market(client, side=side)
        counts.append(_order_counts(client))
    resting = _rest_limit(client)
    counts.append(_order_counts(client))
    client.futures_modify_order(
        symbol="BTCUSDT", orderId=resting["orderId"], side="BUY", quantity="0.020",
        price=resting["price"],
    )  # fmt: skip
    counts.append(_order_counts(client))
    assert counts == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    client.futures_get_open_orders(symbol="BTCUSDT")  # a query places nothing
    assert "X-MBX-ORDER-COUNT-10S" not in client.response.headers


def test_the_301st_order_within_ten_seconds_is_refused_with_1015(client):
    started, refused = time.monotonic(), []
    for n in range(301):
        side = "BUY" if n % 2 == 0 else "SELL"
        try:
            client.futures_create_order(symbol="ETHUSDT", side=side, type="MARKET",
                                        quantity="0.010")  # fmt: skip
        except BinanceAPIException as error:
            refused.append((n, error.status_code, error.code))
    assert time.monotonic() - started < 9
    assert refused == [(300, 429, -1015)]
    assert len(client.futures_get_all_orders(symbol="ETHUSDT", limit=1000)) == 300


def _fault(exchange, **params) -> None:
    response = requests.post(exchange.rest_url + "/_demo/fault/order", params=params, timeout=5)
    assert response.status_code == 200


def test_reject_fault_refuses_the_next_orders_only(client, exchange):
    _fault(exchange, mode="reject", code="-2019", count="2")
    assert _code(_market, client) == (400, -2019)
    assert _code(_rest_limit, client) == (400, -2019)
    assert client.futures_get_all_orders(symbol="BTCUSDT") == []
    assert _market(client, newOrderRespType="RESULT")["status"] == "FILLED"
    _fault(exchange, mode="reject", code="-1015")
    assert _code(_market, client) == (429, -1015)  # as the real limit answers


def test_silent_fault_keeps_the_order_and_a_query_finds_it_once(exchange, account):
    impatient = _client(exchange, *account, timeout=1)
    _fault(exchange, mode="silent", hold_s="2")
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        _market(impatient, newClientOrderId="lost-answer-1")
    assert time.monotonic() - started < 1.9
    client = _client(exchange, *account)
    found = client.futures_get_order(symbol="BTCUSDT", origClientOrderId="lost-answer-1")
    assert (found["status"], found["executedQty"]) == ("FILLED", "0.010")
    rows = client.futures_get_all_orders(symbol="BTCUSDT")
    assert [r["clientOrderId"] for r in rows] == ["lost-answer-1"]
    [position] = client.futures_position_information(symbol="BTCUSDT")
    assert position["positionAmt"] == "0.010"


def test_delay_fault_holds_the_answer_back(client, exchange):
    _fault(exchange, mode="delay", ms="500")
    started = time.monotonic()
    order = _market(client, newOrderRespType="RESULT")
    assert time.monotonic() - started >= 0.5
    assert order["status"] == "FILLED"
    started = time.monotonic()
    _market(client, side="SELL")
    assert time.monotonic() - started < 0.5  # one order only


@pytest.mark.parametrize("query", ["mode=x", "mode=reject&code=nope", "mode=delay&ms=soon"])
def test_fault_switch_refuses_what_it_cannot_do(exchange, query):
    response = requests.post(f"{exchange.rest_url}/_demo/fault/order?{query}", timeout=5)
    assert response.status_code == 400
