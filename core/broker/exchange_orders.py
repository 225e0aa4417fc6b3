"""The exchange broker's orders: sending each intent once (stored first), following its fills
into trades, and keeping the stop and take-profit of the open trade on the exchange.

ExchangeOrders is the half of core.broker.exchange.ExchangeBroker that talks orders; the broker
adds the Broker protocol, the user stream, reconciliation and the kill switch.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import numpy as np

from core.broker.exchange_trades import FillSummary, TradeBook, protection_levels, summarize
from core.broker.intents import (
    ENTRY,
    EXIT,
    KILL_EXIT,
    REFUSED_EXIT,
    STOP,
    TAKE,
    TRAIL,
    ClientIds,
    Intent,
    IntentStore,
    MemoryIntents,
    leg_kind,
)
from core.broker.paper import Bar
from core.errors import (
    OrderRejectedError,
    OutcomeUnknownError,
    ReduceOnlyRejectedError,
    UnknownOrderError,
    WouldTriggerError,
)
from core.exchange.order_requests import AlgoOrderRequest, OrderRequest
from core.exchange.trading import TradingClient
from core.exchange.trading_types import (
    AlgoOrder,
    ExchangeOrder,
    Position,
    WorkingType,
)
from core.fills import Costs
from core.models import OrderState, OrderType, Side
from core.rules import SymbolRules

log = logging.getLogger(__name__)
COUNTDOWN_MS = 120_000
REASONS = {EXIT: "senal", STOP: "stop_loss", REFUSED_EXIT: "stop_loss", TAKE: "take_profit",
           TRAIL: "stop_movil", KILL_EXIT: "kill", "liq": "liquidacion"}  # fmt: skip


class ExchangeOrders:
    """Orders, fills and protection of one bot on one symbol (one-way mode); see ExchangeBroker.

    `stop_loss` / `take_profit` are fractions of the entry; otherwise the decision's absolute
    distances are used, as the paper broker does. `trailing` (a callback fraction) adds a
    TRAILING_STOP_MARKET for the position's quantity, reduce-only.
    """

    def __init__(
        self,
        client: TradingClient,
        symbol: str,
        bot_id: str,
        capital: float,
        costs: Costs,
        interval_ms: int,
        rules: Callable[[], SymbolRules],
        intents: IntentStore | None = None,
        *,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trailing: float | None = None,
        countdown_ms: int = COUNTDOWN_MS,
        fill_timeout_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.symbol, self.costs = client, symbol, costs
        self.ids = ClientIds(bot_id)
        self.intents: IntentStore = intents if intents is not None else MemoryIntents()
        self.book = TradeBook(capital, interval_ms)
        self.stop_loss, self.take_profit, self.trailing = stop_loss, take_profit, trailing
        self.countdown_ms, self.fill_timeout_s = countdown_ms, fill_timeout_s
        self._read_rules = rules
        self.rules: SymbolRules | None = None
        self.amount = Decimal(0)  # the exchange position, signed
        self.position: Position | None = None
        self.entry_candle: int | None = None  # the open trade's entry candle: its protection ids
        self.external: dict[str, str] = {}  # open orders of the symbol that are not this bot's
        self.refusals: list[str] = []
        self._held = 0.0
        self._distances: tuple[float | None, float | None] = (None, None)
        self._settled: set[int] = set()
        self._unsettled: dict[int, str] = {}  # filled order → client id, fills not listed yet
        self._monotonic = monotonic
        self._armed_at = -math.inf
        self._lock = threading.RLock()

    def equity(self, mark: float) -> float:
        """The bot's capital plus its closed PnL, plus the open trade's at `mark`."""
        return self.book.equity(mark)

    def _enter(self, side: float, bar: Bar) -> None:
        quantity = self._entry_quantity(bar.close)
        if quantity is None:
            return
        order_side = Side.BUY if side > 0 else Side.SELL
        cid = self.ids.fresh(self.intents, bar.open_time, ENTRY)
        intent = Intent(cid, self.symbol, bar.open_time, ENTRY, order_side, OrderType.MARKET,
                        quantity)  # fmt: skip
        order = self._send(intent)
        if order is not None:
            self._follow_fill(order)

    def _entry_quantity(self, price: float) -> Decimal | None:
        """Equity x size x leverage / price, down to the market step; None (reason logged)
        below the minimum quantity or notional."""
        rules = self._rules()
        step = rules.market_step_size or rules.step_size
        raw = Decimal(repr(self.equity(price) * self.costs.exposure / price))
        quantity = (raw // step) * step if step else raw
        if rules.market_max_qty and quantity > rules.market_max_qty:
            quantity = rules.market_max_qty
        low = rules.market_min_qty or rules.min_qty
        if quantity <= 0 or quantity < low:
            self._refuse(f"entry {quantity} below the minimum quantity {low}")
            return None
        if quantity * Decimal(repr(price)) < rules.min_notional:
            floor = rules.min_notional
            self._refuse(f"entry {quantity} x {price} below the notional {floor}")
            return None
        return quantity

    def _refuse(self, reason: str) -> None:
        log.warning("%s %s: %s", self.ids.bot_id, self.symbol, reason)
        self.refusals.append(reason)

    def _exit(self, cid: str, leg: str) -> None:
        """Close the whole position with a reduce-only MARKET order, then clear protection."""
        if not self.amount:
            return
        side = Side.SELL if self.amount > 0 else Side.BUY
        candle = self.ids.parse(cid)
        intent = Intent(cid, self.symbol, candle[0] if candle else 0, leg, side, OrderType.MARKET,
                        abs(self.amount), reduce_only=True)  # fmt: skip
        order = self._send(intent)
        if order is not None:
            self._follow_fill(order)
        self._refresh_position()
        if not self.amount:
            self._cancel_protection(keep=None)

    def _send(self, intent: Intent) -> ExchangeOrder | None:
        """Store, then send once; None when refused (logged) or when the outcome is unknown
        (the intent stays pending: reconcile asks the exchange for it)."""
        self.intents.record(intent)
        assert intent.quantity is not None
        request = OrderRequest(intent.symbol, intent.side, intent.type, intent.quantity,
                               intent.client_id, reduce_only=intent.reduce_only)  # fmt: skip
        try:
            order = self.client.place_order(request)
        except OutcomeUnknownError as error:
            log.warning("%s: outcome unknown (%s): reconcile will ask", intent.client_id, error)
            return None
        except OrderRejectedError as error:
            self.intents.resolve(intent.client_id, OrderState.REJECTED, None)
            if not isinstance(error, ReduceOnlyRejectedError):
                self._refuse(f"{intent.client_id} refused: {error.code} {error}")
            return None
        self.intents.resolve(intent.client_id, order.state, order.order_id)
        return order

    def _follow_fill(self, order: ExchangeOrder) -> None:
        """Wait (bounded) for a market order to fill, then settle its fills; the first look is
        at once (an exchange may answer NEW and fill a moment later), then backing off."""
        deadline = time.monotonic() + self.fill_timeout_s
        pause = 0.0
        while not order.state.is_final and time.monotonic() < deadline:
            time.sleep(pause)
            order = self.client.get_order(self.symbol, order_id=order.order_id)
            pause = min(max(2 * pause, 0.005), 0.1)
        self.intents.resolve(order.client_order_id, order.state, order.order_id)
        if order.executed_qty > 0:
            self._settle(order.order_id, order.client_order_id)

    def _settle(self, order_id: int, client_id: str) -> None:
        """Book one order's fills once (`client_id`: whose order it is, "liq" for a
        liquidation): a fill from flat opens the trade and protects it, a fill against the
        trade closes it."""
        if order_id in self._settled:
            return
        fills = self.client.user_trades(self.symbol, order_id=order_id)
        if not fills:
            self._unsettled[order_id] = client_id
            return
        self._settled.add(order_id)
        self._unsettled.pop(order_id, None)
        fill, parsed = summarize(fills), self.ids.parse(client_id)
        leg = leg_kind(parsed[1]) if parsed else client_id
        trade = self.book.trade
        if trade is None and leg == ENTRY:
            self._open(fill, parsed[0] if parsed else self.book.last_open)
        elif trade is not None and fill.side != trade.side:
            self.book.close(fill, REASONS.get(leg, "externo"))
            self.entry_candle = None
            self._refresh_position()
            if not self.amount:
                self._cancel_protection(keep=None)

    def _open(self, fill: FillSummary, candle: int) -> None:
        stop, take = self._distance(self.stop_loss, 0), self._distance(self.take_profit, 1)
        stop_price, take_price, liquidation = protection_levels(
            fill.price, fill.side, stop, take, self.costs, self._rules().tick_size
        )
        self.book.open(fill, stop_price, take_price, liquidation)
        self.entry_candle = candle
        self._held = fill.side
        self._refresh_position()
        self._protect()

    def _distance(self, fraction: float | None, index: int) -> float | np.ndarray | None:
        if fraction is not None:
            return fraction
        absolute = self._distances[index]
        return None if absolute is None else np.array([absolute])

    def _retry_unsettled(self) -> None:
        for order_id, leg in list(self._unsettled.items()):
            self._settle(order_id, leg)

    def _refresh_position(self) -> None:
        positions = [p for p in self.client.positions(self.symbol) if p.symbol == self.symbol]
        self.position = positions[0] if positions else None  # one-way mode: one at most
        self.amount = sum((p.amount for p in positions), Decimal(0))

    def verify(self, refresh: bool = True) -> None:
        """Protection for the open position, re-placed if missing; none left when flat.
        `refresh=False` trusts the position just read."""
        with self._lock:
            if refresh:
                self._refresh_position()
            if not self.amount:
                self._cancel_protection(keep=None)
            elif self.book.trade is not None:
                self._protect()  # a position nobody adopted yet keeps what it has

    def _mine(self) -> dict[str, AlgoOrder]:
        """This bot's open algo orders of the symbol, by client id."""
        algos = self.client.open_algo_orders(self.symbol)
        return {a.client_algo_id: a for a in algos if self.ids.parse(a.client_algo_id)}

    def _protect(self) -> None:
        trade, candle = self.book.trade, self.entry_candle
        if trade is None or candle is None:
            return
        mine = self._cancel_protection(keep=candle)
        present = {leg_kind(p[1]) for p in map(self.ids.parse, mine) if p and p[0] == candle}
        side = Side.SELL if trade.side > 0 else Side.BUY
        wanted = [(STOP, trade.stop), (TAKE, trade.take)]
        if self.trailing is not None:
            wanted.append((TRAIL, self.trailing))
        for leg, level in wanted:
            if leg in present or not np.isfinite(level):
                continue
            try:
                self._place_protection(candle, leg, side, Decimal(repr(level)))
            except WouldTriggerError:
                log.warning("%s: stop already triggered (-2021): exiting now", self.symbol)
                self._refresh_position()
                self._exit(self.ids.fresh(self.intents, candle, REFUSED_EXIT), REFUSED_EXIT)
                return

    def _place_protection(self, candle: int, leg: str, side: Side, level: Decimal) -> None:
        """Place one protection leg: a stop or take-profit closing the position at trigger
        `level`, or the trailing stop (`level` its callback fraction) for its quantity."""
        cid = self.ids.fresh(self.intents, candle, leg)
        if leg == TRAIL:
            kind, rate = OrderType.TRAILING_STOP_MARKET, (level * 100).quantize(Decimal("0.1"))
            quantity = abs(self.amount)
            self.intents.record(Intent(cid, self.symbol, candle, leg, side, kind, quantity,
                                       reduce_only=True, callback_rate=rate))  # fmt: skip
            request = AlgoOrderRequest(
                self.symbol, side, kind, cid, quantity=quantity, reduce_only=True,
                callback_rate=rate, working_type=WorkingType.MARK_PRICE,
            )  # fmt: skip
        else:
            kind = OrderType.STOP_MARKET if leg == STOP else OrderType.TAKE_PROFIT_MARKET
            self.intents.record(Intent(cid, self.symbol, candle, leg, side, kind, None, level))
            request = AlgoOrderRequest(
                self.symbol, side, kind, cid, trigger_price=level,
                working_type=WorkingType.MARK_PRICE, close_position=True,
            )  # fmt: skip
        try:
            algo = self.client.place_algo_order(request)
        except OutcomeUnknownError as error:
            log.warning("%s: outcome unknown (%s): reconcile will ask", cid, error)
            return
        except OrderRejectedError:
            self.intents.resolve(cid, OrderState.REJECTED, None)
            raise
        self.intents.resolve(cid, OrderState.OPEN, algo.algo_id)

    def _cancel_protection(self, keep: int | None) -> dict[str, AlgoOrder]:
        """Cancel this bot's open algo orders of any candle but `keep` (orphans); returns the
        ones kept."""
        kept = {}
        for cid, algo in self._mine().items():
            parsed = self.ids.parse(cid)
            if parsed is not None and parsed[0] == keep:
                kept[cid] = algo
                continue
            log.info("%s: cancelling orphan protection %s", self.symbol, cid)
            try:
                self.client.cancel_algo_order(algo_id=algo.algo_id)
            except UnknownOrderError:
                pass  # triggered or ended meanwhile
            if self.intents.get(cid) is not None:
                self.intents.resolve(cid, OrderState.CANCELED, algo.algo_id)
        return kept

    def _arm(self) -> None:
        """Renew the dead-man's switch — the exchange cancels the symbol's orders if the bot
        stops renewing it — once a quarter of its countdown has passed (it runs on the real
        clock, whatever the market's speed)."""
        now = self._monotonic()
        if now - self._armed_at >= self.countdown_ms / 4_000:
            self.client.countdown_cancel_all(self.symbol, self.countdown_ms)
            self._armed_at = now

    def _rules(self) -> SymbolRules:
        if self.rules is None:
            self.rules = self._read_rules()
        return self.rules
