"""The demo exchange's Algo Order API over real sockets, through python-binance's own Client:
conditional orders placed, queried, listed, cancelled, refused, and one that triggers."""

import asyncio
import json
import time

import numpy as np
import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException
from websockets.asyncio.client import connect

from core.exchange.demo import DemoExchangeThread, DemoMarket, DemoOptions
from core.exchange.demo.auth import sign
from core.exchange.demo.market import STEP_MS
from core.intervals import MINUTE_MS

pytestmark = pytest.mark.timeout(60)

SPEED = 600  # ten demo minutes per second: a stop just inside the market fires within seconds
SEED = 42
KEYS = {f"algo-{n:02d}": f"algo-secret-{n:02d}" for n in range(20)}
TICK = 10  # BTCUSDT's 0.10 in price units (2 decimals)


@pytest.fixture(scope="module")
def exchange():
    options = DemoOptions(speed=SPEED, seed=SEED, faults=True, api_keys=KEYS, balance=10_000)
    server = DemoExchangeThread(options).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def unused_accounts():
    """The (API key, secret) pairs of the module's exchange no test has traded on yet."""
    return iter(KEYS.items())


@pytest.fixture
def account(unused_accounts) -> tuple[str, str]:
    return next(unused_accounts)


@pytest.fixture
def client(exchange, account) -> Client:
    client = Client(*account, ping=False)
    client.FUTURES_URL = exchange.rest_url + "/fapi"
    return client


def _code(call, *args, **kwargs) -> tuple[int, int]:
    with pytest.raises(BinanceAPIException) as caught:
        call(*args, **kwargs)
    return caught.value.status_code, caught.value.code


def _mark(client: Client) -> float:
    return float(client.futures_mark_price(symbol="BTCUSDT")["markPrice"])


def _btc(value: float) -> str:
    return f"{round(value, 1):.1f}"


def _stop(client: Client, **params) -> dict:
    order = {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", **params}
    return client.futures_create_algo_order(**order)


def test_stop_market_close_position_is_placed_queried_listed_and_cancelled(client):
    client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    trigger = _btc(_mark(client) * 0.95)
    algo = _stop(client, closePosition="true", triggerPrice=trigger, workingType="MARK_PRICE",
                 clientAlgoId="guard-1")  # fmt: skip
    assert (algo["algoStatus"], algo["clientAlgoId"], algo["algoType"]) == (
        "NEW", "guard-1", "CONDITIONAL",
    )  # fmt: skip
    assert (algo["orderType"], algo["closePosition"], algo["workingType"]) == (
        "STOP_MARKET", True, "MARK_PRICE",
    )  # fmt: skip
    assert float(algo["triggerPrice"]) == float(trigger) and algo["actualOrderId"] == ""
    assert "orderId" not in algo
    by_id = client.futures_get_algo_order(symbol="BTCUSDT", algoId=algo["algoId"])
    by_client = client.futures_get_algo_order(symbol="BTCUSDT", clientAlgoId="guard-1")
    [listed] = client.futures_get_open_algo_orders(symbol="BTCUSDT")
    assert by_id == by_client == listed and listed["algoId"] == algo["algoId"]
    assert client.futures_get_open_orders(symbol="BTCUSDT") == []  # not a regular order
    duplicate = _code(_stop, client, closePosition="true", triggerPrice=trigger,
                      clientAlgoId="guard-1")  # fmt: skip
    assert duplicate == (400, -4116)
    cancelled = client.futures_cancel_algo_order(symbol="BTCUSDT", algoId=algo["algoId"])
    assert (cancelled["algoId"], cancelled["code"], cancelled["msg"]) == (
        algo["algoId"], "200", "success",
    )  # fmt: skip
    again = _code(client.futures_cancel_algo_order, symbol="BTCUSDT", algoId=algo["algoId"])
    assert again == (400, -2011)
    ended = client.futures_get_algo_order(symbol="BTCUSDT", algoId=algo["algoId"])
    assert ended["algoStatus"] == "CANCELED"
    assert client.futures_get_open_algo_orders(symbol="BTCUSDT") == []
    assert _code(client.futures_get_algo_order, symbol="BTCUSDT", algoId=1) == (400, -2013)
    unknown = _code(client.futures_cancel_algo_order, symbol="BTCUSDT", algoId=1)
    assert unknown == (400, -2011)  # as a regular cancel answers


def test_cancel_all_algo_open_orders_ends_every_one_of_the_symbol(client):
    mark = _mark(client)
    stop = _stop(client, quantity="0.010", triggerPrice=_btc(mark * 0.95), reduceOnly="true")
    take = client.futures_create_algo_order(
        symbol="BTCUSDT", side="SELL", type="TAKE_PROFIT", quantity="0.010", timeInForce="GTC",
        price=_btc(mark * 1.05), triggerPrice=_btc(mark * 1.04),
    )  # fmt: skip
    trail = client.futures_create_algo_order(
        symbol="BTCUSDT", side="SELL", type="TRAILING_STOP_MARKET", quantity="0.010",
        callbackRate="1", activatePrice=_btc(mark * 1.04),
    )  # fmt: skip
    assert trail["callbackRate"] == "1" and float(trail["activatePrice"]) > mark
    # python-binance routes a conditional type sent to futures_create_order itself.
    routed = client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="STOP_MARKET", quantity="0.010",
        stopPrice=_btc(mark * 1.05),
    )  # fmt: skip
    assert (routed["orderType"], float(routed["triggerPrice"])) == (
        "STOP_MARKET", float(_btc(mark * 1.05)),
    )  # fmt: skip
    ids = [a["algoId"] for a in (stop, take, trail, routed)]
    assert [a["algoId"] for a in client.futures_get_open_algo_orders(symbol="BTCUSDT")] == ids
    answer = client.futures_cancel_all_algo_open_orders(symbol="BTCUSDT")
    assert answer == {"code": 200, "msg": "success"}
    assert client.futures_get_open_algo_orders() == []
    statuses = [
        a["algoStatus"] for a in client.futures_get_all_orders(symbol="BTCUSDT", conditional=True)
    ]
    assert statuses == ["CANCELED"] * 4


