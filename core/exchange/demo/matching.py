"""The demo exchange's matching engine on its own deterministic market.

The market's last price moves every STEP_MS of demo time along the path the klines and streams
show. `advance(now)` walks that path from where it stopped: resting limits fill when the price
trades through them (maker), conditional orders trigger and become regular orders, positions
are liquidated at their liquidation price, funding settles at 00:00/08:00/16:00 UTC and GTD
orders expire — in the order they happen, each change pushed to the account's user stream.
Single-threaded: use it from the exchange's event loop. The clocks are injected, so tests move
time instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from core import costs
from core.exchange.demo import margin, trade_wire
from core.exchange.demo.accounts import Account, Accounts
from core.exchange.demo.errors import BinanceError
from core.exchange.demo.ledger import EventSink, Fees, Ledger, ignore_events
from core.exchange.demo.market import STEP_MS, DemoMarket
from core.exchange.demo.orders import AlgoOrder, Order, algo_triggers
from core.exchange.demo.symbols import SymbolSpec
from core.intervals import MINUTE_MS

__all__ = ["Fees", "MatchingEngine"]


class MatchingEngine(Ledger):
    """Orders, positions and margin of every account of one demo exchange."""

    def __init__(
        self,
        market: DemoMarket,
        accounts: Accounts,
        seed: int,
        fees: Fees | None = None,
        sink: EventSink = ignore_events,
        real_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(market, accounts, seed, fees, sink)
        self.real_clock = real_clock
        self._processed: dict[str, int] = {}  # symbol → demo instant walked up to

    def walked(self) -> dict[str, int]:
        """The instant the walk reached on each symbol it follows."""
        return dict(self._processed)

    def watch(self, symbol: str, now_ms: int) -> None:
        """Start walking `symbol`'s price path from `now_ms` (it holds orders or a position)."""
        self._processed.setdefault(symbol, now_ms)

    # -- orders ---------------------------------------------------------------------------

    def submit(self, account: Account, order: Order, now_ms: int) -> None:
        """Accept a checked order: NEW, then an immediate taker fill if it is marketable.

        A marketable limit fills at the current price (never worse than its own); an IOC or
        FOK that is not marketable expires; anything else rests until the price trades
        through it.
        """
        self.advance(now_ms)
        account.book.orders[order.order_id] = order
        self.watch(order.symbol, now_ms)
        self._order_event(account, order, "NEW", now_ms)
        self._match_new(account, order, self.price(order.symbol, now_ms), now_ms)

    def _match_new(self, account: Account, order: Order, price: int, now_ms: int) -> None:
        marketable = order.type == "MARKET" or order.sign * (price - order.price) <= 0
        if marketable and order.time_in_force == "GTX":
            self._end(account, order, "EXPIRED", now_ms)  # post-only never takes
        elif marketable:
            self._fill(account, order, price, maker=False, now_ms=now_ms)
        elif order.time_in_force in ("IOC", "FOK"):
            self._end(account, order, "EXPIRED", now_ms)

    def submit_algo(self, account: Account, algo: AlgoOrder, now_ms: int) -> None:
        """Accept a checked conditional order; it waits for its trigger."""
        self.advance(now_ms)
        account.book.algo_orders[algo.algo_id] = algo
        self.watch(algo.symbol, now_ms)
        if algo.order_type == "TRAILING_STOP_MARKET":
            price = self.price(algo.symbol, now_ms)
            if not algo.activate_price or algo.sign * (price - algo.activate_price) <= 0:
                algo.activated, algo.extreme = True, price
        self.sink(account, trade_wire.algo_update(self._spec(algo.symbol), algo, now_ms))

    def cancel(self, account: Account, order: Order, now_ms: int) -> None:
        self.advance(now_ms)
        if not order.is_open:
            raise BinanceError(-2011, "Unknown order sent.")
        self._end(account, order, "CANCELED", now_ms)

    def cancel_algo(self, account: Account, algo: AlgoOrder, now_ms: int) -> None:
        self.advance(now_ms)
        if not algo.is_open:
            raise BinanceError(-2011, "Unknown order sent.")
        self._end_algo(account, algo, "CANCELED", now_ms)

    def modify(
        self, account: Account, order: Order, quantity: int, price: int, now_ms: int
    ) -> None:
        """PUT /fapi/v1/order: new price and quantity, a new place in the queue."""
        self.advance(now_ms)
        if not order.is_open:
            raise BinanceError(-2013, "Order does not exist.")
        if order.type != "LIMIT":
            raise BinanceError(-4326, "Only limit orders can be modified.")
        if quantity == order.quantity and price == order.price:
            raise BinanceError(-5027, "No need to modify the order.")
        if quantity <= order.executed:
            raise BinanceError(-4003, "Quantity less than or equal to zero.")
        order.quantity, order.price = quantity, price
        order.sequence, order.update_ms = self.next_sequence(), now_ms
        self._order_event(account, order, "AMENDMENT", now_ms)
        current = self.price(order.symbol, now_ms)
        if order.sign * (current - order.price) <= 0:
            self._fill(account, order, current, maker=False, now_ms=now_ms)

    def arm_countdown(self, account: Account, symbol: str, countdown_ms: int) -> None:
        """Cancel the symbol's open orders unless renewed within `countdown_ms` (0 disarms).

        Measured on the real clock, like the heartbeat it guards; conditional orders stay, so
        a dead bot's stops keep protecting its position.
        """
        if countdown_ms == 0:
            account.book.countdowns.pop(symbol, None)
        else:
            deadline = self.real_clock() + countdown_ms / 1000
            account.book.countdowns[symbol] = (deadline, countdown_ms)

    # -- the walk -------------------------------------------------------------------------

    def advance(self, now_ms: int) -> None:
        """Process everything that happened on the market up to `now_ms`."""
        self._run_countdowns(now_ms)
        for symbol in list(self._processed):
            self._advance_symbol(symbol, now_ms)

    def _advance_symbol(self, symbol: str, now_ms: int) -> None:
        spec = self._spec(symbol)
        t = self._processed[symbol]
        while t < now_ms:
            first = (t // STEP_MS + 1) * STEP_MS
            if first > now_ms:
                break
            minute = first - first % MINUTE_MS
            last = min(now_ms - now_ms % STEP_MS, minute + MINUTE_MS - STEP_MS)
            if first == minute and minute % costs.FUNDING_INTERVAL_MS == 0:
                self._settle_funding(spec, minute)
            prices = self.market.minute_prices(symbol, minute)
            window = prices[(first - minute) // STEP_MS : (last - minute) // STEP_MS + 1]
            hit = self._first_hit(spec, window, first)
            if hit is None:
                self._trail(symbol, window)
                t = last
                continue
            at = first + hit * STEP_MS
            self._trail(symbol, window[:hit])
            self._process_step(spec, int(window[hit]), at)
            self._trail(symbol, window[hit : hit + 1])
            t = at
        self._processed[symbol] = now_ms
        if not self._holds(symbol):
            del self._processed[symbol]

    def _holds(self, symbol: str) -> bool:
        """Whether any account still has something on `symbol` the walk must follow."""
        for account in self.accounts:
            book = account.book
            if book.open_orders(symbol) or book.open_algo_orders(symbol):
                return True
            if book.position(symbol).amount:
                return True
        return False

    def _first_hit(self, spec: SymbolSpec, window: np.ndarray, first_ms: int) -> int | None:
        """Index in `window` of the first step at which anything on the symbol happens."""
        hits: list[int] = []
        for account in self.accounts:
            book = account.book
            for order in book.open_orders(spec.symbol):
                if order.good_till:
                    due = -(-(order.good_till - first_ms) // STEP_MS)
                    if due < len(window):
                        hits.append(max(0, due))
                hits.extend(_first(order.sign * (order.price - window) > 0))
            for algo in book.open_algo_orders(spec.symbol):
                hits.extend(_first(algo_triggers(algo, window)))
            position = book.position(spec.symbol)
            if position.amount:
                liquidation = margin.liquidation_price(
                    account, self.specs, position, self.mark(first_ms)
                )
                if liquidation > 0:
                    level = liquidation * 10**spec.price_decimals
                    hits.extend(_first(position.side * (level - window) >= 0))
        return min(hits) if hits else None

    def _process_step(self, spec: SymbolSpec, price: int, at_ms: int) -> None:
        """Everything due at one step, liquidations first, then triggers, fills, expiries."""
        symbol = spec.symbol
        for account in list(self.accounts):
            book = account.book
            position = book.position(symbol)
            if position.amount:
                liquidation = margin.liquidation_price(
                    account, self.specs, position, self.mark(at_ms)
                )
                level = liquidation * 10**spec.price_decimals
                if liquidation > 0 and position.side * (level - price) >= 0:
                    self._liquidate(account, spec, position, liquidation, at_ms)
            for algo in sorted(book.open_algo_orders(symbol), key=lambda a: a.algo_id):
                if algo_triggers(algo, np.array([price]))[0]:
                    self._fire(account, algo, price, at_ms)
            for order in sorted(book.open_orders(symbol), key=lambda o: o.sequence):
                if order.good_till and order.good_till <= at_ms:
                    self._end(account, order, "EXPIRED", at_ms)
                elif order.sign * (order.price - price) > 0:
                    self._fill(account, order, order.price, maker=True, now_ms=at_ms)

    def _trail(self, symbol: str, window: np.ndarray) -> None:
        """Carry trailing stops' activation and best price over steps that triggered nothing."""
        if not len(window):
            return
        for account in self.accounts:
            for algo in account.book.open_algo_orders(symbol):
                if algo.order_type != "TRAILING_STOP_MARKET":
                    continue
                seen = window
                if not algo.activated:
                    reached = np.flatnonzero(algo.sign * (window - algo.activate_price) <= 0)
                    if not len(reached):
                        continue
                    algo.activated, algo.extreme = True, int(window[reached[0]])
                    seen = window[reached[0] :]
                if algo.sign < 0:
                    algo.extreme = max(algo.extreme, int(seen.max()))
                else:
                    algo.extreme = min(algo.extreme, int(seen.min()))

    # -- what happens ---------------------------------------------------------------------

    def _fire(self, account: Account, algo: AlgoOrder, price: int, at_ms: int) -> None:
        """A triggered conditional order becomes a regular MARKET or LIMIT order."""
        position = account.book.position(algo.symbol)
        reducible = abs(position.amount) if position.side == -algo.sign else 0
        quantity = reducible if algo.close_position else algo.quantity
        if algo.reduce_only or algo.close_position:
            quantity = min(quantity, reducible)
        algo.trigger_ms = at_ms
        if quantity <= 0:
            self._end_algo(account, algo, "EXPIRED", at_ms)
            return
        limit = algo.order_type in ("STOP", "TAKE_PROFIT")
        order = Order(
            order_id=self.new_order_id(),
            client_id=algo.client_algo_id,
            symbol=algo.symbol,
            side=algo.side,
            type="LIMIT" if limit else "MARKET",
            orig_type=algo.order_type,
            quantity=quantity,
            price=algo.price if limit else 0,
            time_in_force=algo.time_in_force if limit else "GTC",
            reduce_only=algo.reduce_only or algo.close_position,
            close_position=algo.close_position,
            stop_price=algo.trigger_price,
            working_type=algo.working_type,
            activate_price=algo.activate_price,
            callback_rate=algo.callback_rate,
            algo_id=algo.algo_id,
            time_ms=at_ms,
            sequence=self.next_sequence(),
        )
        algo.status, algo.order_id, algo.update_ms = "TRIGGERED", order.order_id, at_ms
        self.sink(account, trade_wire.algo_update(self._spec(algo.symbol), algo, at_ms))
        if not order.reduce_only and self._short_of_margin(account, order, price, at_ms):
            account.book.orders[order.order_id] = order
            self._end(account, order, "REJECTED", at_ms)
            return
        account.book.orders[order.order_id] = order
        self._order_event(account, order, "NEW", at_ms)
        self._match_new(account, order, price, at_ms)

    def _run_countdowns(self, now_ms: int) -> None:
        real = self.real_clock()
        for account in self.accounts:
            for symbol, (deadline, _) in list(account.book.countdowns.items()):
                if real >= deadline:
                    del account.book.countdowns[symbol]
                    for order in account.book.open_orders(symbol):
                        self._end(account, order, "CANCELED", now_ms)


def _first(condition: np.ndarray) -> list[int]:
    """[index of the first True] or []."""
    index = int(np.argmax(condition)) if len(condition) else 0
    return [index] if len(condition) and condition[index] else []
