"""core.costs: hand-computed fees, slippage, liquidation, brackets, funding, PnL, array form."""

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from core.costs import (
    FUNDING_INTERVAL_MS,
    MAINTENANCE_MARGIN_RATE,
    MAKER_FEE,
    TAKER_FEE,
    apply_slippage,
    bracket_index,
    fee,
    funding_instants,
    funding_payment,
    liquidation_price,
    maintenance_margin,
    unrealised_pnl,
)
from core.errors import InvalidOrderError

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z


@dataclass(frozen=True)
class Tier:
    """What maintenance_margin reads of a bracket (the demo exchange's Bracket has more)."""

    cap: int
    maint_margin_ratio: float
    cum: float


# BTCUSDT's first two tiers; cum keeps the margin continuous: 50,000 x (0.005 - 0.004) = 50.
BRACKETS = (Tier(50_000, 0.004, 0.0), Tier(250_000, 0.005, 50.0))


def test_binance_base_tier_and_maintenance_defaults():
    assert (TAKER_FEE, MAKER_FEE, MAINTENANCE_MARGIN_RATE) == (0.0005, 0.0002, 0.004)
    assert FUNDING_INTERVAL_MS == 8 * HOUR


def test_fee_is_notional_times_rate():
    notional = 0.5 * 30_000  # 0.5 BTC at 30,000 = 15,000 USDT
    assert fee(notional, TAKER_FEE) == pytest.approx(7.5, rel=1e-12)
    assert fee(notional, MAKER_FEE) == pytest.approx(3.0, rel=1e-12)


def test_slippage_moves_buys_up_and_sells_down():
    assert apply_slippage(30_000.0, 1.0, 5) == pytest.approx(30_015.0, rel=1e-12)
    assert apply_slippage(30_000.0, -1.0, 5) == pytest.approx(29_985.0, rel=1e-12)
    assert apply_slippage(30_000.0, 1.0, 0) == 30_000.0


def test_liquidation_price_long_and_short_at_10x():
    # long: 30,000 x (1 - 1/10) / (1 - 0.004) = 27,000 / 0.996
    assert liquidation_price(30_000.0, 1.0, 10.0, 0.004) == pytest.approx(27_108.4337349, rel=1e-10)
    # short: 30,000 x (1 + 1/10) / (1 + 0.004) = 33,000 / 1.004
    assert liquidation_price(30_000.0, -1.0, 10.0, 0.004) == pytest.approx(
        32_868.5258964, rel=1e-10
    )
    assert liquidation_price(30_000.0, 1.0, 10.0) == liquidation_price(30_000.0, 1.0, 10.0, 0.004)


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_at_the_liquidation_price_margin_left_equals_maintenance_margin(side):
    entry, quantity, leverage, mmr = 30_000.0, 0.2, 10.0, 0.004
    price = liquidation_price(entry, side, leverage, mmr)
    margin_left = entry * quantity / leverage + unrealised_pnl(side, quantity, entry, price)
    assert margin_left == pytest.approx(quantity * price * mmr, rel=1e-12)


def test_bracket_maintenance_margin_on_two_tiers():
    assert maintenance_margin(40_000.0, BRACKETS) == pytest.approx(160.0, rel=1e-12)  # 0.4 %
    assert maintenance_margin(100_000.0, BRACKETS) == pytest.approx(450.0, rel=1e-12)  # 500 - 50
    assert maintenance_margin(-100_000.0, BRACKETS) == pytest.approx(450.0, rel=1e-12)  # a short
    assert maintenance_margin(50_000.0, BRACKETS) == pytest.approx(200.0, rel=1e-12)  # continuous
    assert bracket_index(49_999.99, BRACKETS) == 0
    assert bracket_index(50_000.0, BRACKETS) == 1  # [floor, cap)
    np.testing.assert_allclose(
        maintenance_margin(np.array([40_000.0, 100_000.0]), BRACKETS), [160.0, 450.0], rtol=1e-12
    )


def test_bracket_refuses_a_notional_above_the_last_cap_and_unsorted_brackets():
    with pytest.raises(InvalidOrderError, match="last bracket cap") as refused:
        maintenance_margin(250_000.0, BRACKETS)
    assert refused.value.field == "notional"
    with pytest.raises(ValueError, match="sorted"):
        maintenance_margin(1_000.0, BRACKETS[::-1])


@pytest.mark.parametrize(
    ("side", "rate", "expected"),
    [(1.0, 0.0001, 0.03), (-1.0, 0.0001, -0.03), (1.0, -0.0001, -0.03), (-1.0, -0.0001, 0.03)],
)
def test_funding_is_paid_by_longs_and_received_by_shorts_when_positive(side, rate, expected):
    # 0.01 BTC at 30,000 = 300 USDT of notional x 0.01 % = 0.03 USDT; positive = the position pays
    assert funding_payment(side, 0.01, 30_000.0, rate) == pytest.approx(expected, rel=1e-12)


