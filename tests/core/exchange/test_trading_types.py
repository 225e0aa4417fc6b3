"""Trading types: request checks and wire parameters, client ids, strict parsers of Binance JSON.

The sample payloads follow Binance's USDT-M documentation field by field.
"""

import copy
from decimal import Decimal

import pytest

from core.errors import InvalidOrderError, MalformedPayloadError
from core.exchange.order_requests import AlgoOrderRequest, OrderRequest, client_order_id
from core.exchange.trading_types import (
    AlgoStatus,
    ExecutionType,
    OrderStatus,
    WorkingType,
    order_state,
    parse_algo_order,
    parse_balance,
    parse_brackets,
    parse_fill,
    parse_order,
    parse_position,
)
from core.exchange.user_events import (
    AccountUpdate,
    AlgoUpdate,
    ListenKeyExpired,
    OrderUpdate,
    parse_user_event,
)
from core.models import CLIENT_ORDER_ID_PATTERN, OrderState, OrderType, Side, TimeInForce

pytestmark = pytest.mark.timeout(10)
D = Decimal

REST_ORDER = {
    "orderId": 8000000001, "symbol": "BTCUSDT", "status": "PARTIALLY_FILLED",
    "clientOrderId": "sma-1700000000000-entry", "price": "41000.10", "avgPrice": "41000.10000",
    "origQty": "0.010", "executedQty": "0.004", "cumQty": "0.004", "cumQuote": "164.00040",
    "timeInForce": "GTX", "type": "LIMIT", "reduceOnly": False, "closePosition": False,
    "side": "BUY", "positionSide": "BOTH", "stopPrice": "0", "workingType": "CONTRACT_PRICE",
    "priceProtect": False, "origType": "LIMIT", "priceMatch": "NONE",
    "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0, "updateTime": 1700000000123,
}  # fmt: skip
REST_ALGO = {
    "algoId": 4000000001, "clientAlgoId": "sma-1700000000000-stop", "algoType": "CONDITIONAL",
    "orderType": "STOP_MARKET", "symbol": "BTCUSDT", "side": "SELL", "positionSide": "BOTH",
    "timeInForce": "GTC", "quantity": "0.000", "algoStatus": "NEW", "triggerPrice": "39000.00",
    "price": "0.00", "icebergQuantity": None, "workingType": "MARK_PRICE", "priceMatch": "NONE",
    "closePosition": True, "priceProtect": False, "reduceOnly": False, "activatePrice": "",
    "callbackRate": "", "createTime": 1700000000200, "updateTime": 1700000000200,
    "triggerTime": 0, "goodTillDate": 0, "actualOrderId": "",
}  # fmt: skip
ORDER_TRADE_UPDATE = {
    "e": "ORDER_TRADE_UPDATE", "E": 1700000001000, "T": 1700000000999,
    "o": {"s": "BTCUSDT", "c": "sma-1700000000000-entry", "S": "BUY", "o": "LIMIT", "f": "GTC",
          "q": "0.010", "p": "41000.10", "ap": "41000.10", "sp": "0", "x": "TRADE",
          "X": "FILLED", "i": 8000000001, "l": "0.006", "z": "0.010", "L": "41000.10",
          "n": "0.04920012", "N": "USDT", "T": 1700000000999, "t": 600000002, "b": "0",
          "a": "0", "m": True, "R": False, "wt": "CONTRACT_PRICE", "ot": "LIMIT", "ps": "BOTH",
          "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "EXPIRE_MAKER",
          "pm": "NONE", "gtd": 0},
}  # fmt: skip
ACCOUNT_UPDATE = {
    "e": "ACCOUNT_UPDATE", "E": 1700000001000, "T": 1700000000999,
    "a": {"m": "ORDER",
          "B": [{"a": "USDT", "wb": "2499.95079988", "cw": "2499.95079988", "bc": "0"}],
          "P": [{"s": "BTCUSDT", "pa": "0.010", "ep": "41000.10", "bep": "41004.1", "cr": "0",
                 "up": "-0.00100000", "mt": "cross", "iw": "0", "ps": "BOTH"}]},
}  # fmt: skip
ALGO_UPDATE = {
    "e": "ALGO_UPDATE", "T": 1700000002000, "E": 1700000002001,
    "o": {"caid": "sma-1700000000000-stop", "aid": 4000000001, "at": "CONDITIONAL",
          "o": "STOP_MARKET", "s": "BTCUSDT", "S": "SELL", "ps": "BOTH", "f": "GTC",
          "q": "0.000", "X": "TRIGGERED", "ai": "8000000002", "ap": "38990.00", "aq": "0.010",
          "act": "MARKET", "tp": "39000.00", "p": "0.00", "V": "EXPIRE_MAKER",
          "wt": "MARK_PRICE", "pm": "NONE", "cp": True, "pP": False, "R": False, "tt": 0,
          "gtd": 0},
}  # fmt: skip