def test_conditional_orders_binance_refuses_are_refused_with_its_codes(client):
    mark = _mark(client)
    above, below = _btc(mark * 1.03), _btc(mark * 0.97)
    refusals = [
        ("sell stop above the market", {"quantity": "0.010", "triggerPrice": above}, -2021),
        (
            "buy stop below the market",
            {"side": "BUY", "quantity": "0.010", "triggerPrice": below},
            -2021,
        ),
        (
            "sell take-profit below",
            {"type": "TAKE_PROFIT_MARKET", "quantity": "0.010", "triggerPrice": below},
            -2021,
        ),
        (
            "quantity with closePosition",
            {"closePosition": "true", "quantity": "0.010", "triggerPrice": below},
            -4137,
        ),
        (
            "closePosition on a limit stop",
            {"type": "STOP", "closePosition": "true", "price": below, "triggerPrice": below},
            -1106,
        ),
        ("no trigger price", {"quantity": "0.010"}, -1102),
        ("no quantity", {"triggerPrice": below}, -1102),
        ("trigger off the tick", {"quantity": "0.010", "triggerPrice": f"{below}5"}, -4014),
        (
            "callback rate over 10",
            {"type": "TRAILING_STOP_MARKET", "quantity": "0.010", "callbackRate": "11"},
            -1130,
        ),
        (
            "bad working type",
            {"quantity": "0.010", "triggerPrice": below, "workingType": "LAST"},
            -1130,
        ),
    ]
    for name, params, expected in refusals:
        assert _code(_stop, client, **params) == (400, expected), name
    assert client.futures_get_all_orders(symbol="BTCUSDT", conditional=True) == []


def test_a_regular_type_on_the_algo_endpoint_is_refused(exchange, account):
    key, secret = account
    query = (f"symbol=BTCUSDT&side=BUY&type=LIMIT&algoType=CONDITIONAL&quantity=0.010"
             f"&price=50000.0&timestamp={int(time.time() * 1000)}")  # fmt: skip
    url = f"{exchange.rest_url}/fapi/v1/algoOrder?{query}&signature={sign(secret, query)}"
    response = requests.post(url, headers={"X-MBX-APIKEY": key}, timeout=5)
    assert (response.status_code, response.json()["code"]) == (400, -1116)


# -- a stop that triggers -------------------------------------------------------------------

LATE_MS = 6 * MINUTE_MS  # the stop is placed within this much demo time (0.6 s real)
HORIZON_MS = 30 * MINUTE_MS  # ... and triggers within this much (3 s real)


