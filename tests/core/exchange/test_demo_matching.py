"""The demo matching engine, driven by an explicit demo instant, against hand-computed fills.

Every expectation is computed here from the market's own price path (`minute_prices`, read one
step at a time) and the fee, PnL and liquidation formulas written out by hand.
"""

from __future__ import annotations

import pytest

from core import costs
from core.exchange.demo import trade_wire
from core.exchange.demo.accounts import Accounts, MarginType
from core.exchange.demo.margin import liquidation_price
from core.exchange.demo.market import STEP_MS, DemoMarket
from core.exchange.demo.matching import Fees, MatchingEngine
from core.exchange.demo.orders import AlgoOrder, Order
from core.exchange.demo.premium import funding_rate
from core.intervals import MINUTE_MS, to_ms

SEED = 42
SYMBOL = "BTCUSDT"
T0 = to_ms("2026-06-01T07:00:00")  # an hour before a funding instant
PRICE_SCALE = 100  # BTCUSDT prices have 2 decimals
QTY_SCALE = 1000  # and quantities 3
START = 10_000.0


class Clock:
    def __init__(self) -> None:
        self.real = 0.0

    def __call__(self) -> float:
        return self.real


@pytest.fixture
def desk():
    market = DemoMarket(SEED)
    accounts = Accounts({"key": "secret"}, START)
    events: list[dict] = []
    clock = Clock()
    engine = MatchingEngine(
        market, accounts, SEED, Fees(), lambda _a, e: events.append(e), real_clock=clock
    )
    return engine, accounts.get("key", T0), events, clock