def test_funding_instants_on_another_interval():
    four_hours = 4 * HOUR
    assert funding_instants(T0 + HOUR, T0 + 9 * HOUR, four_hours).tolist() == [
        T0 + 4 * HOUR,
        T0 + 8 * HOUR,
    ]


def test_funding_instants_across_a_day_boundary():
    start, end = T0 + 20 * HOUR, T0 + DAY + 9 * HOUR  # 2024-01-01 20:00 -> 2024-01-02 09:00
    assert funding_instants(start, end).tolist() == [T0 + DAY, T0 + DAY + 8 * HOUR]
    # an instant at the start counts, one at the end does not
    assert funding_instants(T0 + 16 * HOUR, T0 + DAY + 16 * HOUR).tolist() == [
        T0 + 16 * HOUR,
        T0 + DAY,
        T0 + DAY + 8 * HOUR,
    ]
    assert funding_instants(T0 + HOUR, T0 + 2 * HOUR).tolist() == []
    assert funding_instants(start, end).dtype == np.int64


def test_unrealised_pnl_on_the_mark_price():
    assert unrealised_pnl(1.0, 0.5, 30_000.0, 31_000.0) == pytest.approx(500.0, rel=1e-12)
    assert unrealised_pnl(-1.0, 0.5, 30_000.0, 31_000.0) == pytest.approx(-500.0, rel=1e-12)
    assert unrealised_pnl(-1.0, 0.5, 30_000.0, 29_000.0) == pytest.approx(500.0, rel=1e-12)


def test_scalars_give_floats():
    values = [
        fee(15_000.0, TAKER_FEE),
        apply_slippage(30_000.0, 1.0, 5),
        liquidation_price(30_000.0, -1.0, 10.0),
        maintenance_margin(100_000.0, BRACKETS),
        funding_payment(1.0, 0.01, 30_000.0, 0.0001),
        unrealised_pnl(1.0, 0.5, 30_000.0, 31_000.0),
    ]
    assert all(type(value) is float for value in values)


def test_array_form_equals_scalar_form_element_wise():
    rng = np.random.default_rng(7)
    n = 200
    price = rng.uniform(100, 100_000, n)
    mark = price * rng.uniform(0.8, 1.2, n)
    side = rng.choice([-1.0, 1.0], n)
    quantity = rng.uniform(0.001, 5, n)
    rate = rng.normal(0, 3e-4, n)
    leverage = rng.integers(1, 126, n).astype(float)
    notional = rng.uniform(-249_000, 249_000, n)
    cases = {
        "fee": (fee(price * quantity, rate), lambda i: fee(price[i] * quantity[i], rate[i])),
        "slippage": (
            apply_slippage(price, side, 7.5),
            lambda i: apply_slippage(price[i], side[i], 7.5),
        ),
        "liquidation": (
            liquidation_price(price, side, leverage, 0.006),
            lambda i: liquidation_price(price[i], side[i], leverage[i], 0.006),
        ),
        "maintenance": (
            maintenance_margin(notional, BRACKETS),
            lambda i: maintenance_margin(notional[i], BRACKETS),
        ),
        "funding": (
            funding_payment(side, quantity, price, rate),
            lambda i: funding_payment(side[i], quantity[i], price[i], rate[i]),
        ),
        "pnl": (
            unrealised_pnl(side, quantity, price, mark),
            lambda i: unrealised_pnl(side[i], quantity[i], price[i], mark[i]),
        ),
    }
    for name, (vector, scalar) in cases.items():
        assert isinstance(vector, np.ndarray) and vector.shape == (n,), name
        expected = [scalar(i) for i in range(n)]
        assert vector.tolist() == expected, name  # exactly, not approximately


def test_array_form_equals_plain_python_floats():
    # numpy's element-wise arithmetic rounds like Python's, so arrays match pure-float callers
    assert liquidation_price(np.array([30_000.0]), np.array([1.0]), 10.0, 0.004)[0] == (
        30_000.0 * (1 - 1 / 10.0) / (1 - 0.004)
    )
    assert funding_payment(1.0, 1.0, np.array([30_000.0, 31_000.0]), 0.0001).tolist() == [
        30_000.0 * 0.0001,
        31_000.0 * 0.0001,
    ]


def test_costs_is_pure_numpy():
    # the paper broker and the demo exchange import it: no I/O library may come along
    path = Path(__file__).resolve().parents[2] / "core" / "costs.py"
    tree = ast.parse(path.read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    tops = {name.split(".")[0] for name in imported}
    assert tops <= {"numpy", "core", "__future__"} | set(sys.stdlib_module_names)
    assert {name for name in imported if name.startswith("core")} == {"core.errors"}
    assert not tops & {"io", "os", "socket", "asyncio", "aiohttp", "requests", "sqlalchemy"}