# ---- client ids -----------------------------------------------------------------------------


def test_client_ids_join_their_parts_and_are_deterministic():
    assert client_order_id("sma", 1700000000000, "entry") == "sma-1700000000000-entry"
    assert client_order_id("bot one!", 5) == "botone-5"  # characters Binance refuses dropped


def test_long_client_ids_keep_a_readable_prefix_and_a_hash():
    long_id = client_order_id("a-very-long-bot-name-for-btcusdt", 1700000000000, "take-profit")
    assert len(long_id) == 36 and CLIENT_ORDER_ID_PATTERN.fullmatch(long_id)
    assert long_id.startswith("a-very-long-bot-name-for-_")
    again = client_order_id("a-very-long-bot-name-for-btcusdt", 1700000000000, "take-profit")
    assert again == long_id
    other = client_order_id("a-very-long-bot-name-for-btcusdt", 1700000000000, "stop-loss")
    assert other != long_id and other[:25] == long_id[:25]


def test_a_client_id_needs_a_usable_character():
    with pytest.raises(ValueError):
        client_order_id("!!", "??")


# ---- requests -------------------------------------------------------------------------------


def test_a_limit_request_sends_binance_parameters():
    request = OrderRequest(
        "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.010"), "sma-1-entry",
        price=D("41000.10"), time_in_force=TimeInForce.GTX, reduce_only=True,
    )  # fmt: skip
    assert request.params() == {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010",
        "price": "41000.10", "timeInForce": "GTX", "reduceOnly": "true",
        "newClientOrderId": "sma-1-entry",
    }  # fmt: skip


def test_a_market_request_has_no_price_or_time_in_force_and_no_exponents():
    request = OrderRequest("BTCUSDT", Side.SELL, OrderType.MARKET, D("1E-3"), "m-1")
    assert request.params() == {
        "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.001",
        "newClientOrderId": "m-1",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": OrderType.LIMIT}, "precio"),  # LIMIT without a price
        ({"type": OrderType.MARKET, "price": D(1)}, "precio"),
        ({"type": OrderType.MARKET, "time_in_force": TimeInForce.IOC}, "tiempo_en_vigor"),
        ({"type": OrderType.STOP_MARKET}, "tipo"),  # conditional: the algo API
        ({"type": OrderType.LIMIT, "price": D(1), "time_in_force": TimeInForce.GTD},
         "vigencia_hasta"),
        ({"type": OrderType.MARKET, "client_order_id": "x" * 37}, "id_cliente"),
        ({"type": OrderType.MARKET, "client_order_id": "has space"}, "id_cliente"),
        ({"type": OrderType.MARKET, "quantity": D(0)}, "cantidad"),
    ],
)  # fmt: skip
def test_requests_binance_would_refuse_name_the_field(kwargs, field):
    base = {"symbol": "BTCUSDT", "side": Side.BUY, "quantity": D("0.01"), "client_order_id": "a"}
    with pytest.raises(InvalidOrderError) as caught:
        OrderRequest(**{**base, **kwargs})
    assert caught.value.field == field


def test_a_close_position_stop_sends_no_quantity():
    stop = AlgoOrderRequest("BTCUSDT", Side.SELL, OrderType.STOP_MARKET, "s-1",
                            trigger_price=D("39000.0"), working_type=WorkingType.MARK_PRICE,
                            close_position=True)  # fmt: skip
    assert stop.params() == {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
        "clientAlgoId": "s-1", "workingType": "MARK_PRICE", "triggerPrice": "39000.0",
        "closePosition": "true",
    }  # fmt: skip


