"""The exchange broker: a bot's decisions as orders on Binance, its testnet or the demo exchange,
with the stop and take-profit kept on the exchange and no duplicate or orphaned order.

Every order has a deterministic client id (core.broker.intents) and is stored before it is sent;
an unknown outcome is settled by asking the exchange (reconcile), never by resending. Like the
paper broker it acts when the decision changes — a stopped-out trade leaves the decision held,
as the backtester does — and an entry is sized as the backtester sizes it. Fills come from the
exchange's userTrades, found through the orders' REST answers, the user stream or reconcile;
each order is settled once, by its order id.
"""

from __future__ import annotations

import logging
import math
import time
from decimal import Decimal
from typing import Any

import numpy as np

from core.broker import Decision
from core.broker.exchange_orders import ExchangeOrders
from core.broker.exchange_trades import protection_levels
from core.broker.intents import (
    EXIT,
    KILL_EXIT,
    PROTECTION_LEGS,
    STOP,
    TAKE,
    Intent,
    leg_kind,
)
from core.broker.paper import Bar, PaperTrade
from core.errors import (
    ExchangeError,
    UnknownOrderError,
)
from core.exchange.trading_types import (
    AccountSnapshot,
    AlgoStatus,
    ExecutionType,
    MarginType,
)
from core.exchange.user_events import AccountUpdate, AlgoUpdate, OrderUpdate
from core.models import OrderState, OrderType, Side

log = logging.getLogger(__name__)
MARGIN_UNCHANGEABLE = -4048  # margin type cannot change while a position or order is open
ALGO_STATES = {
    AlgoStatus.NEW: OrderState.OPEN, AlgoStatus.TRIGGERING: OrderState.OPEN,
    AlgoStatus.TRIGGERED: OrderState.FILLED, AlgoStatus.FINISHED: OrderState.FILLED,
    AlgoStatus.CANCELED: OrderState.CANCELED, AlgoStatus.EXPIRED: OrderState.EXPIRED,
    AlgoStatus.REJECTED: OrderState.REJECTED,
}  # fmt: skip
SETTLED_KEPT = 200  # settled order ids a snapshot keeps: a redelivered fill is booked once
StreamItem = AccountSnapshot | OrderUpdate | AccountUpdate | AlgoUpdate


