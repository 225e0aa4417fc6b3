"""The compiled per-bar loops against plain numpy: the same equity bit for bit, the statistics
of the fused pass equal to those of the stand-alone one, and the drawdown episodes of a running
maximum."""

import math

import numpy as np
import pytest

from backtesting.kernels import PEAK_BLOCK, STATS_BLOCK, equity_stats, fill_equity
from backtesting.metricas import compute_metrics
from backtesting.simulador import ejecutar_backtest
from benchmarks.synthetic import synthetic
from estrategias.factory import crear_estrategia
from tests.backtesting.test_metricas import _trades


def _regions(rng: np.random.Generator, n: int, funded: bool):
    """Random regions covering n bars (empty ones included), half of them with a closing value."""
    cuts = np.sort(rng.integers(0, n + 1, size=rng.integers(1, 60)))
    lengths = np.diff(np.concatenate(([0], cuts, [n])))
    k = len(lengths)
    level, gain = rng.normal(1000, 50, k), rng.normal(0, 3, k)
    closing = np.where(rng.random(k) < 0.5, rng.normal(1000, 50, k), np.nan)
    close = 100 + np.cumsum(rng.normal(0, 0.5, n))
    paid = np.cumsum(rng.normal(0, 1e-3, n)) if funded else None
    since = rng.normal(0, 1e-3, k) if funded else None
    return (lengths, level, gain, closing), close, paid, since


def _plain_equity(regions, close, paid, since) -> np.ndarray:
    lengths, level, gain, closing = regions
    region = np.repeat(np.arange(len(lengths)), lengths)
    equity = gain[region] * close + level[region]
    if paid is not None:
        equity -= gain[region] * (paid - since[region])
    ends = np.cumsum(lengths) - 1
    last = (lengths > 0) & ~np.isnan(closing)
    equity[ends[last]] = closing[last]
    return equity


@pytest.mark.parametrize("funded", [False, True])
@pytest.mark.parametrize("n", [1, 7, PEAK_BLOCK + 3, STATS_BLOCK, 2 * STATS_BLOCK + 131])
def test_fill_equity_is_the_plain_construction_and_its_stats_the_stand_alone_ones(n, funded):
    rng = np.random.default_rng(n + funded)
    regions, close, paid, since = _regions(rng, n, funded)
    plain = _plain_equity(regions, close, paid, since)
    for first in sorted({0, n // 3, n - 1}):
        equity, stats = fill_equity(regions, close, paid, since, 1000.0, first)
        assert np.array_equal(equity, plain)
        assert stats == equity_stats(plain[first:], 1000.0)  # every field, bit for bit
        assert stats.bars == n - first and stats.final == plain[-1]
        # Keeping a few bars (block edges, the first and the last) builds no curve, same bits.
        keep = np.unique(np.r_[first, n - 1, rng.integers(first, n, 5),
                               np.arange(first, n, STATS_BLOCK)])  # fmt: skip
        kept, kept_stats = fill_equity(regions, close, paid, since, 1000.0, first, keep)
        assert np.array_equal(kept, plain[keep]) and kept_stats == stats
    # From the very end on nothing is kept and no region is read past the last.
    kept, stats = fill_equity(regions, close, paid, since, 1000.0, n, np.empty(0, np.int64))
    assert len(kept) == 0 and stats.bars == 0


def test_fill_equity_refuses_bars_to_keep_outside_or_out_of_order():
    regions, close, paid, since = _regions(np.random.default_rng(1), 100, False)
    for keep in ([5, 99], [20, 100], [30, 40, 35]):
        with pytest.raises(ValueError, match="keep"):
            fill_equity(regions, close, paid, since, 1000.0, 10, np.array(keep))


@pytest.mark.parametrize("bars", [3, PEAK_BLOCK * 5 + 1, 3 * STATS_BLOCK + 77])
@pytest.mark.parametrize("shape", ["noise", "rising", "falling", "flat_then_new_high"])
def test_drawdown_episodes_are_those_of_a_running_maximum(bars, shape):
    rng = np.random.default_rng(bars)
    drift = {"noise": 0.0, "rising": 5e-4, "falling": -5e-4, "flat_then_new_high": 0.0}[shape]
    equity = 100 * np.cumprod(1 + drift + 0.002 * rng.standard_normal(bars))
    if shape == "flat_then_new_high":
        equity[: bars // 2] = 100.0
        equity[-1] = equity.max() + 1
    peak = np.maximum.accumulate(equity)
    under = np.r_[False, equity < peak, False]
    edges = np.flatnonzero(np.diff(under.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    depths = [equity[a:b].min() / equity[a - 1] - 1 for a, b in zip(starts, ends, strict=True)]
    stats = equity_stats(equity, 100.0)
    assert stats.drawdowns == len(starts)
    assert stats.max_drawdown == (min(depths) if depths else 0.0)
    assert stats.longest == (int((ends - starts).max()) if len(starts) else 0)
    assert stats.length_sum == int((ends - starts).sum())
    assert stats.avg_drawdown == pytest.approx(np.mean(depths) if depths else 0.0, rel=1e-13)
    returns = equity / np.concatenate(([100.0], equity[:-1])) - 1
    assert stats.mean == pytest.approx(returns.mean(), rel=1e-12, abs=1e-18)
    if bars > 1:
        assert stats.std == pytest.approx(returns.std(ddof=1), rel=1e-12)
    assert stats.downside == pytest.approx(math.sqrt(np.mean(np.minimum(returns, 0) ** 2)))


def test_a_backtest_s_metrics_are_those_of_its_own_equity_curve():
    """ejecutar_backtest takes the statistics the simulation gathered; computing them again from
    the equity it returns gives the same bits (with `desde`, from that candle on)."""
    velas = synthetic(9_000)
    strategy = crear_estrategia("sma_cruce", rapida=5, lenta=40)
    for desde in (None, int(velas["open_time"].iloc[2_500])):
        res = ejecutar_backtest(velas, strategy, comision=0.0004, stop_loss=0.01, desde=desde)
        equity = res.equity["equity"].to_numpy()
        close = velas["close"].to_numpy()[len(velas) - len(equity) :]
        again = compute_metrics(equity_stats(equity, 10_000), close, res.metricas["exposure"],
                                60_000, 10_000, _trades(res.trades["pnl"]))  # fmt: skip
        for name in (
            "final_equity",
            "cagr",
            "sharpe",
            "sortino",
            "volatility",
            "annualized_return",
            "max_drawdown",
            "avg_drawdown",
            "max_drawdown_duration_ms",
            "avg_drawdown_duration_ms",
        ):
            assert again[name] == res.metricas[name], name