def path(market: DemoMarket, after_ms: int, until_ms: int):
    """(instant, price units) of every step strictly after `after_ms`, one at a time."""
    t = (after_ms // STEP_MS + 1) * STEP_MS
    while t <= until_ms:
        minute = t - t % MINUTE_MS
        yield t, int(market.minute_prices(SYMBOL, minute)[(t - minute) // STEP_MS])
        t += STEP_MS


def order(engine, side, kind, qty, price=0, tif="GTC", now=T0, **extra) -> Order:
    return Order(
        order_id=engine.new_order_id(), client_id=f"c{engine.next_sequence()}", symbol=SYMBOL,
        side=side, type=kind, quantity=qty, price=price, time_in_force=tif,
        reduce_only=extra.pop("reduce_only", False), time_ms=now,
        sequence=engine.next_sequence(), **extra,
    )  # fmt: skip


def algo(engine, side, kind, trigger=0, qty=0, now=T0, **extra) -> AlgoOrder:
    return AlgoOrder(
        algo_id=engine.new_algo_id(), client_algo_id=f"a{engine.next_sequence()}", symbol=SYMBOL,
        side=side, order_type=kind, quantity=qty, price=extra.pop("price", 0),
        trigger_price=trigger, time_in_force="GTC", working_type="MARK_PRICE",
        reduce_only=extra.pop("reduce_only", False),
        close_position=extra.pop("close_position", qty == 0), create_ms=now, **extra,
    )  # fmt: skip


def buy_now(engine, account, qty=10, now=T0) -> float:
    """A market buy of `qty` steps; returns its fill price in USDT."""
    engine.submit(account, order(engine, "BUY", "MARKET", qty, now=now), now)
    return engine.market.price_at(SYMBOL, now) / PRICE_SCALE


def kinds(events, kind):
    return [e for e in events if e["e"] == kind]


def test_market_buy_fills_at_the_last_price_and_pays_the_taker_fee(desk):
    engine, account, events, _ = desk
    price = buy_now(engine, account, qty=10)
    fee = 0.010 * price * 0.0005
    assert account.wallet_balance == pytest.approx(START - fee, abs=1e-9)
    position = account.book.position(SYMBOL)
    assert (position.amount, position.entry) == (10, price)
    [fill] = account.book.fills
    assert (fill.maker, fill.commission, fill.realized_pnl) == (False, pytest.approx(fee), 0.0)
    executions = [e["o"]["x"] for e in kinds(events, "ORDER_TRADE_UPDATE")]
    assert executions == ["NEW", "TRADE"]
    [update] = kinds(events, "ACCOUNT_UPDATE")
    assert update["a"]["m"] == "ORDER" and update["a"]["P"][0]["pa"] == "0.010"
    assert float(update["a"]["B"][0]["wb"]) == pytest.approx(START - fee, abs=1e-8)


def test_resting_sell_fills_only_when_the_price_trades_through_it_at_its_price(desk):
    engine, account, events, _ = desk
    entry = buy_now(engine, account, qty=20)
    steps = list(path(engine.market, T0, T0 + 2 * 3_600_000))
    limit = min(p for _, p in steps) + 10  # certainly traded through within two hours
    limit = max(limit, engine.market.price_at(SYMBOL, T0) + 10)
    due = next((t for t, p in steps if p > limit), None)
    assert due is not None, "pick a limit the path trades through"
    sell = order(engine, "SELL", "LIMIT", 20, price=limit)
    engine.submit(account, sell, T0)
    engine.advance(due - STEP_MS)
    assert sell.status == "NEW"
    engine.advance(due + 10 * STEP_MS)
    assert (sell.status, sell.update_ms) == ("FILLED", due)
    fill = account.book.fills[-1]
    price = limit / PRICE_SCALE
    assert fill.maker and fill.price == limit and fill.time_ms == due
    assert fill.commission == pytest.approx(0.020 * price * 0.0002)
    assert fill.realized_pnl == pytest.approx(0.020 * (price - entry))
    open_fee = 0.020 * entry * 0.0005
    expected = START - open_fee + 0.020 * (price - entry) - fill.commission
    assert account.wallet_balance == pytest.approx(expected, abs=1e-9)
    assert account.book.position(SYMBOL).amount == 0


def test_a_price_that_only_touches_a_limit_does_not_fill_it(desk):
    engine, account, _, _ = desk
    buy_now(engine, account, qty=10)
    horizon = T0 + 2 * MINUTE_MS
    top = max(p for _, p in path(engine.market, T0, horizon))
    sell = order(engine, "SELL", "LIMIT", 10, price=top)
    assert top > engine.market.price_at(SYMBOL, T0), "pick a start below the two-minute high"
    engine.submit(account, sell, T0)
    engine.advance(horizon)
    assert sell.status == "NEW"


def test_ioc_and_fok_that_cannot_take_expire_and_a_marketable_fok_fills(desk):
    engine, account, _, _ = desk
    now_units = engine.market.price_at(SYMBOL, T0)
    ioc = order(engine, "BUY", "LIMIT", 10, price=now_units - 1000, tif="IOC")
    engine.submit(account, ioc, T0)
    fok = order(engine, "BUY", "LIMIT", 10, price=now_units + 1000, tif="FOK")
    engine.submit(account, fok, T0)
    assert (ioc.status, fok.status) == ("EXPIRED", "FILLED")
    assert account.book.fills[-1].price == now_units  # a marketable limit takes at the market


def test_reduce_only_fills_what_it_can_reduce_and_expires_the_rest(desk):
    engine, account, _, _ = desk
    buy_now(engine, account, qty=10)
    close = order(engine, "SELL", "MARKET", 25, reduce_only=True)
    engine.submit(account, close, T0)
    assert (close.status, close.executed) == ("EXPIRED", 10)
    assert account.book.position(SYMBOL).amount == 0


def test_stop_market_close_position_triggers_at_the_first_step_at_or_below_it(desk):
    engine, account, events, _ = desk
    entry = buy_now(engine, account, qty=10)
    steps = list(path(engine.market, T0, T0 + 4 * 3_600_000))
    start = engine.market.price_at(SYMBOL, T0)
    trigger = max(min(p for _, p in steps), start - 2000)  # ≤ $20 below, or the low
    trigger = min(trigger, start - 10)
    due, price = next(((t, p) for t, p in steps if p <= trigger), (None, None))
    assert due is not None
    stop = algo(engine, "SELL", "STOP_MARKET", trigger=trigger)
    engine.submit_algo(account, stop, T0)
    engine.advance(due - STEP_MS)
    assert stop.status == "NEW"
    engine.advance(due)
    assert (stop.status, stop.trigger_ms) == ("FINISHED", due)
    child = account.book.orders[stop.order_id]
    assert (child.type, child.orig_type, child.status, child.client_id) == (
        "MARKET", "STOP_MARKET", "FILLED", stop.client_algo_id,
    )  # fmt: skip
    fill = account.book.fills[-1]
    assert (fill.price, fill.maker, fill.time_ms) == (price, False, due)
    assert fill.realized_pnl == pytest.approx(0.010 * (price / PRICE_SCALE - entry))
    assert [e["o"]["X"] for e in kinds(events, "ALGO_UPDATE")] == ["NEW", "TRIGGERED", "FINISHED"]
    assert account.book.position(SYMBOL).amount == 0


def test_a_close_position_stop_without_a_position_expires_when_triggered(desk):
    engine, account, _, _ = desk
    steps = list(path(engine.market, T0, T0 + 4 * 3_600_000))
    start = engine.market.price_at(SYMBOL, T0)
    trigger = max(min(p for _, p in steps), start - 2000)
    stop = algo(engine, "SELL", "STOP_MARKET", trigger=min(trigger, start - 10))
    engine.submit_algo(account, stop, T0)
    engine.advance(T0 + 4 * 3_600_000)
    assert (stop.status, stop.order_id) == ("EXPIRED", 0)


def test_take_profit_limit_becomes_a_resting_limit_at_its_price(desk):
    engine, account, _, _ = desk
    buy_now(engine, account, qty=10)
    start = engine.market.price_at(SYMBOL, T0)
    steps = list(path(engine.market, T0, T0 + 4 * 3_600_000))
    trigger = min(max(p for _, p in steps), start + 2000)
    trigger = max(trigger, start + 10)
    due = next(t for t, p in steps if p >= trigger)
    take = algo(engine, "SELL", "TAKE_PROFIT", trigger=trigger, qty=10, price=trigger + 100000)
    engine.submit_algo(account, take, T0)
    engine.advance(due)
    child = account.book.orders[take.order_id]
    assert (take.status, child.type, child.price, child.status) == (
        "TRIGGERED", "LIMIT", trigger + 100000, "NEW",
    )  # fmt: skip


def test_trailing_stop_triggers_when_the_price_falls_the_callback_below_its_best(desk):
    engine, account, _, _ = desk
    buy_now(engine, account, qty=10)
    start = engine.market.price_at(SYMBOL, T0)
    trail = algo(engine, "SELL", "TRAILING_STOP_MARKET", callback_rate="0.2")
    engine.submit_algo(account, trail, T0)
    best, due = start, None
    for t, p in path(engine.market, T0, T0 + 12 * 3_600_000):
        if p <= best * (1 - 0.002):
            due = t
            break
        best = max(best, p)
    assert due is not None
    engine.advance(due - STEP_MS)
    assert (trail.status, trail.extreme) == ("NEW", best)
    engine.advance(due + MINUTE_MS)
    assert (trail.status, trail.trigger_ms) == ("FINISHED", due)


def test_trailing_stop_waits_for_its_activation_price(desk):
    engine, account, _, _ = desk
    buy_now(engine, account, qty=10)
    start = engine.market.price_at(SYMBOL, T0)
    steps = list(path(engine.market, T0, T0 + 12 * 3_600_000))
    activation = min(max(p for _, p in steps), start + 3000)
    activation = max(activation, start + 10)
    reached = next(t for t, p in steps if p >= activation)
    trail = algo(
        engine, "SELL", "TRAILING_STOP_MARKET", activate_price=activation, callback_rate="5"
    )
    engine.submit_algo(account, trail, T0)
    engine.advance(reached - STEP_MS)
    assert not trail.activated
    engine.advance(reached)
    assert trail.activated and trail.extreme >= activation


def test_modify_loses_queue_priority(desk):
    engine, account, events, _ = desk
    buy_now(engine, account, qty=20)
    start = engine.market.price_at(SYMBOL, T0)
    steps = list(path(engine.market, T0, T0 + 4 * 3_600_000))
    limit = max(start + 10, min(max(p for _, p in steps) - 10, start + 1000))
    first = order(engine, "SELL", "LIMIT", 10, price=limit)
    second = order(engine, "SELL", "LIMIT", 10, price=limit)
    engine.submit(account, first, T0)
    engine.submit(account, second, T0)
    engine.modify(account, first, 9, limit, T0 + 1000)
    engine.advance(T0 + 4 * 3_600_000)
    fills = [e["o"]["i"] for e in kinds(events, "ORDER_TRADE_UPDATE") if e["o"]["x"] == "TRADE"]
    assert fills[-2:] == [second.order_id, first.order_id]
    assert first.quantity == 9


def test_funding_settles_at_eight_with_the_rate_and_price_of_that_instant(desk):
    engine, account, events, _ = desk
    entry = buy_now(engine, account, qty=10)
    instant = to_ms("2026-06-01T08:00:00")
    before = account.wallet_balance
    engine.advance(instant - STEP_MS)
    assert account.wallet_balance == before
    engine.advance(instant + MINUTE_MS)
    rate = float(funding_rate(SEED, SYMBOL, instant))
    price = engine.market.price_at(SYMBOL, instant) / PRICE_SCALE
    assert account.wallet_balance == pytest.approx(before - 0.010 * price * rate, abs=1e-12)
    [funding] = [e for e in kinds(events, "ACCOUNT_UPDATE") if e["a"]["m"] == "FUNDING_FEE"]
    assert funding["E"] == instant and entry > 0


def test_isolated_liquidation_uses_the_backtester_formula_and_loses_the_margin(desk):
    engine, account, events, _ = desk
    account.config(SYMBOL).margin_type = MarginType.ISOLATED
    account.config(SYMBOL).leverage = 125
    entry = buy_now(engine, account, qty=100)  # 0.1 BTC ≈ 10k notional: first bracket
    position = account.book.position(SYMBOL)
    level = liquidation_price(account, engine.specs, position, engine.mark(T0))
    assert level == pytest.approx(float(costs.liquidation_price(entry, 1, 125, 0.004)), rel=1e-12)
    due = next((t for t, p in path(engine.market, T0, T0 + 24 * 3_600_000) if p <= level * 100))
    wallet = account.wallet_balance
    engine.advance(due)
    assert position.amount == 0
    liquidation = account.book.orders[max(account.book.orders)]
    assert liquidation.client_id.startswith("autoclose-") and liquidation.update_ms == due
    fill = account.book.fills[-1]
    price = fill.price / PRICE_SCALE
    assert price == pytest.approx(level, abs=0.05)
    margin = 0.1 * entry / 125
    assert fill.commission == pytest.approx(0.1 * price * 0.004)
    funding = sum(
        float(e["a"]["B"][0]["bc"])
        for e in kinds(events, "ACCOUNT_UPDATE")
        if e["a"]["m"] == "FUNDING_FEE"
    )
    change = account.wallet_balance - wallet - funding
    assert change == pytest.approx(0.1 * (price - entry) - 0.1 * price * 0.004)
    assert change == pytest.approx(-margin, abs=0.01)
    assert kinds(events, "ORDER_TRADE_UPDATE")[-1]["o"]["x"] == "CALCULATED"


def test_cross_liquidation_price_is_binances_one_way_formula(desk):
    engine, account, _, _ = desk
    account.wallet_balance = 1_000.0
    entry = buy_now(engine, account, qty=100)
    wallet = account.wallet_balance
    position = account.book.position(SYMBOL)
    level = liquidation_price(account, engine.specs, position, engine.mark(T0))
    assert level == pytest.approx((0.1 * entry - wallet) / (0.1 * (1 - 0.004)), rel=1e-12)


def test_margin_check_counts_leverage_and_open_orders(desk):
    engine, account, _, _ = desk
    start = engine.market.price_at(SYMBOL, T0) / PRICE_SCALE
    affordable = int(START * 20 * 0.99 / start * QTY_SCALE)  # 20x default leverage
    big = order(engine, "BUY", "MARKET", affordable)
    assert not engine.short_of_margin(account, big, T0)
    resting = order(engine, "BUY", "LIMIT", affordable // 2, price=int(start * 90))
    engine.submit(account, resting, T0)
    assert engine.short_of_margin(account, big, T0)


def test_countdown_cancels_open_orders_on_the_real_clock_and_keeps_stops(desk):
    engine, account, _, clock = desk
    buy_now(engine, account, qty=10)
    start = engine.market.price_at(SYMBOL, T0)
    resting = order(engine, "SELL", "LIMIT", 10, price=start + 500_000)
    engine.submit(account, resting, T0)
    stop = algo(engine, "SELL", "STOP_MARKET", trigger=start // 2)
    engine.submit_algo(account, stop, T0)
    engine.arm_countdown(account, SYMBOL, 1_000)
    clock.real = 0.9
    engine.advance(T0 + 1)
    assert resting.status == "NEW"
    clock.real = 1.1
    engine.advance(T0 + 2)
    assert (resting.status, stop.status) == ("CANCELED", "NEW")


def test_gtd_order_expires_at_its_good_till_date(desk):
    engine, account, _, _ = desk
    start = engine.market.price_at(SYMBOL, T0)
    until = T0 + 700_123
    gtd = order(engine, "BUY", "LIMIT", 10, price=start // 2, tif="GTD", good_till=until)
    engine.submit(account, gtd, T0)
    engine.advance(until - 1)
    assert gtd.status == "NEW"
    engine.advance(until + STEP_MS)
    assert gtd.status == "EXPIRED" and gtd.update_ms == (until // STEP_MS + 1) * STEP_MS


def test_the_same_orders_on_the_same_market_give_the_same_events(desk):
    def run() -> list[dict]:
        market, accounts, events = DemoMarket(SEED), Accounts({"k": "s"}, START), []
        engine = MatchingEngine(market, accounts, SEED, sink=lambda _a, e: events.append(e))
        account = accounts.get("k", T0)
        buy_now(engine, account, qty=30)
        trail = algo(engine, "SELL", "TRAILING_STOP_MARKET", callback_rate="0.3")
        engine.submit_algo(account, trail, T0)
        engine.advance(T0 + 6 * 3_600_000)
        return events

    assert run() == run()


def test_the_cross_wallet_excludes_what_isolated_positions_hold(desk):
    engine, account, events, _ = desk
    account.config(SYMBOL).margin_type = MarginType.ISOLATED
    account.config(SYMBOL).leverage = 10
    entry = buy_now(engine, account, qty=100)
    [update] = kinds(events, "ACCOUNT_UPDATE")
    balance = update["a"]["B"][0]
    assert float(balance["wb"]) == pytest.approx(account.wallet_balance, abs=1e-8)
    assert float(balance["cw"]) == pytest.approx(
        account.wallet_balance - 0.1 * entry / 10, abs=1e-8
    )
    assert float(update["a"]["P"][0]["iw"]) == pytest.approx(0.1 * entry / 10, abs=1e-8)


def test_position_risk_reports_unrealised_pnl_on_the_mark_and_the_break_even(desk):
    engine, account, _, _ = desk
    entry = buy_now(engine, account, qty=10)
    later = T0 + 30 * MINUTE_MS
    engine.advance(later)
    mark_units = engine.market.price_at(SYMBOL, later)
    position = account.book.position(SYMBOL)
    row = trade_wire.position_risk(account, engine.specs, position, mark_units, 0.0)
    mark = mark_units / PRICE_SCALE
    assert row["markPrice"] == f"{mark:.2f}"
    assert float(row["unRealizedProfit"]) == pytest.approx(0.010 * (mark - entry), abs=1e-8)
    assert float(row["breakEvenPrice"]) == pytest.approx(entry * (1 + 0.0005), abs=1e-6)
    assert float(row["notional"]) == pytest.approx(0.010 * mark, abs=1e-8)