def test_a_trailing_stop_sends_its_callback_and_activation_price():
    trail = AlgoOrderRequest("ETHUSDT", Side.SELL, OrderType.TRAILING_STOP_MARKET, "t-1",
                             quantity=D("0.5"), callback_rate=D("1.5"),
                             activate_price=D("2500"), reduce_only=True)  # fmt: skip
    params = trail.params()
    assert (params["callbackRate"], params["activatePrice"], params["quantity"]) == (
        "1.5",
        "2500",
        "0.5",
    )
    assert params["reduceOnly"] == "true" and "triggerPrice" not in params


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"close_position": True, "quantity": D(1)}, "cantidad"),
        ({"quantity": None}, "cantidad"),
        ({"quantity": D(1), "trigger_price": None}, "precio_disparo"),
        ({"quantity": D(1), "type": OrderType.LIMIT}, "tipo"),
        ({"quantity": D(1), "client_algo_id": "é"}, "id_cliente"),
        ({"close_position": True, "type": OrderType.STOP, "price": D(1)}, "cerrar_posicion"),
    ],
)
def test_algo_requests_binance_would_refuse_name_the_field(kwargs, field):
    base = {"symbol": "BTCUSDT", "side": Side.SELL, "type": OrderType.STOP_MARKET,
            "client_algo_id": "s-1", "trigger_price": D("39000")}  # fmt: skip
    with pytest.raises(InvalidOrderError) as caught:
        AlgoOrderRequest(**{**base, **kwargs})
    assert caught.value.field == field


# ---- REST parsers ---------------------------------------------------------------------------


def test_an_order_parses_with_exact_decimals_and_core_enums():
    order = parse_order(REST_ORDER)
    assert (order.order_id, order.client_order_id, order.side, order.type) == (
        8000000001,
        "sma-1700000000000-entry",
        Side.BUY,
        OrderType.LIMIT,
    )
    assert (order.price, order.orig_qty, order.executed_qty) == (D("41000.10"), D("0.010"),
                                                                 D("0.004"))  # fmt: skip
    assert (order.status, order.state, order.time_in_force) == (
        OrderStatus.PARTIALLY_FILLED,
        OrderState.PARTIAL,
        TimeInForce.GTX,
    )
    assert order.update_time == 1700000000123 and order.reduce_only is False


@pytest.mark.parametrize(
    ("key", "value"),
    [("price", None), ("price", "abc"), ("price", "NaN"), ("orderId", "12a"), ("orderId", True),
     ("status", "PENDING"), ("side", "compra"), ("reduceOnly", "yes"), ("type", "ICEBERG")],
)  # fmt: skip
def test_a_malformed_order_names_its_field_never_zero(key, value):
    payload = dict(REST_ORDER)
    if value is None:
        del payload[key]
    else:
        payload[key] = value
    with pytest.raises(MalformedPayloadError) as caught:
        parse_order(payload)
    assert caught.value.field == key and key in str(caught.value)


def test_an_algo_order_reads_empty_strings_as_none():
    algo = parse_algo_order(REST_ALGO)
    assert (algo.algo_id, algo.order_type, algo.algo_status) == (
        4000000001,
        OrderType.STOP_MARKET,
        AlgoStatus.NEW,
    )
    assert (algo.trigger_price, algo.working_type, algo.close_position) == (
        D("39000.00"),
        WorkingType.MARK_PRICE,
        True,
    )
    assert (algo.activate_price, algo.callback_rate, algo.actual_order_id) == (None, None, None)
    triggered = parse_algo_order({**REST_ALGO, "algoStatus": "TRIGGERED", "actualOrderId": "77"})
    assert triggered.actual_order_id == 77


def test_positions_balances_fills_and_brackets_parse():
    position = parse_position({
        "symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "-0.010",
        "entryPrice": "41000.1", "breakEvenPrice": "41016.5", "markPrice": "40990.00",
        "unRealizedProfit": "0.10100000", "liquidationPrice": "120000.5", "notional": "-409.9",
        "marginAsset": "USDT", "updateTime": 1700000000300,
    })  # fmt: skip
    assert (position.amount, position.unrealized_pnl) == (D("-0.010"), D("0.10100000"))
    balance = parse_balance({
        "accountAlias": "x", "asset": "USDT", "balance": "2500.00000000",
        "crossWalletBalance": "2500.00000000", "crossUnPnl": "0.00000000",
        "availableBalance": "2400.5", "maxWithdrawAmount": "2400.5", "marginAvailable": True,
        "updateTime": 0,
    })  # fmt: skip
    assert (balance.asset, balance.wallet_balance, balance.available_balance) == (
        "USDT",
        D("2500.00000000"),
        D("2400.5"),
    )
    fill = parse_fill({
        "buyer": True, "commission": "0.0164", "commissionAsset": "USDT", "id": 600000001,
        "maker": False, "orderId": 8000000001, "price": "41000.10", "qty": "0.004",
        "quoteQty": "164.0004", "realizedPnl": "0", "side": "BUY", "positionSide": "BOTH",
        "symbol": "BTCUSDT", "time": 1700000000400,
    })  # fmt: skip
    assert (fill.id, fill.order_id, fill.qty, fill.maker) == (600000001, 8000000001, D("0.004"),
                                                              False)  # fmt: skip
    symbol, tiers = parse_brackets({"symbol": "BTCUSDT", "brackets": [
        {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
         "maintMarginRatio": 0.004, "cum": 0.0}]})  # fmt: skip
    assert symbol == "BTCUSDT" and tiers[0].maint_margin_ratio == D("0.004")
    with pytest.raises(MalformedPayloadError):
        parse_brackets({"symbol": "BTCUSDT", "brackets": {"bracket": 1}})


