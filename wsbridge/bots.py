"""Bots running in one asyncio process: closed candles from the market stream in, each bot's
steps out to the database (and, beside the bridge, to the browsers as `tipo: "bot"`).

The host is where a stored bot (core.models.Bot, written by `POST /bots` or `python run.py bot`)
becomes a running core.bot.Bot: its strategy from the registry, its live decision path primed
with the stored candles, its broker restored from the stored snapshot. It polls the database,
so bots created, stopped or resumed elsewhere (the web app) are picked up within a second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from config.settings import Settings
from core.bot import Bot, BotConfig, BotStep
from core.broker.exchange import ExchangeBroker
from core.broker.paper import PaperSimulator, PaperTrade
from core.errors import DataError
from core.exchange.klines import frame_candles, klines_to_frame
from core.exchange.limits import KLINE_PUSH_S, MAX_KLINES
from core.exchange.rest import BinanceRest
from core.fills import ATR_PERIOD, Costs
from core.intervals import interval_ms
from core.models import Bot as StoredBot
from core.models import BotDecision as StoredDecision
from core.models import BotEvent, BotMode, BotStatus, BotTrade, BotTrigger, Candle, Side
from core.repository import Database
from core.risk import EquityMarks, RiskSettings, account_usage
from core.rules import SymbolRules, parse_rules
from core.signals import LiveSignals
from estrategias.factory import crear_estrategia
from indicadores import atr
from websocket.client import KlineStreamClient
from wsbridge.bot_commands import apply_commands
from wsbridge.exchange_bots import RECONCILE_S, ExchangeAccount

log = logging.getLogger(__name__)

POLL_S = 1.0
LEASE_MS = 15_000  # a host's claim on a bot, renewed every poll: a dead host's lapses this soon
WARMUP_CANDLES = 1_000  # stored candles the strategy warms up on, at least its own warm-up
Publish = Callable[[dict[str, Any]], None]


def _atr(high, low, close):  # type: ignore[no-untyped-def]
    return atr(high, low, close, ATR_PERIOD)


def bot_config(stored: StoredBot, speed: float = 1.0) -> BotConfig:
    """The core configuration of a stored bot on a market running `speed` times the wall clock:
    the stale-data grace is delivery latency, wall time, so it is that much market time."""
    costs = Costs(
        taker_fee=stored.taker_fee,
        maker_fee=stored.taker_fee if stored.maker_fee is None else stored.maker_fee,
        slippage_bps=stored.slippage_bps,
        leverage=stored.leverage,
        size=stored.size,
    )
    risk = RiskSettings(**_limits(stored))
    risk = replace(risk, stale_grace_ms=int(risk.stale_grace_ms * speed))
    return BotConfig(
        stored.name, stored.symbol, stored.interval, stored.strategy, stored.capital, costs,
        _distance(stored.stop_loss), _distance(stored.take_profit), risk, stored.trailing,
    )  # fmt: skip


def _limits(stored: StoredBot) -> dict[str, Any]:
    """The stored risk limits, under RiskSettings' field names (checked when stored)."""
    return dict(stored.risk)


def _distance(text: str | None) -> float | str | None:
    if text is None:
        return None
    return text if "atr" in text.lower() else float(text)


@dataclass
class DbRecorder:
    """core.bot's Recorder over the database: events, decisions and trades as they happen."""

    db: Database
    bot_id: int
    publish: Publish
    open_trade_id: int | None = None
    last_target: float | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    def event(self, event: BotEvent) -> None:
        self.db.bots.update_status(self.bot_id, event.trigger, event.actor, event.reason, event.at)
        self.publish({"tipo": "bot", "id": self.bot_id, "estado": event.to_state.value,
                      "motivo": event.reason})  # fmt: skip

    def step(self, step: BotStep) -> None:
        if step.target != self.last_target:
            reason = "; ".join(s.reason for s in step.decisions.signals) or "sin cambio"
            if step.refusal is not None and step.refusal.reason is not None:
                reason = f"rechazada: {step.refusal.reason.message}"
            self.db.bots.add_decision(
                StoredDecision(
                    self.bot_id, step.candle.open_time, step.target, step.candle.close, reason
                )  # fmt: skip
            )
            self.last_target = step.target
        for trade in step.trades:
            self.trade(trade)

    def trade(self, trade: PaperTrade) -> None:
        row = BotTrade(
            self.bot_id, Side.BUY if trade.side > 0 else Side.SELL, trade.entry_time,
            trade.entry_price, trade.quantity,
        )  # fmt: skip
        if trade.is_open:
            self.open_trade_id = self.db.bots.open_trade(row).id
            message = {"tipo": "posicion", "id": self.bot_id, "lado": row.side.value,
                       "entrada": trade.entry_price, "cantidad": trade.quantity,
                       "stop": _finite(trade.stop), "objetivo": _finite(trade.take)}  # fmt: skip
        else:
            closed = replace(
                row, id=self.open_trade_id, exit_time=trade.exit_time,
                exit_price=trade.exit_price, pnl=trade.pnl or 0.0, fees=trade.fees or 0.0,
                funding=trade.funding or 0.0, exit_reason=trade.reason or "",
                return_pct=trade.trade_return or 0.0,
            )  # fmt: skip
            self.db.bots.close_trade(closed)
            self.open_trade_id = None
            message = {"tipo": "posicion", "id": self.bot_id, "lado": None,
                       "salida": trade.exit_price, "motivo": trade.reason,
                       "pnl": trade.pnl}  # fmt: skip
        self.publish(message)


