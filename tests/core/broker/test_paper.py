"""The paper simulator against the backtester: the same trades, bar by bar, to the last float."""

import numpy as np
import pytest

from backtesting.engine import simulate
from core.broker.paper import Bar, PaperSimulator
from core.fills import EXIT_REASONS, Costs


def _market(seed: int, n: int):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.0005, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n)))
    target = np.sign(np.sin(np.arange(n) / 11.0) + rng.normal(0, 0.6, n))
    rate = np.where(np.arange(n) % 8 == 0, rng.normal(0.0001, 0.0002, n), 0.0)
    distance = np.abs(rng.normal(0.6, 0.2, n))
    return open_, high, low, close, target, rate, distance


CASES = [
    dict(costs=Costs(), stops={}),
    dict(costs=Costs(slippage_bps=3, leverage=5, size=0.5), stops={"stop_loss": 0.01}),
    dict(costs=Costs(leverage=3), stops={"stop_loss": 0.008, "take_profit": 0.012}),
    dict(costs=Costs(leverage=60, taker_fee=0.0005), stops={"take_profit": 0.02}),
    dict(costs=Costs(slippage_bps=1, leverage=2), stops={"absolute": True}),
    dict(costs=Costs(slippage_bps=2, leverage=3), stops={"trailing": 0.005}),
    dict(
        costs=Costs(leverage=2), stops={"stop_loss": 0.004, "take_profit": 0.01, "trailing": 0.006}
    ),  # fmt: skip
    dict(costs=Costs(leverage=4), stops={"absolute": True, "trailing": 0.003}),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_paper_trades_equal_the_backtest_of_the_same_bars(case, seed):
    open_, high, low, close, target, rate, distance = _market(seed, 3000)
    costs, stops = case["costs"], dict(case["stops"])
    absolute = stops.pop("absolute", False)
    trailing = stops.pop("trailing", None)
    sim_stop = distance if absolute else stops.get("stop_loss")
    sim_take = 2 * distance if absolute else stops.get("take_profit")
    expected = simulate(
        open_, high, low, close, target, 10_000, costs, sim_stop, sim_take, rate, trailing
    )

    paper = PaperSimulator(
        10_000, costs, stops.get("stop_loss"), stops.get("take_profit"), trailing
    )
    for j in range(len(close)):
        bar = Bar(j * 60_000, open_[j], high[j], low[j], close[j])
        paper.step(
            bar,
            target[j],
            stop_distance=distance[j] if absolute else None,
            take_distance=2 * distance[j] if absolute else None,
            funding_rate=rate[j],
        )

    trades = paper.closed + ([paper.trade] if paper.trade else [])
    assert len(trades) == len(expected.entry_bar) > 50
    reasons = {EXIT_REASONS[k] for k in expected.reason}
    assert len(reasons) >= (2 if stops or absolute or trailing else 1)
    assert ("stop_movil" in reasons) == (trailing is not None)
    for k, trade in enumerate(trades):
        assert trade.entry_bar == expected.entry_bar[k]
        assert trade.side == expected.side[k]
        assert trade.entry_price == expected.entry_price[k]
        assert trade.quantity == pytest.approx(expected.quantity[k], rel=1e-12)
        if trade.is_open:  # the backtest closes it at the last close ("fin")
            assert EXIT_REASONS[expected.reason[k]] == "fin" and k == len(trades) - 1
            continue
        assert trade.exit_bar == expected.exit_bar[k]
        assert trade.reason == EXIT_REASONS[expected.reason[k]]
        assert trade.exit_price == expected.exit_price[k]
        assert trade.pnl == pytest.approx(expected.pnl[k], rel=1e-9, abs=1e-9)
        assert trade.fees == pytest.approx(expected.fees[k], rel=1e-9, abs=1e-12)
        assert trade.funding == pytest.approx(expected.funding[k], rel=1e-9, abs=1e-12)
    assert paper.ambiguous_bars <= expected.ambiguous_bars


def test_the_first_decision_fills_at_the_next_open_never_at_its_own_close():
    paper = PaperSimulator(1_000, Costs(taker_fee=0.0, maker_fee=0.0))
    assert paper.step(Bar(0, 10, 11, 9, 10.5), target=1) == []
    [entry] = paper.step(Bar(60_000, 10.6, 11, 10, 10.8), target=1)
    assert (entry.entry_bar, entry.entry_price, entry.quantity) == (1, 10.6, 1_000 / 10.6)
    assert paper.step(Bar(120_000, 11.0, 11.2, 10.9, 11.1), target=0) == []
    assert paper.trade is not None  # decided at that close, the exit fills at the next open
    [closed] = paper.step(Bar(180_000, 11.5, 11.6, 11.4, 11.5), target=0)
    assert (closed.exit_bar, closed.exit_price, closed.reason) == (3, 11.5, "senal")
    assert closed.pnl == pytest.approx(1_000 * (11.5 / 10.6 - 1))