def test_every_binance_status_maps_to_a_kryptelion_state():
    assert {s: order_state(s) for s in OrderStatus} == {
        OrderStatus.NEW: OrderState.OPEN,
        OrderStatus.PARTIALLY_FILLED: OrderState.PARTIAL,
        OrderStatus.FILLED: OrderState.FILLED,
        OrderStatus.CANCELED: OrderState.CANCELED,
        OrderStatus.EXPIRED: OrderState.EXPIRED,
        OrderStatus.EXPIRED_IN_MATCH: OrderState.EXPIRED,
        OrderStatus.REJECTED: OrderState.REJECTED,
    }


# ---- user stream events ---------------------------------------------------------------------


def test_an_order_trade_update_parses_every_field_it_uses():
    event = parse_user_event(ORDER_TRADE_UPDATE)
    assert isinstance(event, OrderUpdate)
    assert (event.execution_type, event.status, event.state) == (
        ExecutionType.TRADE,
        OrderStatus.FILLED,
        OrderState.FILLED,
    )
    assert (event.last_qty, event.cum_qty, event.last_price) == (D("0.006"), D("0.010"),
                                                                 D("41000.10"))  # fmt: skip
    assert (event.commission, event.commission_asset, event.maker) == (D("0.04920012"), "USDT",
                                                                       True)  # fmt: skip
    assert (event.trade_id, event.transaction_time, event.original_type) == (
        600000002,
        1700000000999,
        OrderType.LIMIT,
    )
    assert event.activation_price is None and event.callback_rate is None


def test_an_order_update_without_a_trade_has_no_commission():
    payload = copy.deepcopy(ORDER_TRADE_UPDATE)
    for key in ("n", "N"):
        del payload["o"][key]
    payload["o"].update(x="NEW", X="NEW", l="0", z="0")
    event = parse_user_event(payload)
    assert isinstance(event, OrderUpdate)
    assert (event.commission, event.commission_asset) == (None, None)


def test_account_and_algo_updates_parse():
    account = parse_user_event(ACCOUNT_UPDATE)
    assert isinstance(account, AccountUpdate) and account.reason == "ORDER"
    assert account.balances[0].wallet_balance == D("2499.95079988")
    assert (account.positions[0].amount, account.positions[0].margin_type) == (D("0.010"),
                                                                               "cross")  # fmt: skip
    algo = parse_user_event(ALGO_UPDATE)
    assert isinstance(algo, AlgoUpdate)
    assert (algo.status, algo.actual_order_id, algo.executed_qty, algo.avg_price) == (
        AlgoStatus.TRIGGERED,
        8000000002,
        D("0.010"),
        D("38990.00"),
    )


def test_listen_key_expiry_keeps_no_key_and_unknown_events_are_none():
    event = parse_user_event({"e": "listenKeyExpired", "E": 1700000003000, "listenKey": "k" * 64})
    assert event == ListenKeyExpired(1700000003000)
    assert "k" * 64 not in repr(event)
    assert parse_user_event({"e": "MARGIN_CALL", "E": 1, "cw": "3.1", "p": []}) is None


@pytest.mark.parametrize(
    "broken",
    [
        {"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1},  # no "o"
        {**ORDER_TRADE_UPDATE, "o": {**ORDER_TRADE_UPDATE["o"], "z": "ten"}},
        {**ORDER_TRADE_UPDATE, "o": {**ORDER_TRADE_UPDATE["o"], "x": "FILL"}},
        {**ACCOUNT_UPDATE, "a": {**ACCOUNT_UPDATE["a"], "B": "USDT"}},
        {**ALGO_UPDATE, "o": {**ALGO_UPDATE["o"], "aid": None}},
        {"E": 1},  # no event type
        ["not", "an", "object"],
    ],
)
def test_malformed_events_raise(broken):
    with pytest.raises(MalformedPayloadError):
        parse_user_event(broken)