class ExchangeBroker(ExchangeOrders):
    """core.bot's Broker on a TradingClient, for one bot on one symbol (one-way mode).

    Thread-safe: `on_candle`, `on_user_event`, `reconcile`, `verify` and `kill` take one lock,
    so the user stream's items may be fed from another thread while a candle trades.
    `stop_loss` / `take_profit` are fractions of the entry; otherwise the decision's absolute
    distances are used, as the paper broker does.
    """

    @property
    def side(self) -> float:
        """The open trade's side, 0 when flat."""
        return self.book.trade.side if self.book.trade else 0.0

    def snapshot(self) -> dict[str, Any]:
        """What a restart needs beside the exchange and the stored intents (JSON-ready)."""
        with self._lock:
            return {
                "book": self.book.snapshot(), "entry_candle": self.entry_candle,
                "held": self._held, "settled": sorted(self._settled)[-SETTLED_KEPT:],
            }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `snapshot()`'s output; `start` then reconciles it with the exchange."""
        with self._lock:
            self.book.restore(state["book"])
            self.entry_candle = state["entry_candle"]
            self._held = float(state["held"])
            self._settled = {int(order_id) for order_id in state["settled"]}

    def start(self) -> bool:
        """Leverage, ISOLATED margin, the rules, then reconcile; True when both sides agree."""
        with self._lock:
            self.client.set_leverage(self.symbol, max(1, int(self.costs.leverage)))
            try:
                self.client.set_margin_type(self.symbol, MarginType.ISOLATED)  # -4046: fine
            except ExchangeError as error:
                if error.code != MARGIN_UNCHANGEABLE:
                    raise
                log.warning("%s: margin type left as it is (%s)", self.symbol, error)
            self.rules = self._read_rules()
            self._arm()
            return self.reconcile()

    def on_candle(self, bar: Bar, decision: Decision) -> list[PaperTrade]:
        """Trade the decision taken at `bar`'s close; returns the trades opened or closed since
        the last call (exits first), including those the exchange's stops closed meanwhile."""
        with self._lock:
            self._arm()
            self.book.candle(bar.open_time)
            self._distances = (decision.stop_distance, decision.take_distance)
            if self.intents.pending():
                self.reconcile()
            self._refresh_position()
            self._retry_unsettled()
            if self.book.trade is not None and not self.amount:
                self._book_missing_close()
            target = float(np.sign(decision.target))
            if target != self._held or (target == 0 and self.amount):
                self._trade_to(target, bar)
                self._held = target
            self.verify(refresh=False)  # every path above left the position fresh
            return self.book.drain()

    def _trade_to(self, target: float, bar: Bar) -> None:
        if self.amount and (1.0 if self.amount > 0 else -1.0) != target:
            self._exit(self.ids.fresh(self.intents, bar.open_time, EXIT), EXIT)
        if target and not self.amount:
            self._enter(target, bar)

    def on_user_event(self, item: StreamItem) -> None:
        """Follow the user stream: fills book trades, a snapshot (after any reconnect)
        reconciles."""
        with self._lock:
            if isinstance(item, AccountSnapshot):
                self.reconcile(item)
            elif isinstance(item, OrderUpdate) and item.symbol == self.symbol:
                self._on_order(item)
            elif isinstance(item, AlgoUpdate) and item.symbol == self.symbol:
                self._on_algo(item)
            elif isinstance(item, AccountUpdate):
                self._on_account(item)

    def _on_order(self, update: OrderUpdate) -> None:
        parsed = self.ids.parse(update.client_order_id)
        if update.execution_type is ExecutionType.CALCULATED:
            self._settle(update.order_id, "liq")
        elif parsed is not None and update.state is OrderState.FILLED:
            self._settle(update.order_id, update.client_order_id)
        if parsed is not None and update.state.is_final:
            if self.intents.get(update.client_order_id) is not None:
                self.intents.resolve(update.client_order_id, update.state, update.order_id)

    def _on_algo(self, update: AlgoUpdate) -> None:
        parsed = self.ids.parse(update.client_algo_id)
        if parsed is None:
            return
        if update.status is AlgoStatus.FINISHED and update.actual_order_id is not None:
            self._settle(update.actual_order_id, update.client_algo_id)

    def _on_account(self, update: AccountUpdate) -> None:
        """Funding is booked; a position the event says is flat is confirmed over REST (the
        event may be older than what the broker already did) before protection is cleared."""
        mine = not update.positions or any(p.symbol == self.symbol for p in update.positions)
        if update.reason == "FUNDING_FEE" and mine and self.book.trade is not None:
            self.book.fund(-float(sum(b.balance_change for b in update.balances)))
        if any(p.symbol == self.symbol and not p.amount for p in update.positions):
            self._refresh_position()
            if not self.amount:
                self._book_missing_close()
                self._cancel_protection(keep=None)

    def reconcile(self, snapshot: AccountSnapshot | None = None) -> bool:
        """The exchange (open orders, algo orders, position) against the intents: vanished
        pending intents resolved by their client id, this bot's unknown orders adopted, other
        orders reported as external, fills the stream missed booked. True when both agree."""
        with self._lock:
            snap = snapshot if snapshot is not None else self.client.snapshot(self.symbol)
            agree = self._resolve_pending()
            self._adopt(snap)
            self._refresh_position()  # now, under the lock: a stream's snapshot may be older
            self._retry_unsettled()
            agree = self._sync_trade() and agree
            if agree:
                self.verify()
            return agree

    def _resolve_pending(self) -> bool:
        agree = True
        for intent in self.intents.pending():
            try:
                found = self._lookup(intent)
            except UnknownOrderError:
                log.info("%s never reached the exchange", intent.client_id)
                self.intents.resolve(intent.client_id, OrderState.REJECTED, None)
                continue
            except ExchangeError as error:
                log.warning("%s: cannot ask (%s)", intent.client_id, error)
                agree = False
                continue
            self.intents.resolve(intent.client_id, *found)
            if not intent.is_algo and found[0] in (OrderState.FILLED, OrderState.PARTIAL):
                self._settle(found[1], intent.client_id)
        return agree

    def _lookup(self, intent: Intent) -> tuple[OrderState, int]:
        if intent.is_algo:
            algo = self.client.get_algo_order(client_algo_id=intent.client_id)
            return ALGO_STATES[algo.algo_status], algo.algo_id
        order = self.client.get_order(self.symbol, client_order_id=intent.client_id)
        return order.state, order.order_id

    def _adopt(self, snap: AccountSnapshot) -> None:
        ours: list[tuple[str, int, Side, OrderType, Decimal | None, Decimal | None, bool]] = [
            (o.client_order_id, o.order_id, o.side, o.type, o.orig_qty, None, o.reduce_only)
            for o in snap.open_orders if o.symbol == self.symbol
        ]  # fmt: skip
        ours += [
            (a.client_algo_id, a.algo_id, a.side, a.order_type, None, a.trigger_price,
             a.reduce_only) for a in snap.open_algo_orders if a.symbol == self.symbol
        ]  # fmt: skip
        self.external = {}
        for cid, exchange_id, side, kind, quantity, trigger, reduce in ours:
            parsed = self.ids.parse(cid)
            if parsed is None:
                self.external[cid] = f"{kind.name} {side.name}"
            elif self.intents.get(cid) is None:
                log.info("adopting %s, placed outside this process", cid)
                intent = Intent(cid, self.symbol, parsed[0], parsed[1], side, kind, quantity,
                                trigger, reduce, OrderState.OPEN, exchange_id)  # fmt: skip
                self.intents.record(intent)

    def _sync_trade(self) -> bool:
        """Book what the stream missed: a trade the exchange closed, a position with no trade."""
        if self.book.trade is not None and not self.amount:
            self._book_missing_close()
        elif self.book.trade is None and self.amount:
            self._adopt_position()
        return (self.book.trade is None) == (not self.amount)

    def _book_missing_close(self) -> None:
        """The trade is open but the position is flat: book the close from the protection
        that fired, else from the symbol's other fills since the entry."""
        for cid in self._protection_ids():
            try:
                algo = self.client.get_algo_order(client_algo_id=cid)
            except UnknownOrderError:
                continue
            if algo.actual_order_id is not None:
                self._settle(algo.actual_order_id, cid)
        if self.book.trade is not None:
            self._settle_other_closes(self.book.trade)

    def _settle_other_closes(self, trade: PaperTrade) -> None:
        """A close that is none of this bot's known orders (a liquidation, a manual close):
        the symbol's fills since the entry, against the trade, of orders not booked yet."""
        fills = self.client.user_trades(self.symbol, start_time=trade.entry_time)
        against = {f.order_id for f in fills if (1.0 if f.side is Side.BUY else -1.0) != trade.side}
        for order_id in sorted(against - self._settled):
            self._settle(order_id, "externo")

    def _protection_ids(self) -> list[str]:
        candle = self.entry_candle
        if candle is None:
            return []
        ids = []
        for leg in PROTECTION_LEGS:
            for generation in range(1, 100):
                cid = self.ids.make(candle, leg, generation)
                if self.intents.get(cid) is None:
                    break
                ids.append(cid)
        return ids

    def _adopt_position(self) -> None:
        """Follow a position found with no trade (a restart after the fill, a manual entry):
        its protection is what this bot has on the exchange for it, else the settings'."""
        position = self.position
        assert position is not None
        side = 1.0 if position.amount > 0 else -1.0
        entry = float(position.entry_price)
        self.book.adopt(side, float(abs(position.amount)), entry, position.update_time)
        mine = {p: a for p, a in ((self.ids.parse(c), a) for c, a in self._mine().items()) if p}
        self.entry_candle = max((p[0] for p in mine), default=self.book.last_open)
        found = {
            leg_kind(p[1]): a.trigger_price for p, a in mine.items() if p[0] == self.entry_candle
        }
        stop, take, _ = protection_levels(
            entry, side, self._distance(self.stop_loss, 0), self._distance(self.take_profit, 1),
            self.costs, self._rules().tick_size,
        )  # fmt: skip
        self.book.protect(found.get(STOP, stop), found.get(TAKE, take))
        self._held = side
        log.warning("%s: adopted a position of %s", self.symbol, position.amount)

    def kill(self) -> list[PaperTrade]:
        """Cancel every regular and algo order of the symbol, close the position reduce-only;
        returns the trades this closed."""
        with self._lock:
            self.client.cancel_all_orders(self.symbol)
            self.client.cancel_all_algo_orders(self.symbol)
            self._refresh_position()
            if self.amount:
                stamp = int(time.time() * 1000)
                self._exit(self.ids.fresh(self.intents, stamp, KILL_EXIT), KILL_EXIT)
            self._held = 0.0
            self.client.countdown_cancel_all(self.symbol, 0)
            self._armed_at = -math.inf  # a later start arms it again
            return self.book.drain()