def _path(start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(demo instants, BTCUSDT prices) of the demo market's path, as the engine walks it."""
    market = DemoMarket(SEED)
    first = start_ms - start_ms % MINUTE_MS
    minutes = range(first, end_ms, MINUTE_MS)
    prices = np.concatenate([market.minute_prices("BTCUSDT", m)[:-1] for m in minutes])
    times = first + STEP_MS * np.arange(len(prices))
    return times, prices


def _plan_stop(now_ms: int) -> tuple[str, int]:
    """(entry side, trigger in price units) of a stop placed just after `now_ms` that the
    market's own future path reaches: between the extreme before the stop is placed and the
    extreme after it, on whichever side leaves more room."""
    times, prices = _path(now_ms, now_ms + HORIZON_MS)
    soon = prices[(times >= now_ms - MINUTE_MS) & (times <= now_ms + LATE_MS)]
    later = prices[times > now_ms + LATE_MS]
    long_room, short_room = int(soon.min() - later.min()), int(later.max() - soon.max())
    assert max(long_room, short_room) > 4 * TICK, "the demo path hardly moves: replan"
    if long_room >= short_room:
        return "BUY", (int(soon.min()) - long_room // 2) // TICK * TICK
    return "SELL", -(-(int(soon.max()) + short_room // 2) // TICK) * TICK


async def _until_finished(ws, algo_id: int) -> list[dict]:
    """Order, trade and algo events (funding aside) up to the algo order's FINISHED update."""
    seen: list[dict] = []
    while True:
        event = json.loads(await ws.recv())
        if event["e"] == "ACCOUNT_UPDATE" and event["a"]["m"] == "FUNDING_FEE":
            continue  # eight demo hours pass every 48 s here
        seen.append(event)
        if event["e"] == "ALGO_UPDATE" and (event["o"]["aid"], event["o"]["X"]) == (
            algo_id, "FINISHED",
        ):  # fmt: skip
            return seen


def _shape(event: dict) -> tuple:
    o = event.get("o", {})
    if event["e"] == "ORDER_TRADE_UPDATE":
        return event["e"], o["i"], o["x"], o["X"]
    if event["e"] == "ALGO_UPDATE":
        return event["e"], o["aid"], o["X"]
    return event["e"], event["a"]["P"][0]["pa"]


def test_a_stop_just_inside_the_market_triggers_and_closes_the_position(client, exchange):
    side, trigger = _plan_stop(client.futures_time()["serverTime"])
    close_side = "SELL" if side == "BUY" else "BUY"
    key = client.futures_stream_get_listen_key()  # lives 6 s at this speed: enough

    async def scenario():
        async with connect(f"{exchange.ws_url}/private/ws?listenKey={key}") as ws:
            entry = client.futures_create_order(
                symbol="BTCUSDT", side=side, type="MARKET", quantity="0.010",
                newOrderRespType="RESULT",
            )  # fmt: skip
            algo = client.futures_create_algo_order(
                symbol="BTCUSDT", side=close_side, type="STOP_MARKET", closePosition="true",
                triggerPrice=f"{trigger / 100:.2f}", workingType="MARK_PRICE",
                clientAlgoId="fires-1",
            )  # fmt: skip
            assert algo["algoStatus"] == "NEW"
            return entry, algo, await asyncio.wait_for(_until_finished(ws, algo["algoId"]), 10)

    entry, algo, events = asyncio.run(asyncio.wait_for(scenario(), 20))
    done = client.futures_get_algo_order(symbol="BTCUSDT", algoId=algo["algoId"])
    assert done["algoStatus"] == "FINISHED" and done["actualOrderId"]
    assert done["triggerTime"] >= done["createTime"] and done["executedQty"] == "0.010"
    child = client.futures_get_order(symbol="BTCUSDT", orderId=int(done["actualOrderId"]))
    assert (child["status"], child["type"], child["origType"], child["clientOrderId"]) == (
        "FILLED", "MARKET", "STOP_MARKET", "fires-1",
    )  # fmt: skip
    assert (child["closePosition"], child["reduceOnly"], child["side"]) == (True, True, close_side)
    entry_id, algo_id, child_id = entry["orderId"], algo["algoId"], child["orderId"]
    amount = "0.010" if side == "BUY" else "-0.010"
    assert [_shape(e) for e in events] == [
        ("ORDER_TRADE_UPDATE", entry_id, "NEW", "NEW"),
        ("ORDER_TRADE_UPDATE", entry_id, "TRADE", "FILLED"),
        ("ACCOUNT_UPDATE", amount),
        ("ALGO_UPDATE", algo_id, "NEW"),
        ("ALGO_UPDATE", algo_id, "TRIGGERED"),
        ("ORDER_TRADE_UPDATE", child_id, "NEW", "NEW"),
        ("ORDER_TRADE_UPDATE", child_id, "TRADE", "FILLED"),
        ("ACCOUNT_UPDATE", "0.000"),
        ("ALGO_UPDATE", algo_id, "FINISHED"),
    ]
    assert events[4]["o"]["ai"] == events[8]["o"]["ai"] == str(child_id)
    assert events[8]["o"]["aq"] == "0.010"
    assert client.futures_position_information(symbol="BTCUSDT") == []
    opened, closed = client.futures_account_trades(symbol="BTCUSDT")
    assert (opened["orderId"], closed["orderId"]) == (entry_id, child_id)
    exit_price, entry_price = float(closed["price"]), float(entry["avgPrice"])
    direction = 1 if side == "BUY" else -1
    assert direction * (trigger / 100 - exit_price) >= 0  # it fired at or through the trigger
    pnl = direction * (exit_price - entry_price) * 0.010
    assert float(closed["realizedPnl"]) == pytest.approx(pnl, abs=1e-6)
    assert float(events[6]["o"]["rp"]) == pytest.approx(pnl, abs=1e-6)
    assert float(closed["commission"]) == pytest.approx(exit_price * 0.010 * 0.0005, abs=1e-8)
    assert client.futures_get_open_algo_orders(symbol="BTCUSDT") == []
