"""ejecutar_backtest: run a strategy over candles with fees, slippage, funding and leverage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backtesting.engine import EXIT_REASONS, Costs, Distance, Simulation, simulate
from backtesting.metricas import compute_metrics
from core.costs import MAINTENANCE_MARGIN_RATE, funding_instants
from core.errors import DataError
from core.fills import ATR_PERIOD, atr_multiple, check_distance, check_trailing, distance
from core.intervals import to_ms
from estrategias.base import Strategy, Velas, as_velas


@dataclass(frozen=True)
class Resultado:
    """A backtest's output: per-trade table, per-candle equity, metrics and the positions used."""

    trades: pd.DataFrame
    equity: pd.DataFrame
    metricas: dict[str, Any]
    posiciones: np.ndarray


def candle_ms(open_time: np.ndarray) -> int:
    """The candles' interval: the median gap, which one missing candle does not move."""
    if len(open_time) < 2:
        raise DataError("a backtest needs at least 2 candles")
    gaps = np.diff(open_time)
    shortest = gaps.min()
    return int(shortest) if shortest == gaps.max() else int(np.median(gaps))


def _distance(value: float | str | None, name: str, velas: Velas) -> Distance:
    """The stop or target of `ejecutar_backtest` for `simulate` (ATR computed only if used)."""
    check_distance(value, name)
    per_bar = None
    if atr_multiple(value) is not None:
        from indicadores import atr

        per_bar = atr(velas.high, velas.low, velas.close, ATR_PERIOD)
    return distance(value, name, per_bar)


def _funding_per_bar(funding: Any, open_time: np.ndarray, bar_ms: int) -> np.ndarray | None:
    """Summed funding rate of the instants (every 8 h UTC) falling inside each bar."""
    if funding is None:
        return None
    instants = funding_instants(int(open_time[0]), int(open_time[-1]) + bar_ms)
    if isinstance(funding, int | float):
        rates = np.full(len(instants), float(funding))
    else:
        series = pd.Series(funding)
        if isinstance(series.index, pd.DatetimeIndex):
            series.index = series.index.as_unit("ms").asi8
        rates = series.reindex(instants).fillna(0.0).to_numpy(dtype=np.float64)
    bars = np.searchsorted(open_time, instants, side="right") - 1
    return np.bincount(bars, weights=rates, minlength=len(open_time))


def _exit_times(sim: Simulation, open_time: np.ndarray, bar_ms: int) -> np.ndarray:
    """When each trade ended: its exit bar's open, or the last candle's close for "fin"."""
    end_exit = sim.reason == EXIT_REASONS.index("fin")
    return open_time[sim.exit_bar] + np.where(end_exit, bar_ms, 0)


def trade_columns(sim: Simulation, open_time: np.ndarray, bar_ms: int) -> dict[str, np.ndarray]:
    """The per-trade arrays `compute_metrics` reads; the optimiser's sweep calls this too, so
    its metrics are those of `ejecutar_backtest` bit for bit."""
    duration = _exit_times(sim, open_time, bar_ms) - open_time[sim.entry_bar]
    return {"pnl": sim.pnl, "return": sim.trade_return, "fees": sim.fees,
            "funding": sim.funding, "duration_ms": duration, "reason": sim.reason}  # fmt: skip


def run_metrics(
    sim: Simulation, velas: Velas, bar_ms: int, capital: float, first: int = 0
) -> dict[str, Any]:
    """Every metric of a simulation over the candles from `first` on (see `desde`; the `first`
    the simulation was run with, whose equity statistics it carries)."""
    span = len(velas.close) - first
    metrics = compute_metrics(
        sim.stats, velas.close[first:], sim.bars_held(first) / span, bar_ms, capital,
        trade_columns(sim, velas.open_time, bar_ms),
    )  # fmt: skip
    metrics["ambiguous_bars"] = sim.ambiguous_bars
    return metrics


_SIDE_TYPE = pd.CategoricalDtype(["short", "long"])
_REASON_TYPE = pd.CategoricalDtype(EXIT_REASONS)


def _trades_frame(sim: Simulation, velas: Velas, bar_ms: int) -> pd.DataFrame:
    """The trade table; sides and exit reasons are categoricals built from their codes (a
    string column of 20,000 trades costs more than the whole simulation)."""
    open_time = velas.open_time
    entry_time = open_time[sim.entry_bar]
    exit_time = _exit_times(sim, open_time, bar_ms)
    return pd.DataFrame({
        "entry_time": entry_time, "exit_time": exit_time,
        "side": pd.Categorical.from_codes((sim.side > 0).view(np.int8), dtype=_SIDE_TYPE),
        "entry_price": sim.entry_price, "exit_price": sim.exit_price, "quantity": sim.quantity,
        "pnl": sim.pnl, "return": sim.trade_return, "fees": sim.fees, "funding": sim.funding,
        "exit_reason": pd.Categorical.from_codes(sim.reason, dtype=_REASON_TYPE),
        "duration_ms": exit_time - entry_time,
    })  # fmt: skip


