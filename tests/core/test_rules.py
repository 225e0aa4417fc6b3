"""core.rules: every exchange filter refuses what Binance would refuse, naming itself."""

import pytest

from core.errors import FilterError
from core.models import OrderType
from core.rules import check_order, parse_rules

INFO = {
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "261.10",
                    "maxPrice": "809484",
                    "tickSize": "0.10",
                },
                {
                    "filterType": "LOT_SIZE",
                    "stepSize": "0.001",
                    "minQty": "0.001",
                    "maxQty": "1000",
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "stepSize": "0.001",
                    "minQty": "0.001",
                    "maxQty": "120",
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": "100"},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                },
            ],
        },
        {"symbol": "NEWUSDT", "status": "PENDING_TRADING", "filters": []},
    ]
}
RULES = parse_rules(INFO)
BTC = RULES["BTCUSDT"]
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET


def test_a_valid_order_passes_every_filter():
    check_order(BTC, LIMIT, 0.01, 29_500.5)
    check_order(BTC, LIMIT, 1000.0, 100_000.0, reference_price=100_000.0, open_orders=199)
    check_order(BTC, MARKET, 120.0, None, reference_price=100_000.0)


@pytest.mark.parametrize(
    ("order_type", "quantity", "price", "kwargs", "filter_name", "field"),
    [
        (LIMIT, 0.01, 29_500.55, {}, "PRICE_FILTER", "precio"),  # off the tick
        (LIMIT, 0.01, 261.0, {}, "PRICE_FILTER", "precio"),  # below minPrice
        (LIMIT, 0.01, 809_484.1, {}, "PRICE_FILTER", "precio"),  # above maxPrice
        (LIMIT, 0.01, 1e300, {}, "PRICE_FILTER", "precio"),
        (LIMIT, 0.01, None, {}, "PRICE_FILTER", "precio"),  # a limit order needs a price
        (LIMIT, 0.0005, 30_000.0, {}, "LOT_SIZE", "cantidad"),
        (LIMIT, 0.0105, 30_000.0, {}, "LOT_SIZE", "cantidad"),  # off the step
        (LIMIT, 1000.001, 30_000.0, {}, "LOT_SIZE", "cantidad"),
        (MARKET, 120.001, None, {"reference_price": 30_000.0}, "MARKET_LOT_SIZE", "cantidad"),
        (MARKET, 0.001, None, {"reference_price": 30_000.0}, "MIN_NOTIONAL", "cantidad"),
        (LIMIT, 0.001, 30_000.0, {}, "MIN_NOTIONAL", "cantidad"),
        (LIMIT, 0.01, 94_999.9, {"reference_price": 100_000.0}, "PERCENT_PRICE", "precio"),
        (LIMIT, 0.01, 105_000.1, {"reference_price": 100_000.0}, "PERCENT_PRICE", "precio"),
        (LIMIT, 0.01, 29_500.5, {"open_orders": 200}, "MAX_NUM_ORDERS", "symbol"),
    ],
)
def test_each_filter_refuses_naming_itself(order_type, quantity, price, kwargs, filter_name, field):
    with pytest.raises(FilterError) as refused:
        check_order(BTC, order_type, quantity, price, **kwargs)
    assert refused.value.filter_name == filter_name and refused.value.field == field
    assert refused.value.detail["filtro"] == filter_name
    assert str(refused.value).startswith(f"{filter_name}: ")


def test_market_lot_size_is_separate_from_lot_size():
    # 500 is inside LOT_SIZE (limit orders) but over MARKET_LOT_SIZE.maxQty (market orders).
    check_order(BTC, LIMIT, 500.0, 30_000.0)
    with pytest.raises(FilterError, match="MARKET_LOT_SIZE"):
        check_order(BTC, MARKET, 500.0, None, reference_price=30_000.0)


def test_a_symbol_not_trading_takes_no_order():
    with pytest.raises(FilterError) as refused:
        check_order(RULES["NEWUSDT"], LIMIT, 1.0, 1.0)
    assert refused.value.filter_name == "STATUS"
