"""The bot: one strategy on one symbol and interval, its decisions through the risk manager,
into a broker, with its own state machine (core.state) and every step recorded.

Each closed candle: the live decision path (core.signals) gives the strategy's target position;
the account's limits (core.risk.check_account) say whether entries are allowed — an exit always
is —; an entry also passes the per-order checks; the broker trades the decision the way the
backtester does (core.broker.paper) or on an exchange. The bot depends on protocols only: the
wiring of strategies, brokers, streams and storage happens in run.py and app.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Protocol, runtime_checkable

import numpy as np

from core.broker import Decision
from core.broker.paper import Bar, PaperTrade
from core.errors import DataError
from core.fills import Costs, atr_multiple, check_distance, check_trailing, distance
from core.models import BotEvent, BotStatus, BotTrigger, Candle, Side
from core.risk import (
    AccountVerdict,
    AccountView,
    EquityMarks,
    MarketView,
    OrderIntent,
    PositionView,
    RiskDecision,
    RiskSettings,
    TradingMode,
    check_account,
    check_order,
)
from core.rules import SymbolRules
from core.signals import Decisions, LiveSignals
from core.state import bot_transition

AtrFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
HISTORY = 5_000  # candles kept for ATR stops, as the live strategies keep theirs


@dataclass(frozen=True, slots=True)
class BotConfig:
    """What a bot trades and how: the backtest's costs and stops plus the risk limits."""

    name: str
    symbol: str
    interval: str
    strategy: str  # the decider's name in the LiveSignals the bot is given
    capital: float
    costs: Costs = field(default_factory=Costs)
    stop_loss: float | str | None = None
    take_profit: float | str | None = None
    risk: RiskSettings = field(default_factory=RiskSettings)
    trailing: float | None = None  # a trailing stop's callback fraction

    def __post_init__(self) -> None:
        if not self.capital > 0:
            raise DataError(f"capital must be > 0, not {self.capital}")
        check_distance(self.stop_loss, "stop_loss")
        check_distance(self.take_profit, "take_profit")
        check_trailing(self.trailing)

    @property
    def stop_fraction(self) -> float | None:
        """The stop as a fraction of the entry (None for an ATR stop or none)."""
        return _fraction(self.stop_loss)

    @property
    def take_fraction(self) -> float | None:
        return _fraction(self.take_profit)


class Broker(Protocol):
    """Trades a bot's decisions; paper (the backtester's model) or an exchange."""

    def on_candle(self, bar: Bar, decision: Decision) -> list[PaperTrade]: ...

    def equity(self, mark: float) -> float: ...

    @property
    def side(self) -> float: ...


@runtime_checkable
class SyncingBroker(Broker, Protocol):
    """A broker with a remote side (an exchange) the bot must agree with before it trades."""

    def start(self) -> bool: ...

    def reconcile(self) -> bool: ...


class Recorder(Protocol):
    """Where a bot's steps go (the database through core.repository, or nowhere)."""

    def event(self, event: BotEvent) -> None: ...

    def step(self, step: BotStep) -> None: ...


class NoRecorder:
    def event(self, event: BotEvent) -> None:
        return None

    def step(self, step: BotStep) -> None:
        return None


@dataclass(frozen=True, slots=True)
class BotStep:
    """One closed candle's outcome."""

    candle: Candle
    decisions: Decisions
    wanted: float  # the strategy's target
    target: float  # what the bot asked the broker after the risk checks
    verdict: AccountVerdict
    refusal: RiskDecision | None
    trades: tuple[PaperTrade, ...]
    equity: float


