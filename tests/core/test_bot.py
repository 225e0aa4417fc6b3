"""The bot with the paper broker equals the backtest of the same candles (issue #15's first
"must hold"), its risk limits act, and a restart from the broker's snapshot changes nothing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from backtesting.simulador import ejecutar_backtest
from core.bot import Bot, BotConfig
from core.broker.paper import PaperSimulator
from core.exchange.demo.market import DemoMarket
from core.exchange.demo.symbols import SYMBOLS
from core.exchange.demo.wire import exchange_info
from core.fills import ATR_PERIOD, Costs
from core.intervals import to_ms
from core.models import BotStatus, Candle
from core.risk import RiskSettings
from core.rules import parse_rules
from core.signals import LiveSignals
from estrategias.factory import crear_estrategia
from indicadores import atr

START = to_ms("2026-05-04T00:00:00")
HISTORY, LIVE = 300, 400
MINUTE = 60_000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """HISTORY + LIVE closed 1m BTCUSDT candles of the demo market (seed 42)."""
    market = DemoMarket(42)
    end = START + (HISTORY + LIVE) * MINUTE
    batch = market.klines("BTCUSDT", "1m", end + MINUTE, START, None, HISTORY + LIVE)
    scale = 10.0**batch.spec.price_decimals
    columns = {"open_time": batch.open_times}
    for k, name in enumerate(("open", "high", "low", "close")):
        columns[name] = batch.values[:, k] / scale
    columns["volume"] = batch.values[:, 4] / 10.0**batch.spec.qty_decimals
    return pd.DataFrame(columns)


@pytest.fixture(scope="module")
def rules():
    info = json.loads(exchange_info(SYMBOLS.values(), START, None))
    return parse_rules(info)["BTCUSDT"]


def _atr(high, low, close):
    return atr(high, low, close, ATR_PERIOD)


def _candles(frame: pd.DataFrame) -> list[Candle]:
    return [
        Candle("BTCUSDT", "1m", int(r.open_time), r.open, r.high, r.low, r.close, r.volume)
        for r in frame.itertuples()
    ]


def _run(frame, rules, config: BotConfig, restart_at: int | None = None):
    strategy = crear_estrategia("sma_cruce", rapida=5, lenta=20)
    candles = _candles(frame)
    history, live = candles[:HISTORY], candles[HISTORY:]

    def build():
        signals = LiveSignals("BTCUSDT", "1m", [strategy])
        broker = PaperSimulator(
            config.capital, config.costs, config.stop_fraction, config.take_fraction,
            config.trailing,
        )  # fmt: skip
        now = {"ms": live[0].open_time}
        bot = Bot(config, signals, broker, rules, clock=lambda: now["ms"], atr=_atr)
        return bot, broker, now

    bot, broker, now = build()
    bot.start(history)
    closed = []
    for k, candle in enumerate(live):
        if k == restart_at:  # a new process: warm up again, continue from the snapshot
            saved = json.loads(json.dumps(broker.snapshot(), allow_nan=False))
            closed = list(broker.closed)
            bot, broker, now = build()
            bot.start(candles[: HISTORY + k])
            broker.restore(saved)
            broker.closed = closed
        now["ms"] = candle.open_time + MINUTE
        bot.on_candle(candle)
    return bot, broker, strategy


CONFIGS = {
    "plain": BotConfig("b", "BTCUSDT", "1m", "sma_cruce", 10_000),
    "costs_and_fraction_stops": BotConfig(
        "b", "BTCUSDT", "1m", "sma_cruce", 10_000,
        Costs(taker_fee=0.0005, maker_fee=0.0002, slippage_bps=2, leverage=10, size=0.5),
        stop_loss=0.002, take_profit=0.003,
    ),
    "atr_stops": BotConfig(
        "b", "BTCUSDT", "1m", "sma_cruce", 5_000, Costs(leverage=3), "1.5atr", "2atr"
    ),
    "trailing_stop": BotConfig(
        "b", "BTCUSDT", "1m", "sma_cruce", 10_000, Costs(slippage_bps=1, leverage=5),
        stop_loss=0.004, trailing=0.002,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("restart_at", [None, 170])
def test_a_paper_bot_makes_exactly_the_trades_of_the_backtest(frame, rules, name, restart_at):
    config = CONFIGS[name]
    bot, broker, strategy = _run(frame, rules, config, restart_at)
    costs = config.costs
    expected = ejecutar_backtest(
        frame, strategy, capital=config.capital, comision=costs.taker_fee,
        comision_maker=costs.maker_fee, slippage=costs.slippage_bps, apalancamiento=costs.leverage,
        tamano=costs.size, stop_loss=config.stop_loss, take_profit=config.take_profit,
        desde=int(frame["open_time"].iloc[HISTORY]), trailing=config.trailing,
    ).trades  # fmt: skip
    trades = broker.closed + ([broker.trade] if broker.trade else [])
    assert len(trades) == len(expected) >= 10
    if name != "plain":
        assert set(expected["exit_reason"]) - {"senal", "fin"}, "the stops must be exercised"
    assert ("stop_movil" in set(expected["exit_reason"])) == (config.trailing is not None)
    for trade, row in zip(trades, expected.itertuples(), strict=True):
        assert trade.entry_time == row.entry_time
        assert ("long" if trade.side > 0 else "short") == row.side
        assert trade.entry_price == pytest.approx(row.entry_price, rel=1e-12)
        assert trade.quantity == pytest.approx(row.quantity, rel=1e-9)
        if trade.is_open:
            assert row.exit_reason == "fin"
            continue
        assert (trade.exit_time, trade.reason) == (row.exit_time, row.exit_reason)
        assert trade.exit_price == pytest.approx(row.exit_price, rel=1e-12)
        assert trade.pnl == pytest.approx(row.pnl, rel=1e-9, abs=1e-9)
        assert trade.fees == pytest.approx(row.fees, rel=1e-9, abs=1e-9)
    assert bot.status is BotStatus.TRADING


def test_a_daily_loss_limit_pauses_the_bot_and_blocks_new_entries(frame, rules):
    config = BotConfig(
        "b", "BTCUSDT", "1m", "sma_cruce", 10_000, Costs(leverage=20),
        risk=RiskSettings(max_daily_loss=0.002),
    )  # fmt: skip
    bot, broker, _ = _run(frame, rules, config)
    assert bot.status is BotStatus.PAUSED
    assert broker.trade is None  # paused: the position was closed and nothing new opened
    free = BotConfig("b", "BTCUSDT", "1m", "sma_cruce", 10_000, Costs(leverage=20))
    assert len(broker.closed) < len(_run(frame, rules, free)[1].closed)
    loss = 10_000 - broker.equity_before_trade
    assert loss > 0.002 * 10_000  # it paused because the day's loss passed the limit


class _Remote(PaperSimulator):
    """A paper broker posing as one with a remote side that agrees after `disagree` checks."""

    def __init__(self, disagree: int, *args) -> None:
        super().__init__(*args)
        self.disagree, self.checks = disagree, 0

    def start(self) -> bool:
        return self.reconcile()

    def reconcile(self) -> bool:
        self.checks += 1
        return self.checks > self.disagree


def test_a_bot_sends_nothing_until_its_broker_agrees_with_the_exchange(frame, rules):
    config = CONFIGS["plain"]
    broker = _Remote(40, config.capital, config.costs)
    candles = _candles(frame)
    now = {"ms": candles[HISTORY].open_time}
    signals = LiveSignals("BTCUSDT", "1m", [crear_estrategia("sma_cruce", rapida=5, lenta=20)])
    bot = Bot(config, signals, broker, rules, clock=lambda: now["ms"])
    bot.start(candles[:HISTORY])
    assert bot.status is BotStatus.SYNCING
    steps = []
    for candle in candles[HISTORY:]:
        now["ms"] = candle.open_time + MINUTE
        steps.append(bot.on_candle(candle))
    assert all(not s.trades and s.target == 0 for s in steps[:39]), "nothing before agreement"
    assert broker.checks == 41 and bot.status is BotStatus.TRADING
    assert broker.closed and broker.closed[0].entry_time > candles[HISTORY + 39].open_time