@dataclass(frozen=True, slots=True, weakref_slot=True, eq=False)
class Setup:
    """What a backtest needs besides its strategy, checked and prepared once: the optimiser
    runs every combination of a sweep through one, so each gets `ejecutar_backtest`'s numbers."""

    velas: Velas
    bar_ms: int
    capital: float
    costs: Costs
    stop: Distance
    take: Distance
    funding: np.ndarray | None
    trailing: float | None
    first: int

    def simulate(
        self, positions: np.ndarray, keep: np.ndarray | None = None
    ) -> tuple[np.ndarray, Simulation]:
        """The positions actually traded (flat before `desde`) and their simulation (with the
        equity of the bars `keep` only, when given)."""
        if self.first:
            positions = positions.copy()
            positions[: self.first] = 0.0
        v = self.velas
        sim = simulate(
            v.open, v.high, v.low, v.close, positions, self.capital, self.costs, self.stop,
            self.take, self.funding, self.trailing, self.first, keep,
        )  # fmt: skip
        return positions, sim

    def metrics(self, sim: Simulation) -> dict[str, Any]:
        return run_metrics(sim, self.velas, self.bar_ms, self.capital, self.first)


def prepare(
    velas: Any,
    capital: float = 10_000,
    comision: float = 0.0004,
    slippage: float = 0.0,
    apalancamiento: float = 1,
    tamano: float = 1.0,
    stop_loss: float | str | None = None,
    take_profit: float | str | None = None,
    funding: float | pd.Series | None = None,
    comision_maker: float | None = None,
    margen_mantenimiento: float = MAINTENANCE_MARGIN_RATE,
    desde: Any = None,
    trailing: float | None = None,
) -> Setup:
    """A checked Setup from `ejecutar_backtest`'s arguments (see there); DataError if bad."""
    data = as_velas(velas)
    bar_ms = candle_ms(data.open_time)
    if capital <= 0 or not 0 < tamano <= 1 or not 1 <= apalancamiento <= 125:
        raise DataError("need capital > 0, 0 < tamano <= 1 and 1 <= apalancamiento <= 125")
    if comision < 0 or slippage < 0:
        raise DataError("comision and slippage cannot be negative")
    check_trailing(trailing)
    costs = Costs(
        taker_fee=comision,
        maker_fee=comision if comision_maker is None else comision_maker,
        slippage_bps=slippage,
        leverage=float(apalancamiento),
        size=tamano,
        maintenance_margin=margen_mantenimiento,
    )
    return Setup(
        velas=data, bar_ms=bar_ms, capital=capital, costs=costs,
        stop=_distance(stop_loss, "stop_loss", data),
        take=_distance(take_profit, "take_profit", data),
        funding=_funding_per_bar(funding, data.open_time, bar_ms), trailing=trailing,
        first=_first_traded(data.open_time, desde),
    )  # fmt: skip


def ejecutar_backtest(
    velas: Any,
    estrategia: Strategy,
    capital: float = 10_000,
    comision: float = 0.0004,
    slippage: float = 0.0,
    apalancamiento: float = 1,
    tamano: float = 1.0,
    stop_loss: float | str | None = None,
    take_profit: float | str | None = None,
    funding: float | pd.Series | None = None,
    comision_maker: float | None = None,
    margen_mantenimiento: float = MAINTENANCE_MARGIN_RATE,
    desde: Any = None,
    trailing: float | None = None,
) -> Resultado:
    """Backtest `estrategia` on `velas` (open_time, open, high, low, close, volume); deterministic.

    Decisions at a candle's close fill at the next open (± `slippage`, in basis points). Fees are
    fractions of notional per side: `comision` (taker) for market fills, `comision_maker` (default
    = `comision`) for take-profit limit fills. `tamano` is the fraction of equity used as margin,
    `apalancamiento` the leverage (isolated margin, liquidation with `margen_mantenimiento`).
    `stop_loss` / `take_profit`: a fraction (0.02) or an ATR multiple ('2atr'); `trailing`: a
    trailing stop's callback fraction (0.01: 1 % behind the best price since the entry, raised
    at each completed candle; exit reason "stop_movil"). `funding`: a
    constant rate per 8 h or a Series of rates indexed by funding time (ms or datetime).
    `desde` (epoch ms, ISO date or datetime): the candles before it only warm the strategy up —
    nothing is traded on their decisions and the results cover `desde` onwards, as a bot
    started then with that history trades.
    Raises DataError for bad candles or arguments, StrategyError for strategy problems.
    """
    setup = prepare(
        velas, capital, comision, slippage, apalancamiento, tamano, stop_loss, take_profit,
        funding, comision_maker, margen_mantenimiento, desde, trailing,
    )  # fmt: skip
    data = setup.velas
    positions, sim = setup.simulate(estrategia.target_positions(data))
    trades = _trades_frame(sim, data, setup.bar_ms)
    span = slice(setup.first, None)
    equity = pd.DataFrame(
        {"open_time": data.open_time[span], "equity": sim.equity[span]}, copy=False
    )
    return Resultado(
        trades=trades, equity=equity, metricas=setup.metrics(sim), posiciones=positions[span]
    )


def _first_traded(open_time: np.ndarray, desde: Any) -> int:
    """Index of the first candle whose decision is traded (0 without `desde`)."""
    if desde is None:
        return 0
    try:
        start = to_ms(desde)
    except (DataError, TypeError, ValueError) as error:
        raise DataError(f"desde: {error}") from None
    first = int(np.searchsorted(open_time, start))
    if first >= len(open_time) - 1:
        raise DataError("desde: leaves fewer than 2 candles to trade")
    return first