class Bot:
    """A strategy trading through a broker under risk limits, one closed candle at a time."""

    def __init__(
        self,
        config: BotConfig,
        signals: LiveSignals,
        broker: Broker,
        rules: SymbolRules,
        clock: Callable[[], int],
        recorder: Recorder | None = None,
        atr: AtrFunction | None = None,
    ) -> None:
        """`atr(high, low, close)` gives the per-bar ATR(core.fills.ATR_PERIOD) for 'N atr'
        stops (indicadores, passed in by whoever wires the bot: core does not import it)."""
        self.config, self.signals, self.broker, self.rules = config, signals, broker, rules
        self.atr = atr
        self.clock = clock
        self.recorder = recorder or NoRecorder()
        self.status = BotStatus.STOPPED
        self.marks: EquityMarks | None = None
        self.account: AccountView | None = None  # as of the last candle: the limits' usage
        self._history: deque[Candle] = deque(maxlen=HISTORY)
        self.connected = True

    def move(self, trigger: BotTrigger, reason: str = "", actor: str = "bot") -> BotEvent:
        """Apply a state-machine trigger; the event is recorded (BotStateError if illegal)."""
        event = bot_transition(self.status, trigger, actor, self.clock(), reason)
        self.status = event.to_state
        self.recorder.event(event)
        return event

    def start(self, history: Iterable[Candle] = ()) -> None:
        """Warm the strategy up on `history` (nothing traded) and start operating."""
        self.move(BotTrigger.START, "arranque")
        candles = list(history)
        self.signals.prime(candles)
        self._history.extend(candles)
        self.move(BotTrigger.STARTED, "historia cargada")
        self._sync(first=True)

    def _sync(self, first: bool = False) -> None:
        """Leave `sincronizando` once the broker's remote side agrees with the bot's records
        (at once for the paper broker, which has none)."""
        if isinstance(self.broker, SyncingBroker):
            self._agree(self.broker.start() if first else self.broker.reconcile())
        else:
            self.move(BotTrigger.SYNCED, "sin lado remoto (paper)")

    def _agree(self, agreed: bool) -> bool:
        """Follow a reconciliation: agreement ends `sincronizando`; a mismatch sends a trading
        bot back to it, so nothing new is sent until both sides agree again."""
        if agreed and self.status is BotStatus.SYNCING:
            self.move(BotTrigger.SYNCED, "exchange y base de datos coinciden")
        elif not agreed and self.status in (BotStatus.TRADING, BotStatus.REDUCING):
            self.move(BotTrigger.RESYNC, "exchange y base de datos difieren")
        return agreed

    def reconcile(self) -> bool:
        """Compare the broker's records with its exchange now (the host does it every few
        seconds); True when they agree, always for a broker with no remote side."""
        if not isinstance(self.broker, SyncingBroker):
            return True
        return self._agree(self.broker.reconcile())

    def resume(self, history: Iterable[Candle], status: BotStatus) -> None:
        """Continue a bot that was `status` when its process stopped: warm the strategy up on
        `history` and carry on in that state (its broker is restored by whoever built it); a
        broker with an exchange starts again and reconciles before anything is sent."""
        candles = list(history)
        self.signals.prime(candles)
        self._history.extend(candles)
        self.status = status
        if status is BotStatus.STARTING:  # it stopped while starting: the history is loaded
            self.move(BotTrigger.STARTED, "historia cargada")
        if isinstance(self.broker, SyncingBroker):
            self._agree(self.broker.start())

    def warm(self, candles: Iterable[Candle]) -> None:
        """More history, nothing traded: candles that closed while a new bot was warming up."""
        candles = list(candles)
        self.signals.prime(candles)
        self._history.extend(candles)

    @property
    def last_open_time(self) -> int | None:
        """Open time of the last candle the bot has seen (history included)."""
        return self._history[-1].open_time if self._history else None

    def on_candle(self, candle: Candle) -> BotStep:
        """Trade one closed candle (see the module docstring); while syncing, only decide."""
        if self.status is BotStatus.SYNCING:
            self._sync()
        decisions = self.signals.on_closed(candle)
        self._history.append(candle)
        wanted = self.signals.positions.get(self.config.strategy, 0.0)
        now = self.clock()
        equity = self.broker.equity(candle.close)
        marks = self.marks
        self.marks = marks.update(now, equity) if marks else EquityMarks.start(now, equity)
        account = self.account = self._account(equity, candle.close)
        market = MarketView(self.config.interval, candle.open_time, self.connected, candle.close)
        verdict = check_account(self.config.risk, account, market, now)
        self._follow(verdict)
        target, refusal = self._target(wanted, verdict, account, market, now)
        if self.status is BotStatus.SYNCING:  # nothing is sent before both sides agree
            target = self.broker.side
        stop, take = self._distances()
        bar = Bar(candle.open_time, candle.open, candle.high, candle.low, candle.close)
        trades = self.broker.on_candle(bar, Decision(target, stop, take))
        step = BotStep(
            candle, decisions, wanted, target, verdict, refusal, tuple(trades),
            self.broker.equity(candle.close),
        )  # fmt: skip
        self.recorder.step(step)
        return step

    def _account(self, equity: float, mark: float) -> AccountView:
        assert self.marks is not None
        side = self.broker.side
        positions: tuple[PositionView, ...] = ()
        if side:
            exposure = equity * self.config.costs.exposure
            positions = (
                PositionView(
                    self.config.symbol, Side.BUY if side > 0 else Side.SELL, exposure / mark,
                    mark, self.config.costs.leverage, mark,
                ),
            )  # fmt: skip
        return AccountView(
            equity=equity,
            day_start_equity=self.marks.day_start_equity,
            peak_equity=self.marks.peak_equity,
            free_margin=equity,
            rules=self.rules,
            positions=positions,
        )

    def _follow(self, verdict: AccountVerdict) -> None:
        """Move between operando, reduciendo and pausado as the account's limits say."""
        reason = f"{verdict.reason.code}: {verdict.reason.message}" if verdict.reason else ""
        if verdict.mode is TradingMode.PAUSE and self.status is not BotStatus.PAUSED:
            self.move(BotTrigger.PAUSE, reason, actor="riesgo")
        elif verdict.mode is TradingMode.REDUCE_ONLY and self.status is BotStatus.TRADING:
            self.move(BotTrigger.REDUCE, reason, actor="riesgo")
        elif verdict.mode is TradingMode.OPERATE and self.status is BotStatus.REDUCING:
            self.move(BotTrigger.CLEARED, "límites en orden", actor="riesgo")

    def _target(
        self,
        wanted: float,
        verdict: AccountVerdict,
        account: AccountView,
        market: MarketView,
        now: int,
    ) -> tuple[float, RiskDecision | None]:
        """The strategy's target, unless it opens or grows exposure the bot may not take."""
        held = self.broker.side
        if wanted == 0 or wanted == held:
            return wanted, None  # exits and holding are always allowed
        if not (verdict.allows_entries and self.status is BotStatus.TRADING):
            return 0.0, None  # flat instead of opening (or reversing into) a new position
        quantity = self._exchange_quantity(account.equity, candle_price(market))
        intent = OrderIntent(
            self.config.symbol, Side.BUY if wanted > 0 else Side.SELL, quantity,
            price=market.last_price, leverage=self.config.costs.leverage,
        )  # fmt: skip
        if held:  # a reversal: the exit always goes; the new entry is judged as flat
            account = replace(account, positions=())
        decision = check_order(intent, self.config.risk, account, market, now)
        if not decision.accepted:
            return 0.0, decision
        return wanted, None

    def _exchange_quantity(self, equity: float, price: float) -> float:
        """The entry's quantity as an exchange would take it: sized like the backtester (equity
        x margin fraction x leverage / price), rounded down to the market order step."""
        step = self.rules.market_step_size or self.rules.step_size
        raw = equity * self.config.costs.exposure / price
        if not step:
            return raw
        return float(int(Decimal(repr(float(raw))) / step) * step)  # exact: a step multiple

    def _distances(self) -> tuple[float | None, float | None]:
        """Absolute stop and target distances for 'N atr' settings, at the last close."""
        settings = (self.config.stop_loss, self.config.take_profit)
        if all(atr_multiple(value) is None for value in settings):
            return None, None  # fractions (the broker's own setting) or nothing
        candles = list(self._history)
        high = np.array([c.high for c in candles])
        low = np.array([c.low for c in candles])
        close = np.array([c.close for c in candles])
        if self.atr is None:
            raise DataError("an 'N atr' stop or target needs the bot's atr function")
        per_bar_atr = self.atr(high, low, close)
        values = []
        for name in ("stop_loss", "take_profit"):
            setting = getattr(self.config, name)
            per_bar = distance(setting, name, per_bar_atr) if atr_multiple(setting) else None
            values.append(None if per_bar is None or np.isnan(per_bar[-1]) else float(per_bar[-1]))
        return values[0], values[1]


def _fraction(setting: float | str | None) -> float | None:
    if setting is None or atr_multiple(setting) is not None:
        return None
    return float(setting)


def candle_price(market: MarketView) -> float:
    if market.last_price is None:
        raise DataError("the market view has no price")
    return market.last_price
