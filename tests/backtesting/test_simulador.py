"""ejecutar_backtest on hand-computed cases: fees, slippage, reversals, SL/TP, liquidation."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtesting.simulador import ejecutar_backtest
from core.costs import apply_slippage, fee, funding_payment, liquidation_price
from core.errors import DataError
from estrategias.base import Param, Strategy

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z, a funding instant


class Fixed(Strategy):
    """Replays a given list of target positions (tests only)."""

    name = "fija"
    description = "replays positions"
    params = (Param("unused", int, 0),)

    def __init__(self, targets):
        super().__init__()
        self.targets = np.asarray(targets, dtype=float)

    @property
    def warmup(self) -> int:
        return 0

    def _positions(self, velas):
        return self.targets[: len(velas.close)]


def _velas(opens, closes=None, highs=None, lows=None, step=HOUR):
    opens = np.asarray(opens, dtype=float)
    closes = opens if closes is None else np.asarray(closes, dtype=float)
    highs = np.maximum(opens, closes) if highs is None else np.asarray(highs, dtype=float)
    lows = np.minimum(opens, closes) if lows is None else np.asarray(lows, dtype=float)
    return pd.DataFrame(
        {
            "open_time": T0 + np.arange(len(opens)) * step,
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": 1.0,
        }
    )


def _one(result):
    assert len(result.trades) == 1
    return result.trades.iloc[0]


def test_long_trade_pays_fees_on_both_sides():
    velas = _velas([100, 100, 110, 120, 120])
    result = ejecutar_backtest(velas, Fixed([1, 1, 0, 0, 0]), capital=1000, comision=0.001)
    trade = _one(result)
    assert (trade.side, trade.entry_price, trade.exit_price, trade.quantity) == (
        "long",
        100,
        120,
        10,
    )
    assert trade.entry_time == T0 + HOUR and trade.exit_time == T0 + 3 * HOUR
    assert trade.fees == pytest.approx(1.0 + 1.2)
    assert trade.pnl == pytest.approx(200 - 2.2)
    assert trade.exit_reason == "senal"
    assert result.metricas["final_equity"] == pytest.approx(1197.8)
    assert result.equity["equity"].iloc[-1] == pytest.approx(1197.8)
    # marked to market at bar 2's close: 10 x (110 - 100) - entry fee
    assert result.equity["equity"].iloc[2] == pytest.approx(1000 + 100 - 1.0)


def test_slippage_in_basis_points_worsens_both_fills_of_a_short():
    velas = _velas([100, 100, 95, 90, 90])
    result = ejecutar_backtest(
        velas, Fixed([-1, -1, 0, 0, 0]), capital=1000, comision=0, slippage=10
    )
    trade = _one(result)
    assert trade.entry_price == pytest.approx(99.9) and trade.exit_price == pytest.approx(90.09)
    assert trade.pnl == pytest.approx(1000 / 99.9 * (99.9 - 90.09))


def test_reversal_closes_and_opens_at_the_same_open_and_the_end_is_flagged():
    velas = _velas([100, 100, 105, 100], closes=[100, 104, 101, 98])
    result = ejecutar_backtest(velas, Fixed([1, -1, -1, -1]), capital=1000, comision=0.001)
    first, second = result.trades.iloc[0], result.trades.iloc[1]
    assert (first.side, first.exit_price, first.exit_reason) == ("long", 105, "senal")
    assert first.pnl == pytest.approx(50 - 1 - 1.05)
    equity = 1000 + first.pnl
    qty = equity / 105
    assert (second.side, second.entry_price, second.quantity) == ("short", 105, pytest.approx(qty))
    assert (second.exit_price, second.exit_reason) == (98, "fin")
    assert second.pnl == pytest.approx(qty * 7 - qty * 105 * 0.001 - qty * 98 * 0.001)
    assert result.metricas["open_at_end"] is True
    assert result.metricas["final_equity"] == pytest.approx(equity + second.pnl)


def test_stop_loss_exits_intrabar_and_stays_flat_until_the_signal_changes():
    velas = _velas([100, 100, 99, 97, 98], lows=[100, 99, 94, 96, 97], highs=[100, 101, 99, 99, 99])
    result = ejecutar_backtest(
        velas, Fixed([1, 1, 1, 1, 1]), capital=1000, comision=0, stop_loss=0.05
    )
    trade = _one(result)
    assert (trade.exit_price, trade.exit_reason) == (95, "stop_loss")
    assert trade.exit_time == T0 + 2 * HOUR and trade.pnl == pytest.approx(-50)
    assert result.metricas["exposure"] == pytest.approx(2 / 5)


def test_trailing_stop_follows_the_best_completed_bar_and_exits_at_its_level():
    # Entry at 100; the stop trails 5 % behind the best high of the bars already completed:
    # 95 in bar 1 (its own high of 110 is not used in it), 104.5 in bar 2, 106.4 in bar 3.
    velas = _velas([100, 100, 108, 110, 109], closes=[100, 108, 110, 109, 109],
                   highs=[100, 110, 112, 111, 110], lows=[100, 99, 105, 100, 108])  # fmt: skip
    result = ejecutar_backtest(
        velas, Fixed([1, 1, 1, 1, 1]), capital=1000, comision=0, stop_loss=0.02, trailing=0.05
    )
    trade = _one(result)
    assert (trade.exit_reason, trade.exit_time) == ("stop_movil", T0 + 3 * HOUR)
    assert trade.exit_price == pytest.approx(112 * 0.95)
    assert trade.pnl == pytest.approx(10 * (112 * 0.95 - 100))


def test_trailing_stop_of_a_short_and_the_fixed_stop_when_nearer():
    velas = _velas([100, 100, 92, 93], closes=[100, 92, 93, 93],
                   highs=[100, 101, 95, 94], lows=[100, 90, 88, 92])  # fmt: skip
    short = _one(ejecutar_backtest(velas, Fixed([-1, -1, -1, -1]), capital=1000, comision=0,
                                   trailing=0.05))  # fmt: skip
    assert (short.exit_reason, short.exit_time) == ("stop_movil", T0 + 2 * HOUR)
    assert short.exit_price == pytest.approx(90 * 1.05)
    fixed = _one(ejecutar_backtest(velas, Fixed([-1, -1, -1, -1]), capital=1000, comision=0,
                                   stop_loss=0.01, trailing=0.05))  # fmt: skip
    assert (fixed.exit_reason, fixed.exit_price) == ("stop_loss", pytest.approx(101.0))


def test_stop_that_gaps_fills_at_the_worse_open():
    velas = _velas([100, 100, 90, 91], lows=[100, 99, 89, 90])
    trade = _one(
        ejecutar_backtest(velas, Fixed([1, 1, 1, 0]), capital=1000, comision=0, stop_loss=0.05)
    )
    assert (trade.exit_price, trade.exit_reason) == (90, "stop_loss")


def test_take_profit_fills_at_its_price_with_the_maker_fee():
    velas = _velas([100, 100, 105, 108], highs=[100, 104, 111, 109])
    trade = _one(
        ejecutar_backtest(
            velas,
            Fixed([1, 1, 1, 1]),
            capital=1000,
            comision=0.001,
            comision_maker=0.0002,
            take_profit=0.1,
        )
    )
    assert (trade.exit_price, trade.exit_reason) == (pytest.approx(110), "take_profit")
    assert trade.fees == pytest.approx(10 * 100 * 0.001 + 10 * 110 * 0.0002)


def test_bar_touching_stop_and_target_is_a_counted_pessimistic_loss():
    velas = _velas([100, 100, 100, 100], highs=[100, 101, 111, 100], lows=[100, 99, 94, 100])
    result = ejecutar_backtest(
        velas, Fixed([1, 1, 1, 1]), capital=1000, comision=0, stop_loss=0.05, take_profit=0.1
    )
    assert _one(result).exit_reason == "stop_loss"
    assert result.metricas["ambiguous_bars"] == 1


def test_isolated_liquidation_loses_the_margin_and_the_entry_fee():
    # long 10x, mmr 0.4 %: liquidation price = 100 * (1 - 1/10) / (1 - 0.004)
    liq = 100 * 0.9 / 0.996
    velas = _velas([100, 100, 95, 95], lows=[100, 99, 90, 95])
    result = ejecutar_backtest(
        velas, Fixed([1, 1, 1, 1]), capital=1000, comision=0.0004, apalancamiento=10, tamano=0.5
    )
    trade = _one(result)
    assert trade.exit_reason == "liquidacion" and trade.exit_price == pytest.approx(liq)
    assert trade.quantity == pytest.approx(50)
    assert trade.pnl == pytest.approx(-500 - 5000 * 0.0004)
    assert result.metricas["liquidations"] == 1
    assert result.metricas["final_equity"] == pytest.approx(1000 - 502)


def test_short_liquidation_price_and_stop_beyond_it():
    liq = 100 * 1.5 / 1.004  # 2x short
    velas = _velas([100, 100, 140], highs=[100, 101, 160])
    trade = _one(
        ejecutar_backtest(
            velas, Fixed([-1, -1, -1]), capital=1000, comision=0, apalancamiento=2, stop_loss=0.6
        )
    )
    assert trade.exit_reason == "liquidacion" and trade.exit_price == pytest.approx(liq)


def test_funding_every_eight_hours_on_the_held_position():
    opens = 100 + np.arange(12.0)
    velas = _velas(opens)
    targets = [1] * 9 + [0] * 3  # held during bars 1-9, sold at bar 10's open (10:00)
    result = ejecutar_backtest(velas, Fixed(targets), capital=1000, comision=0, funding=0.001)
    trade = _one(result)
    qty = 1000 / 101
    assert trade.funding == pytest.approx(qty * opens[8] * 0.001)  # only 08:00 is inside
    assert trade.exit_time == T0 + 10 * HOUR
    assert trade.pnl == pytest.approx(qty * (opens[10] - 101) - trade.funding)
    series = pd.Series([0.002], index=[T0 + 8 * HOUR])
    short = _one(
        ejecutar_backtest(
            velas, Fixed([-v for v in targets]), capital=1000, comision=0, funding=series
        )
    )
    assert short.funding == pytest.approx(-qty * opens[8] * 0.002)  # shorts receive


def test_fills_fees_liquidation_and_funding_are_core_costs_numbers():
    # the paper broker and the demo exchange charge with core.costs: the backtest must agree
    opens = [100.0] * 9 + [100.0, 80.0]
    velas = _velas(opens, lows=[100.0] * 9 + [99.0, 80.0])
    result = ejecutar_backtest(
        velas, Fixed([1] * 11), capital=1000, comision=0.0005, slippage=4, apalancamiento=10,
        funding=0.001, margen_mantenimiento=0.005,
    )  # fmt: skip
    trade = _one(result)
    entry = apply_slippage(100.0, 1.0, 4)
    assert trade.entry_price == entry
    assert trade.exit_reason == "liquidacion"
    assert trade.exit_price == liquidation_price(entry, 1.0, 10.0, 0.005)
    notional_out = trade.quantity * trade.exit_price
    assert trade.fees == pytest.approx(
        fee(trade.quantity * entry, 0.0005) + fee(notional_out, 0.005), rel=1e-12
    )
    assert trade.funding == pytest.approx(funding_payment(1.0, trade.quantity, 100.0, 0.001))


def test_bad_arguments_and_candles_get_clear_errors():
    velas = _velas([100, 101, 102])
    with pytest.raises(DataError, match="stop_loss"):
        ejecutar_backtest(velas, Fixed([0, 0, 0]), stop_loss=5)
    with pytest.raises(DataError, match="apalancamiento"):
        ejecutar_backtest(velas, Fixed([0, 0, 0]), apalancamiento=500)
    from core.errors import StrategyError

    with pytest.raises(StrategyError, match="sorted"):
        ejecutar_backtest(velas.iloc[::-1], Fixed([0, 0, 0]))
    broken = velas.copy()
    broken.loc[1, "close"] = np.nan
    with pytest.raises(StrategyError, match="NaN"):
        ejecutar_backtest(broken, Fixed([0, 0, 0]))


def test_flat_strategy_keeps_capital_and_reports_no_trades():
    result = ejecutar_backtest(_velas([100, 90, 120]), Fixed([0, 0, 0]), capital=500)
    assert result.metricas["trades"] == 0 and result.metricas["final_equity"] == 500
    assert result.metricas["buy_hold_return"] == pytest.approx(0.2)


@settings(max_examples=40, deadline=None)
@pytest.mark.parametrize("trailing", [None, 0.02])
@given(
    st.lists(st.sampled_from([-1, 0, 1]), min_size=30, max_size=80),
    st.integers(min_value=0, max_value=2**31),
    st.floats(min_value=0.1, max_value=0.9),
)
def test_changing_future_bars_never_changes_the_past(trailing, targets, seed, cut):
    rng = np.random.default_rng(seed)
    n = len(targets)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    opens = np.concatenate(([100.0], close[:-1]))
    velas = _velas(opens, close, np.maximum(opens, close) * 1.01, np.minimum(opens, close) * 0.99)
    t = max(2, int(n * cut))
    changed = velas.copy()
    changed.loc[t:, ["open", "high", "low", "close"]] *= rng.uniform(0.5, 1.5, (n - t, 1))
    kwargs = dict(
        capital=1000,
        comision=0.0005,
        slippage=3,
        apalancamiento=3,
        stop_loss=0.03,
        take_profit=0.05,
        funding=0.0001,
        trailing=trailing,
    )
    a = ejecutar_backtest(velas, Fixed(targets), **kwargs)
    b = ejecutar_backtest(changed, Fixed(targets), **kwargs)
    np.testing.assert_array_equal(a.equity["equity"].iloc[:t], b.equity["equity"].iloc[:t])
    done_a = a.trades[a.trades.exit_time < velas.open_time[t]]
    done_b = b.trades[b.trades.exit_time < velas.open_time[t]]
    pd.testing.assert_frame_equal(done_a, done_b)


def test_atr_multiple_stop_uses_the_atr_known_at_the_decision_candle():
    from indicadores import atr

    n = 30
    opens = np.full(n, 100.0)
    highs, lows = opens + 1.0, opens - 1.0  # true range 2 every bar -> ATR(14) = 2
    lows[25] = 95.0  # 2 x ATR below the 100 entry is 96: touched here
    velas = _velas(opens, highs=highs, lows=lows)
    targets = [0] * 20 + [1] * 10  # decided at bar 19's close, entered at bar 20's open
    result = ejecutar_backtest(velas, Fixed(targets), capital=1000, comision=0, stop_loss="2atr")
    assert atr(highs, lows, opens, 14)[19] == pytest.approx(2.0)
    trade = _one(result)
    assert (trade.exit_price, trade.exit_reason) == (pytest.approx(96.0), "stop_loss")
    assert trade.exit_time == T0 + 25 * HOUR
    with pytest.raises(DataError, match="ATR multiple"):
        ejecutar_backtest(velas, Fixed(targets), stop_loss="2 bananas")


def test_desde_trades_only_decisions_from_that_candle_on():
    from estrategias.factory import crear_estrategia

    rng = np.random.default_rng(5)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600)))
    velas = _velas(np.concatenate(([100.0], closes[:-1])), closes)
    strategy = crear_estrategia("sma_cruce", rapida=5, lenta=20)
    start = int(velas["open_time"].iloc[300])
    full = ejecutar_backtest(velas, strategy)
    later = ejecutar_backtest(velas, strategy, desde=start)
    assert len(later.trades) and (later.trades["entry_time"] > start).all()
    assert later.equity["open_time"].iloc[0] == start and len(later.equity) == 300
    assert later.equity["equity"].iloc[0] == 10_000
    # The decisions themselves are those of the whole history (the strategy warmed up on it).
    assert np.array_equal(later.posiciones[1:], full.posiciones[301:])
    with pytest.raises(DataError, match="desde"):
        ejecutar_backtest(velas, strategy, desde=int(velas["open_time"].iloc[-1]))
    with pytest.raises(DataError, match="desde"):
        ejecutar_backtest(velas, strategy, desde="not a date")