class MarketClock:
    """The market's time (epoch seconds): the exchange's server time, run on at the market's
    speed between readings — the demo exchange's clock runs DEMO_SPEED times the wall's — so
    the stale-data guard, the day boundary of the loss limit and cooldowns follow the clock of
    the candles, not this machine's."""

    def __init__(
        self,
        read_ms: Callable[[], int],
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read_ms, self.speed, self.monotonic = read_ms, speed, monotonic
        self._anchor: tuple[float, float] | None = None

    def sync(self) -> None:
        """Read the server time again (a blocking REST call)."""
        self._anchor = (self.read_ms() / 1000, self.monotonic())

    def __call__(self) -> float:
        if self._anchor is None:
            self.sync()
        assert self._anchor is not None
        server, at = self._anchor
        return server + (self.monotonic() - at) * self.speed


def _finite(value: float) -> float | None:
    return value if value not in (float("inf"), float("-inf")) and value == value else None


@dataclass
class RunningBot:
    stored: StoredBot
    bot: Bot
    broker: PaperSimulator | ExchangeBroker
    recorder: DbRecorder
    # A new bot (not a resumed one) until its first candle closes live: the stream's replay of
    # what closed while it warmed up is more history, so it starts on a fresh candle as the
    # backtest from that candle does. A resumed bot trades what it missed (exits matter).
    catching_up: bool = False

    def snapshot(self) -> dict[str, Any]:
        """What a restart needs — the broker's state and the bot's equity marks — and what the
        API shows of the last step: the equity and how much of each account limit is used."""
        state = self.broker.snapshot()
        marks = self.bot.marks
        if marks is not None:
            state["marks"] = [marks.day_start_ms, marks.day_start_equity, marks.peak_equity]
        account = self.bot.account
        if account is not None:
            state["equity"] = account.equity
            state["uso_riesgo"] = account_usage(account).public()
        return state


class BotHost:
    """Every running bot of this process and the one market stream that feeds them."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        publish: Publish | None = None,
        clock: Callable[[], float] | None = None,
        only: int | None = None,
    ) -> None:
        """`publish` gets the browser messages (the bridge's broadcast); `only` limits the host
        to one stored bot (`python run.py bot`); `clock` (epoch seconds) is the market's
        (MarketClock) unless a test injects one."""
        self.settings, self.db = settings, db
        self._publish = publish
        self._loop: asyncio.AbstractEventLoop | None = None
        self.speed = settings.demo_speed if settings.is_demo else 1.0
        rest = BinanceRest(settings.binance_rest_url)
        self.market_clock = MarketClock(rest.server_time, self.speed) if clock is None else None
        self.clock: Callable[[], float] = clock or self.market_clock  # type: ignore[assignment]
        self.only = only
        self.running: dict[int, RunningBot] = {}
        # This process among every bot host on the database (core.repository.bot_leases).
        self.host_id = f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(3)}"
        self.killed: set[int] = set()  # kill commands a `python run.py bot` host applied
        self.started_ms = int(time.time() * 1000)  # kills from before it are not its business
        self.account: ExchangeAccount | None = None  # opened by the first exchange bot
        # Held by each step and each command (wsbridge.bot_commands), so they never interleave.
        self.stepping = asyncio.Lock()
        self.connected = True
        self._rules: dict[str, SymbolRules] = {}
        self.stream = KlineStreamClient(
            settings.binance_ws_url, settings.binance_rest_url, self.on_candle, self.on_state
        )

    def publish(self, message: dict[str, Any]) -> None:
        """Hand a message to `publish` on the host's event loop (steps run in worker threads).
        A message for browsers never stops trading: once the loop has closed it is dropped."""
        if self._publish is None:
            return
        if self._loop is None:
            self._publish(message)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._publish, message)
        else:
            log.debug("host loop closed: %s message dropped", message.get("tipo"))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def rules(self, symbol: str) -> SymbolRules:
        if symbol not in self._rules:
            info = BinanceRest(self.settings.binance_rest_url).exchange_info()
            self._rules = parse_rules(info)
        return self._rules[symbol]

    async def run(self) -> None:
        """Serve until cancelled: the market stream and the database poll."""
        self._loop = asyncio.get_running_loop()
        if self.market_clock is not None:
            await asyncio.to_thread(self.market_clock.sync)
        stream = asyncio.ensure_future(self.stream.run())
        reconciled = time.monotonic()
        try:
            while True:
                await self.sync()
                if time.monotonic() - reconciled >= RECONCILE_S:
                    if self.market_clock is not None:
                        await asyncio.to_thread(self.market_clock.sync)
                    await self.reconcile()
                    reconciled = time.monotonic()
                await asyncio.sleep(POLL_S)
        finally:
            stream.cancel()
            await self.stream.close()
            if self.account is not None:
                await self.account.close()
            for bot_id in list(self.running):  # the next host resumes them at once
                await asyncio.to_thread(self.db.bots.release, bot_id, self.host_id)

    async def reconcile(self) -> None:
        """Every exchange bot against its exchange (between steps): a mismatch sends a bot
        back to sincronizando until both sides agree."""
        for running in list(self.running.values()):
            if not isinstance(running.broker, ExchangeBroker):
                continue
            try:
                async with self.stepping:
                    if self.running.get(running.stored.id or 0) is running:
                        await asyncio.to_thread(self._reconcile, running)
            except Exception as error:  # the exchange is unreachable: said, retried next time
                log.warning("bot %s cannot reconcile: %s", running.stored.id, error)

    def _reconcile(self, running: RunningBot) -> None:
        assert running.stored.id is not None and isinstance(running.broker, ExchangeBroker)
        running.bot.reconcile()
        for trade in running.broker.book.drain():  # closes the stream or reconcile found
            running.recorder.trade(trade)
        self.db.bots.save_broker_state(running.stored.id, running.snapshot())

    async def sync(self) -> None:
        """Keep this host's leases, apply the stored commands, then start the stored bots that
        should run (and that no other host runs) and stop those that should not."""
        await self._renew()
        await self.commands()
        stored = await asyncio.to_thread(self.db.bots.list)
        for row in stored:
            assert row.id is not None
            if self.only is not None and row.id != self.only:
                continue
            wanted = row.desired_running
            if wanted and row.id not in self.running and row.status is not BotStatus.ERROR:
                claimed = await asyncio.to_thread(self._claim, row.id)
                if claimed is not None:
                    await self._start_claimed(claimed)
            elif not wanted and row.id in self.running:
                await self.stop(row.id)

    def _wall_ms(self) -> int:
        return int(time.time() * 1000)

    def _claim(self, bot_id: int) -> StoredBot | None:
        """The bot as stored once this host holds its lease; None when another host runs it
        (or it is no longer wanted: read again after claiming, the other host may have moved
        it meanwhile)."""
        if not self.db.bots.claim(bot_id, self.host_id, self._wall_ms(), LEASE_MS):
            return None
        row = self.db.bots.get(bot_id)
        if row.desired_running and row.status is not BotStatus.ERROR:
            return row
        self.db.bots.release(bot_id, self.host_id)
        return None

    async def _start_claimed(self, row: StoredBot) -> None:
        assert row.id is not None
        try:
            await self.start(row)
        except Exception as error:  # a bot that cannot start must not stop the host
            log.exception("bot %s cannot start", row.id)
            await asyncio.to_thread(self._refuse, row, error)
            await asyncio.to_thread(self.db.bots.release, row.id, self.host_id)

    async def _renew(self) -> None:
        """Renew the leases of the bots running here; a bot whose lease another host took
        (this one stalled past LEASE_MS) is dropped here without a word to the database."""
        if not self.running:
            return
        held = await asyncio.to_thread(
            self.db.bots.renew, self.host_id, list(self.running), self._wall_ms(), LEASE_MS
        )
        for bot_id in set(self.running) - held:
            log.error("bot %s: another host took it over; no longer run here", bot_id)
            await self._drop(bot_id)

    def _refuse(self, stored: StoredBot, error: Exception) -> None:
        """Record why a stored bot could not start: `error` state, no longer wanted."""
        assert stored.id is not None
        reason = f"{type(error).__name__}: {error}"[:500]
        if stored.status is BotStatus.STOPPED:
            self.db.bots.update_status(stored.id, BotTrigger.START, "bot", "arranque")
        self.db.bots.update_status(stored.id, BotTrigger.FAIL, "bot", reason, desired_running=False)

    async def commands(self) -> None:
        """Apply what the web app asked (parar, pausar, reanudar, matar): wsbridge.bot_commands."""
        self._loop = asyncio.get_running_loop()
        await apply_commands(self)

    async def start(self, stored: StoredBot) -> RunningBot:
        """Make a stored bot run: strategy, warm-up on stored candles, broker as it was left
        (an exchange bot reconciles with its exchange before it may send anything)."""
        refusal = self.settings.trading_refusal(stored.mode.value)
        if refusal is not None:
            raise DataError(refusal)
        assert stored.id is not None
        if stored.mode is not BotMode.PAPER and self.account is None:
            self.account = await asyncio.to_thread(ExchangeAccount, self.settings)
        try:
            running = await asyncio.to_thread(self._build, stored)
        except Exception:
            if self.account is not None:
                self.account.forget(stored.id)
            raise
        if isinstance(running.broker, ExchangeBroker):
            assert self.account is not None
            self.account.follow(stored.id, running.broker)
        self.running[stored.id] = running
        after = running.bot.last_open_time
        await self.stream.subscribe(stored.symbol, stored.interval, after=after)
        log.info("bot %s (%s) running on %s %s", stored.id, stored.name, stored.symbol,
                 stored.interval)  # fmt: skip
        return running

    def _build(self, stored: StoredBot) -> RunningBot:
        assert stored.id is not None
        config = bot_config(stored, self.speed)
        strategy = crear_estrategia(stored.strategy, **stored.params)
        signals = LiveSignals(stored.symbol, stored.interval, [strategy])
        broker = self._broker(stored, config)
        recorder = DbRecorder(self.db, stored.id, self.publish)
        bot = Bot(config, signals, broker, self.rules(stored.symbol), self._now_ms, recorder,
                  atr=_atr)  # fmt: skip
        needed = max(WARMUP_CANDLES, strategy.warmup + 1)
        self._top_up(stored.symbol, stored.interval, needed)
        frame = self.db.candles.read_frame(stored.symbol, stored.interval, limit=needed)
        history = frame_candles(frame, stored.symbol, stored.interval)
        saved = self.db.bots.load_broker_state(stored.id)
        if saved is not None:
            broker.restore(saved)
            if saved.get("marks"):  # the day's start and the peak the loss limits measure from
                bot.marks = EquityMarks(*saved["marks"])
            open_trades = self.db.bots.trades(stored.id, open=True)
            recorder.open_trade_id = open_trades[-1].id if open_trades else None
        self._warm(bot, history, stored.status)  # an exchange bot reconciles here
        fresh = stored.status in (BotStatus.STOPPED, BotStatus.ERROR)
        running = RunningBot(stored, bot, broker, recorder, catching_up=fresh)
        if isinstance(broker, ExchangeBroker):
            for trade in broker.book.drain():  # what reconciling found (an adopted position)
                recorder.trade(trade)
            self.db.bots.save_broker_state(stored.id, running.snapshot())
        return running

    def _broker(self, stored: StoredBot, config: BotConfig) -> PaperSimulator | ExchangeBroker:
        if stored.mode is BotMode.PAPER:
            return PaperSimulator(
                config.capital, config.costs, config.stop_fraction, config.take_fraction,
                config.trailing,
            )  # fmt: skip
        assert self.account is not None
        return self.account.broker(
            self.db, stored, config, lambda: self.rules(stored.symbol), self.publish
        )

    def _top_up(self, symbol: str, interval: str, needed: int) -> None:
        """Store the latest closed candles from REST, so a bot warms up on recent history even
        on an empty database (what is already stored is left as it is)."""
        rest = BinanceRest(self.settings.binance_rest_url)
        now = rest.server_time()
        rows = klines_to_frame(rest.klines(symbol, interval, limit=min(needed + 1, MAX_KLINES)))
        closed = rows[rows["close_time"] < now].drop(columns="close_time")
        self.db.candles.upsert(symbol, interval, closed)

    @staticmethod
    def _warm(bot: Bot, history: list[Candle], status: BotStatus) -> None:
        if status in (BotStatus.STOPPED, BotStatus.ERROR):
            bot.start(history)
        else:  # it was running when the process stopped: resume where it was
            bot.resume(history, status)

    async def stop(self, bot_id: int) -> None:
        running = await self._drop(bot_id)
        if running is None:
            return
        if running.bot.status not in (BotStatus.STOPPED, BotStatus.STOPPING):
            await asyncio.to_thread(running.bot.move, BotTrigger.STOP, "parada pedida", "api")
            await asyncio.to_thread(running.bot.move, BotTrigger.FINISHED, "parada", "api")
        await asyncio.to_thread(self.db.bots.release, bot_id, self.host_id)

    async def _drop(self, bot_id: int) -> RunningBot | None:
        """Stop running the bot here: its user stream and, when no other bot needs it, its
        market stream."""
        running = self.running.pop(bot_id, None)
        if running is None:
            return None
        if self.account is not None:
            self.account.forget(bot_id)
        if not any(r.stored.symbol == running.stored.symbol and
                   r.stored.interval == running.stored.interval
                   for r in self.running.values()):  # fmt: skip
            await self.stream.unsubscribe(running.stored.symbol, running.stored.interval)
        return running

    async def on_candle(self, candle: Candle) -> None:
        if not candle.closed:
            return
        await asyncio.to_thread(self.db.candles.upsert_candles, [candle])
        for running in list(self.running.values()):
            stored = running.stored
            if (stored.symbol, stored.interval) != (candle.symbol, candle.interval):
                continue
            last = running.bot.last_open_time
            if last is not None and candle.open_time <= last:
                continue  # warmed up on it already
            if running.catching_up and await asyncio.to_thread(self._history, running, candle):
                continue
            running.bot.connected = self.connected
            try:
                async with self.stepping:
                    if self.running.get(stored.id or 0) is running:  # not stopped meanwhile
                        await asyncio.to_thread(self._step, running, candle)
            except Exception as error:  # one bot's failure must not stop the others
                log.exception("bot %s failed on candle %s", stored.id, candle.open_time)
                await self._fail(running, error)

    def _history(self, running: RunningBot, candle: Candle) -> bool:
        """Warm a catching-up bot on `candle` when it arrives too late to trade as the backtest
        does — over half an interval after its close, or two of the stream's pushes when the
        demo runs so fast that they take longer (True); else the bot trades from it on."""
        step = interval_ms(candle.interval)
        push_ms = 2 * KLINE_PUSH_S * 1000 * self.speed  # market time: the demo may run faster
        if self._now_ms() > candle.open_time + step + max(step / 2, push_ms):
            running.bot.warm([candle])
            return True
        running.catching_up = False
        return False

    def _step(self, running: RunningBot, candle: Candle) -> None:
        assert running.stored.id is not None
        step = running.bot.on_candle(candle)
        self.db.bots.save_broker_state(running.stored.id, running.snapshot())
        self.publish({"tipo": "bot", "id": running.stored.id, "estado": running.bot.status.value,
                      "open_time": candle.open_time, "objetivo": step.target,
                      "equity": step.equity})  # fmt: skip
        if isinstance(running.broker, ExchangeBroker):
            self._refusals(running, candle)

    def _refusals(self, running: RunningBot, candle: Candle) -> None:
        """What the exchange refused this step (-2019 margin, -4164 notional, …): a decision
        row and a message each, so the reason is visible where the bot's decisions are."""
        assert running.stored.id is not None and isinstance(running.broker, ExchangeBroker)
        refusals, running.broker.refusals = running.broker.refusals, []
        for reason in refusals:
            text = f"rechazada por el exchange: {reason}"[:500]
            decision = StoredDecision(
                running.stored.id, candle.open_time, running.broker.side, candle.close, text
            )  # fmt: skip
            self.db.bots.add_decision(decision)
            self.publish({"tipo": "bot", "id": running.stored.id,
                          "estado": running.bot.status.value, "motivo": text})  # fmt: skip

    async def _fail(self, running: RunningBot, error: Exception) -> None:
        """Move a failed bot to `error` (a person looks, then restarts it) and drop it."""
        assert running.stored.id is not None
        await self._drop(running.stored.id)
        reason = f"{type(error).__name__}: {error}"[:500]
        await asyncio.to_thread(running.bot.move, BotTrigger.FAIL, reason, "bot")
        await asyncio.to_thread(self.db.bots.release, running.stored.id, self.host_id)

    async def on_state(self, state: str, detail: str) -> None:
        self.connected = state == "conectado"
