"""What fills do to a demo account: positions, wallet, fees, liquidations, funding, and the
user-stream events that report each change, in the order it happens."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core import costs
from core.exchange.demo import margin, trade_wire
from core.exchange.demo.accounts import Account, Accounts
from core.exchange.demo.errors import BinanceError
from core.exchange.demo.market import DemoMarket
from core.exchange.demo.orders import AlgoOrder, Fill, Order, Position
from core.exchange.demo.premium import funding_rate
from core.exchange.demo.symbols import SymbolSpec

EventSink = Callable[[Account, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Fees:
    """Commission rates, fractions of notional (Binance's base tier by default)."""

    maker: float = costs.MAKER_FEE
    taker: float = costs.TAKER_FEE


def ignore_events(account: Account, event: dict[str, Any]) -> None:
    """The sink of an engine nobody listens to."""


class Ledger:
    """Books fills, liquidations and funding into accounts and reports them to a sink."""

    def __init__(
        self,
        market: DemoMarket,
        accounts: Accounts,
        seed: int,
        fees: Fees | None = None,
        sink: EventSink = ignore_events,
    ) -> None:
        self.market, self.accounts, self.seed = market, accounts, seed
        self.fees = fees or Fees()
        self.sink = sink
        # The next of each id (saved with the state, so ids never repeat across restarts).
        self.ids = {
            "order": 8_000_000_001,
            "algo": 4_000_000_001,
            "trade": 600_000_001,
            "sequence": 0,
            "liquidation": 1,
        }

    def take_id(self, kind: str) -> int:
        value = self.ids[kind]
        self.ids[kind] = value + 1
        return value

    def new_order_id(self) -> int:
        return self.take_id("order")

    def new_algo_id(self) -> int:
        return self.take_id("algo")

    def next_sequence(self) -> int:
        return self.take_id("sequence")

    @property
    def specs(self) -> Mapping[str, SymbolSpec]:
        return self.market.symbols

    def price(self, symbol: str, now_ms: int) -> int:
        """The last price in price units; -4xxx style refusal before the listing."""
        units = self.market.price_at(symbol, now_ms)
        if units is None:
            raise BinanceError(-4140, "Invalid symbol status for opening position.")
        return units

    def mark(self, now_ms: int) -> margin.MarkPrice:
        """The demo's mark price (its last price) of any symbol at `now_ms`, in USDT."""
        return lambda symbol: margin.units_to_price(
            self.market.symbols[symbol], self.price(symbol, now_ms)
        )

    def short_of_margin(self, account: Account, order: Order, now_ms: int) -> bool:
        """Whether the account lacks the initial margin for the exposure `order` adds."""
        price = order.price or self.price(order.symbol, now_ms)
        return self._short_of_margin(account, order, price, now_ms)

    def _short_of_margin(self, account: Account, order: Order, price: int, now_ms: int) -> bool:
        spec = self._spec(order.symbol)
        amount = account.book.position(order.symbol).amount
        added = max(0, abs(amount + order.sign * order.remaining) - abs(amount))
        if not added:
            return False
        notional = margin.steps_to_quantity(spec, added) * margin.units_to_price(spec, price)
        needed = notional / account.config(order.symbol).leverage
        needed += costs.fee(notional, self.fees.taker)
        return needed > margin.available_balance(account, self.specs, self.mark(now_ms))

    def _fill(self, account: Account, order: Order, price: int, maker: bool, now_ms: int) -> None:
        """Execute the order's remaining quantity at `price` (reduce-only: what it can reduce)."""
        spec = self._spec(order.symbol)
        position = account.book.position(order.symbol)
        quantity = order.remaining
        if order.reduce_only:
            quantity = min(quantity, abs(position.amount) if position.side == -order.sign else 0)
            if quantity <= 0:
                self._end(account, order, "EXPIRED", now_ms)
                return
        notional = margin.steps_to_quantity(spec, quantity) * margin.units_to_price(spec, price)
        commission = costs.fee(notional, self.fees.maker if maker else self.fees.taker)
        self._execute(account, spec, order, quantity, price, commission, maker, now_ms)
        if order.is_open and order.reduce_only:
            self._end(account, order, "EXPIRED", now_ms)  # the position it reduced is gone

    def _execute(
        self,
        account: Account,
        spec: SymbolSpec,
        order: Order,
        quantity: int,
        price: int,
        commission: float,
        maker: bool,
        now_ms: int,
        execution: str = "TRADE",
    ) -> None:
        position = account.book.position(order.symbol)
        realized = margin.apply_fill(
            spec, position, order.sign * quantity, price, commission, now_ms
        )
        account.wallet_balance += realized - commission
        account.update_ms = now_ms
        order.executed += quantity
        order.cum_quote += quantity * price
        order.status = "FILLED" if order.executed == order.quantity else "PARTIALLY_FILLED"
        order.update_ms = now_ms
        fill = Fill(
            self.take_id("trade"), order.order_id, order.symbol, order.side, price, quantity,
            commission, realized, maker, now_ms,
        )  # fmt: skip
        account.book.fills.append(fill)
        self._order_event(account, order, execution, now_ms, fill)
        # `bc` is the balance change other than PnL and commission: none for a fill.
        self._account_event(account, "ORDER", [position], 0.0, now_ms)
        if not order.is_open:
            self._finish_parent(account, order, now_ms)

    def _liquidate(
        self, account: Account, spec: SymbolSpec, position: Position, level: float, at_ms: int
    ) -> None:
        """Close the position at its liquidation price; the fee is its maintenance margin.

        Open orders of the symbol are cancelled first, as Binance does; conditional orders
        stay. What the wallet loses is the position's margin, as in the backtester.
        """
        for order in account.book.open_orders(spec.symbol):
            self._end(account, order, "CANCELED", at_ms)
        tick = spec.tick_units
        price = max(tick, round(level * 10**spec.price_decimals / tick) * tick)
        quantity = abs(position.amount)
        notional = margin.steps_to_quantity(spec, quantity) * margin.units_to_price(spec, price)
        rate, cum = margin.maintenance_tier(spec.symbol, notional)
        order = Order(
            order_id=self.new_order_id(),
            client_id=f"autoclose-{at_ms}{self.take_id('liquidation')}",
            symbol=spec.symbol,
            side="SELL" if position.side > 0 else "BUY",
            type="MARKET",
            quantity=quantity,
            price=price,
            time_in_force="IOC",
            reduce_only=True,
            time_ms=at_ms,
            sequence=self.next_sequence(),
        )
        account.book.orders[order.order_id] = order
        commission = max(0.0, notional * rate - cum)
        self._execute(account, spec, order, quantity, price, commission, False, at_ms, "CALCULATED")

    def _settle_funding(self, spec: SymbolSpec, instant_ms: int) -> None:
        """Every position on the symbol pays (or receives) funding at `instant_ms`."""
        rate = float(funding_rate(self.seed, spec.symbol, instant_ms))
        price = margin.units_to_price(spec, self.price(spec.symbol, instant_ms))
        for account in self.accounts:
            position = account.book.position(spec.symbol)
            if not position.amount:
                continue
            quantity = margin.steps_to_quantity(spec, abs(position.amount))
            payment = float(costs.funding_payment(position.side, quantity, price, rate))
            account.wallet_balance -= payment
            account.update_ms = instant_ms
            # Binance reports a cross position's funding with the balance only.
            isolated = margin.is_isolated(account, spec.symbol)
            rows = [position] if isolated else []
            self._account_event(account, "FUNDING_FEE", rows, -payment, instant_ms)

    def _end(self, account: Account, order: Order, status: str, now_ms: int) -> None:
        order.status, order.update_ms = status, now_ms
        self._order_event(account, order, status, now_ms)
        self._finish_parent(account, order, now_ms)

    def _end_algo(self, account: Account, algo: AlgoOrder, status: str, now_ms: int) -> None:
        algo.status, algo.update_ms = status, now_ms
        child = self._child(account, algo)
        self.sink(account, trade_wire.algo_update(self._spec(algo.symbol), algo, now_ms, child))

    def _finish_parent(self, account: Account, order: Order, now_ms: int) -> None:
        algo = account.book.algo_orders.get(order.algo_id) if order.algo_id else None
        if algo is not None and algo.status == "TRIGGERED":
            status = "REJECTED" if order.status == "REJECTED" else "FINISHED"
            self._end_algo(account, algo, status, now_ms)

    def _child(self, account: Account, algo: AlgoOrder) -> Order | None:
        return account.book.orders.get(algo.order_id) if algo.order_id else None

    def _order_event(
        self, account: Account, order: Order, execution: str, now_ms: int, fill: Fill | None = None
    ) -> None:
        spec = self._spec(order.symbol)
        self.sink(account, trade_wire.order_update(spec, order, execution, now_ms, fill))

    def _account_event(
        self, account: Account, reason: str, positions: list[Position], change: float, now_ms: int
    ) -> None:
        mark = self.mark(now_ms)
        rows = [
            trade_wire.account_position(account, self.specs, p, mark(p.symbol)) for p in positions
        ]
        cross = margin.cross_wallet(account, self.specs)
        update = trade_wire.account_update(account, reason, rows, change, cross, now_ms)
        self.sink(account, update)

    def _spec(self, symbol: str) -> SymbolSpec:
        return self.market.symbols[symbol]
