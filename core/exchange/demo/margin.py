"""Margin arithmetic of a demo account: position margin, unrealised PnL, liquidation price and
what the account may still commit. Every formula is `core.costs`, the backtester's."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from core import costs
from core.errors import InvalidOrderError
from core.exchange.demo.accounts import Account, MarginType
from core.exchange.demo.brackets import brackets_of
from core.exchange.demo.orders import Order, Position
from core.exchange.demo.symbols import SymbolSpec

# The last price of a symbol in USDT (the demo's mark price: it has one market).
MarkPrice = Callable[[str], float]


def units_to_price(spec: SymbolSpec, units: int) -> float:
    return units / 10**spec.price_decimals


def steps_to_quantity(spec: SymbolSpec, steps: int) -> float:
    return steps / 10**spec.qty_decimals


def is_isolated(account: Account, symbol: str) -> bool:
    return account.config(symbol).margin_type is MarginType.ISOLATED


def position_margin(account: Account, spec: SymbolSpec, position: Position) -> float:
    """Initial margin of the position: its entry notional over the symbol's leverage.

    For an isolated position this is also its isolated wallet, all a liquidation can take.
    """
    quantity = steps_to_quantity(spec, abs(position.amount))
    return quantity * position.entry / account.config(spec.symbol).leverage


def unrealised(spec: SymbolSpec, position: Position, mark: float) -> float:
    quantity = steps_to_quantity(spec, abs(position.amount))
    return float(costs.unrealised_pnl(position.side, quantity, position.entry, mark))


def maintenance_tier(symbol: str, notional: float) -> tuple[float, float]:
    """(maintenance rate, cum) of the bracket holding `notional`; the last tier beyond it."""
    brackets = brackets_of(symbol)
    try:
        bracket = brackets[int(costs.bracket_index(notional, brackets))]
    except InvalidOrderError:
        bracket = brackets[-1]
    return bracket.maint_margin_ratio, bracket.cum


def order_margin(account: Account, spec: SymbolSpec, order: Order) -> float:
    """Margin a resting order holds: its unfilled notional over leverage (none if reduce-only)."""
    if order.reduce_only or order.close_position:
        return 0.0
    notional = steps_to_quantity(spec, order.remaining) * units_to_price(spec, order.price)
    return notional / account.config(spec.symbol).leverage


def cross_unrealised(account: Account, specs: Mapping[str, SymbolSpec], mark: MarkPrice) -> float:
    """Unrealised PnL of the account's cross positions (what counts towards its margin)."""
    return sum(
        unrealised(specs[p.symbol], p, mark(p.symbol))
        for p in account.book.positions.values()
        if p.amount and not is_isolated(account, p.symbol)
    )


def cross_wallet(account: Account, specs: Mapping[str, SymbolSpec]) -> float:
    """The wallet less what isolated positions hold in their own wallets."""
    isolated = sum(
        position_margin(account, specs[p.symbol], p)
        for p in account.book.positions.values()
        if p.amount and is_isolated(account, p.symbol)
    )
    return account.wallet_balance - isolated


def available_balance(account: Account, specs: Mapping[str, SymbolSpec], mark: MarkPrice) -> float:
    """Wallet plus cross unrealised PnL, minus the margin positions and resting orders hold."""
    book = account.book
    held = sum(
        position_margin(account, specs[p.symbol], p) for p in book.positions.values() if p.amount
    )
    held += sum(order_margin(account, specs[o.symbol], o) for o in book.open_orders())
    return account.wallet_balance + cross_unrealised(account, specs, mark) - held


def liquidation_price(
    account: Account, specs: Mapping[str, SymbolSpec], position: Position, mark: MarkPrice
) -> float:
    """Mark price at which the position is liquidated; 0.0 when none can be reached.

    Isolated: the position's margin is its isolated wallet. Cross: the wallet plus the other
    cross positions' unrealised PnL less their maintenance, as Binance's one-way formula.
    """
    if not position.amount:
        return 0.0
    spec = specs[position.symbol]
    quantity = steps_to_quantity(spec, abs(position.amount))
    rate, cum = maintenance_tier(spec.symbol, quantity * position.entry)
    if is_isolated(account, spec.symbol):
        margin = position_margin(account, spec, position)
    else:
        margin = account.wallet_balance
        for other in account.book.positions.values():
            if other is position or not other.amount or is_isolated(account, other.symbol):
                continue
            other_spec = specs[other.symbol]
            other_mark = mark(other.symbol)
            other_notional = steps_to_quantity(other_spec, abs(other.amount)) * other_mark
            other_rate, other_cum = maintenance_tier(other.symbol, other_notional)
            margin += unrealised(other_spec, other, other_mark)
            margin -= other_notional * other_rate - other_cum
    price = costs.margin_liquidation_price(
        position.entry, position.side, quantity, margin, rate, cum
    )
    return max(0.0, price)


def apply_fill(
    spec: SymbolSpec, position: Position, delta: int, price_units: int, fee: float, now_ms: int
) -> float:
    """Move a one-way position by `delta` steps at a price; returns the realised PnL."""
    price = units_to_price(spec, price_units)
    amount = position.amount
    position.update_ms = now_ms
    if amount == 0 or (amount > 0) == (delta > 0):
        total = abs(amount) + abs(delta)
        position.entry = (abs(amount) * position.entry + abs(delta) * price) / total
        position.amount += delta
        position.open_fees += fee
        return 0.0
    closed = min(abs(delta), abs(amount))
    quantity = steps_to_quantity(spec, closed)
    realized = float(costs.unrealised_pnl(position.side, quantity, position.entry, price))
    position.realized += realized
    remaining = amount + delta
    if remaining == 0:
        position.entry, position.open_fees = 0.0, 0.0
    elif (remaining > 0) == (amount > 0):
        position.open_fees *= abs(remaining) / abs(amount)
    else:
        position.entry = price
        position.open_fees = fee * abs(remaining) / abs(delta)
    position.amount = remaining
    return realized
