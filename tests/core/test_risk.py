"""core.risk: every limit trips and does what it says; exits always pass; time is injected."""

from dataclasses import replace

import pytest

import core.risk
from core.errors import RiskSettingsError
from core.exchange.demo.brackets import brackets_of
from core.exchange.limits import ORDERS_1M, ORDERS_10S
from core.intervals import to_ms
from core.models import OrderType, Side
from core.risk import (
    AccountView,
    EquityMarks,
    MarketView,
    OrderIntent,
    OrderThrottle,
    PositionView,
    Purpose,
    RiskSettings,
    TradingMode,
    check_account,
    check_order,
)
from core.rules import parse_rules

FILTERS = [
    {"filterType": "PRICE_FILTER", "minPrice": "261.10", "maxPrice": "809484", "tickSize": "0.10"},
    {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "1000"},
    {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "120"},
    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
    {"filterType": "MIN_NOTIONAL", "notional": "100"},
    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500"},
]
RULES = parse_rules({"symbols": [{"symbol": "BTCUSDT", "status": "TRADING", "filters": FILTERS}]})
BTC = RULES["BTCUSDT"]
NOW = to_ms("2024-03-01T12:00:30Z")
MINUTE = 60_000
PRICE = 50_000.0
OPEN = RiskSettings()
MARKET = MarketView("1m", NOW - 30_000 - MINUTE, connected=True, last_price=PRICE)
ACCOUNT = AccountView(
    equity=10_000.0,
    day_start_equity=10_000.0,
    peak_equity=10_000.0,
    free_margin=10_000.0,
    rules=BTC,
    brackets=brackets_of("BTCUSDT"),
)
LONG = PositionView("BTCUSDT", Side.BUY, 0.1, PRICE, leverage=2)


def buy(quantity: float = 0.1, **kwargs) -> OrderIntent:
    return OrderIntent("BTCUSDT", Side.BUY, quantity, **kwargs)


def sell_to_close(quantity: float = 0.1, **kwargs) -> OrderIntent:
    kwargs = {"purpose": Purpose.EXIT, "reduce_only": True, **kwargs}
    return OrderIntent("BTCUSDT", Side.SELL, quantity, **kwargs)


def stop_close() -> OrderIntent:
    return OrderIntent(
        "BTCUSDT",
        Side.SELL,
        0.0,
        OrderType.STOP_MARKET,
        Purpose.STOP,
        trigger_price=45_000.0,
        close_position=True,
    )


def order(intent, settings=OPEN, account=ACCOUNT, market=MARKET, now=NOW):
    return check_order(intent, settings, account, market, now)


def test_an_entry_within_every_limit_is_accepted():
    decision = order(buy(leverage=1))
    assert decision.accepted and decision.code is None
    assert decision.as_json() == {"aceptada": True, "codigo": None}
    assert check_account(OPEN, ACCOUNT, MARKET, NOW).mode is TradingMode.OPERATE


def test_filters_go_through_core_rules(monkeypatch):
    calls = []
    monkeypatch.setattr(core.risk, "check_filters", lambda *args: calls.append(args))
    assert order(buy(0.1)).accepted
    assert calls == [(BTC, OrderType.MARKET, 0.1, None, PRICE, 0)]


@pytest.mark.parametrize(
    ("intent", "filter_name", "field"),
    [
        (buy(0.0005), "MARKET_LOT_SIZE", "cantidad"),
        (buy(0.001), "MIN_NOTIONAL", "cantidad"),
        (buy(0.1, type=OrderType.LIMIT, price=40_000.0), "PERCENT_PRICE", "precio"),
        (buy(0.1, type=OrderType.LIMIT, price=49_999.95), "PRICE_FILTER", "precio"),
        (sell_to_close(0.1, type=OrderType.STOP_MARKET, trigger_price=45_000.05), "PRICE_FILTER",
         "precio_disparo"),
    ],
)  # fmt: skip
def test_an_order_the_exchange_would_refuse_names_the_filter(intent, filter_name, field):
    account = replace(ACCOUNT, positions=(LONG,))
    decision = order(intent, account=account)
    assert not decision.accepted and decision.code == "filtro_exchange"
    assert decision.reason.values["filtro"] == filter_name
    assert decision.reason.values["campo"] == field
    assert filter_name in decision.reason.message


def test_a_reduce_only_order_is_exempt_from_min_notional_as_on_binance():
    dust = PositionView("BTCUSDT", Side.BUY, 0.001, PRICE)
    assert order(sell_to_close(0.001), account=replace(ACCOUNT, positions=(dust,))).accepted


def test_max_notional_per_order():
    decision = order(buy(0.3), settings=RiskSettings(max_order_notional=10_000))
    assert decision.code == "nocional_maximo"
    assert decision.reason.values == {"nocional": 15_000.0, "limite": 10_000}
    assert order(buy(0.2), settings=RiskSettings(max_order_notional=10_000)).accepted


def test_leverage_cap_of_the_settings():
    decision = order(buy(0.1, leverage=10), settings=RiskSettings(max_leverage=5))
    assert decision.code == "apalancamiento_maximo"
    assert decision.reason.values == {"apalancamiento": 10, "limite": 5}
    assert order(buy(0.1, leverage=5), settings=RiskSettings(max_leverage=5)).accepted
    assert order(buy(0.1, leverage=0.5)).code == "apalancamiento_maximo"


def test_leverage_cap_of_the_bracket_the_grown_position_falls_in():
    # BTCUSDT: 125x up to 50,000 USDT of notional, 100x up to 250,000.
    assert order(buy(0.9, leverage=125)).accepted  # 45,000 USDT
    decision = order(buy(1.2, leverage=125))  # 60,000 USDT: the second tier
    assert decision.code == "apalancamiento_tramo"
    assert decision.reason.values == {"apalancamiento": 125, "limite": 100, "nocional": 60_000.0}
    # An existing position counts: 0.1 held + 0.9 bought is 50,000, in the second tier.
    grown = order(buy(0.9, leverage=125), account=replace(ACCOUNT, positions=(LONG,)))
    assert grown.code == "apalancamiento_tramo"
    huge = order(buy(10_000, leverage=1), account=replace(ACCOUNT, free_margin=1e12))
    assert huge.code == "nocional_fuera_de_tramos"


def test_free_margin():
    decision = order(buy(0.5, leverage=2), account=replace(ACCOUNT, free_margin=10_000.0))
    assert decision.code == "margen_insuficiente"
    assert decision.reason.values == {"necesario": 12_500.0, "libre": 10_000.0}
    assert "12500.00" in decision.reason.message and "10000.00" in decision.reason.message
    assert order(buy(0.4, leverage=2)).accepted  # exactly the free margin


def test_a_reduce_only_intent_must_shrink_the_position():
    held = replace(ACCOUNT, positions=(LONG,))
    assert order(sell_to_close(0.1), account=held).accepted
    assert order(sell_to_close(0.05), account=held).accepted
    assert order(sell_to_close(0.1)).code == "sin_posicion"
    flip = order(sell_to_close(0.2), account=held)
    assert flip.code == "solo_reducir_invalido" and flip.reason.values["posicion"] == 0.1
    grow = order(replace(sell_to_close(0.1), side=Side.BUY), account=held)
    assert grow.code == "solo_reducir_invalido" and "aumentaría" in grow.reason.message
    assert order(stop_close(), account=held).accepted
    assert order(stop_close()).code == "sin_posicion"


def test_an_exit_must_be_reduce_only_and_an_entry_must_go_with_the_position():
    held = replace(ACCOUNT, positions=(LONG,))
    naked = order(replace(sell_to_close(0.1), reduce_only=False), account=held)
    assert naked.code == "salida_sin_solo_reducir"
    against = order(OrderIntent("BTCUSDT", Side.SELL, 0.1), account=held)
    assert against.code == "entrada_contra_posicion"
    assert order(replace(buy(), symbol="ETHUSDT")).code == "simbolo_distinto"


def _paused() -> AccountView:
    return replace(ACCOUNT, equity=9_400.0, positions=(LONG,))


def test_exits_are_allowed_while_paused_and_entries_are_not():
    settings = RiskSettings(max_daily_loss=0.05)
    verdict = check_account(settings, _paused(), MARKET, NOW)
    assert verdict.mode is TradingMode.PAUSE and not verdict.allows_entries
    assert order(buy(0.1), settings, _paused()).code == "perdida_diaria"
    assert order(sell_to_close(0.1), settings, _paused()).accepted
    assert order(stop_close(), settings, _paused()).accepted


def test_daily_loss_pauses_with_the_numbers():
    verdict = check_account(RiskSettings(max_daily_loss=0.05), _paused(), MARKET, NOW)
    reason = verdict.reason
    assert (reason.code, reason.values["limite"], reason.values["capital_dia"]) == (
        "perdida_diaria",
        0.05,
        10_000.0,
    )
    assert reason.values["perdida"] == pytest.approx(600.0)
    assert reason.values["fraccion"] == pytest.approx(0.06)
    assert "600.00 USDT" in reason.message and "5.00 %" in reason.message
    assert verdict.as_json()["modo"] == "pausar"
    assert verdict.as_json()["motivos"][0]["codigo"] == "perdida_diaria"
    calm = replace(_paused(), equity=9_501.0)
    assert check_account(RiskSettings(max_daily_loss=0.05), calm, MARKET, NOW).allows_entries


def test_daily_loss_counts_equity_since_midnight_utc_on_an_injected_clock():
    settings = RiskSettings(max_daily_loss=0.05)
    marks = EquityMarks.start(to_ms("2024-03-01T09:00:00Z"), 1_000.0)
    # Realised -30, unrealised -15, fees -3 and funding -2 since 00:00: equity 950, 5 % down.
    evening = to_ms("2024-03-01T23:59:00Z")
    marks = marks.update(evening, 1_000.0 - 30 - 15 - 3 - 2)
    assert marks.day_start_equity == 1_000.0 and marks.peak_equity == 1_000.0
    account = replace(ACCOUNT, equity=950.0, day_start_equity=marks.day_start_equity)
    market = replace(MARKET, last_closed_open_time=evening - MINUTE)
    assert check_account(settings, account, market, evening).reason.code == "perdida_diaria"
    # Past 00:00 UTC the day starts again from the equity of the moment; the peak stays.
    morning = to_ms("2024-03-02T00:00:30Z")
    marks = marks.update(morning, 950.0)
    assert (marks.day_start_ms, marks.day_start_equity) == (to_ms("2024-03-02"), 950.0)
    assert marks.peak_equity == 1_000.0
    account = replace(account, day_start_equity=marks.day_start_equity)
    market = replace(MARKET, last_closed_open_time=morning - 30_000 - MINUTE)
    assert check_account(settings, account, market, morning).mode is TradingMode.OPERATE
    # The same day again: the day's start holds.
    assert marks.update(morning + 3_600_000, 900.0).day_start_equity == 950.0


def test_drawdown_from_the_peak_pauses():
    marks = EquityMarks.start(NOW, 1_000.0).update(NOW + 1, 1_200.0).update(NOW + 2, 950.0)
    assert marks.peak_equity == 1_200.0
    settings = RiskSettings(max_drawdown=0.2)
    account = replace(ACCOUNT, equity=950.0, day_start_equity=950.0, peak_equity=marks.peak_equity)
    verdict = check_account(settings, account, MARKET, NOW)
    assert verdict.mode is TradingMode.PAUSE and verdict.reason.code == "drawdown_maximo"
    assert verdict.reason.values["drawdown"] == pytest.approx(250 / 1200)
    assert verdict.reason.values["maximo"] == 1_200.0
    assert check_account(settings, replace(account, equity=1_000.0), MARKET, NOW).allows_entries


def _others(count: int) -> tuple[PositionView, ...]:
    return tuple(PositionView(f"ALT{i}USDT", Side.SELL, 1.0, 100.0) for i in range(count))


def test_max_open_positions():
    settings = RiskSettings(max_open_positions=2)
    full = replace(ACCOUNT, positions=_others(2))
    decision = order(buy(0.1), settings, full)
    assert decision.code == "max_posiciones" and decision.reason.values == {
        "posiciones": 2,
        "limite": 2,
    }
    # Growing a position already open is no new position.
    assert order(buy(0.1), settings, replace(full, positions=(LONG, *_others(1)))).accepted
    # Above the limit (adopted positions) the account only reduces, and exits still pass.
    over = replace(ACCOUNT, positions=(LONG, *_others(2)))
    verdict = check_account(settings, over, MARKET, NOW)
    assert verdict.mode is TradingMode.REDUCE_ONLY and verdict.reason.code == "max_posiciones"
    assert order(buy(0.1), settings, over).code == "max_posiciones"
    assert order(sell_to_close(0.1), settings, over).accepted


def test_max_total_exposure():
    settings = RiskSettings(max_exposure=8_000.0)
    held = replace(ACCOUNT, positions=(LONG,))  # 5,000 USDT
    decision = order(buy(0.1), settings, held)
    assert decision.code == "max_exposicion" and decision.reason.values == {
        "exposicion": 10_000.0,
        "limite": 8_000.0,
    }
    assert order(buy(0.06), settings, held).accepted
    risen = replace(held, positions=(replace(LONG, mark_price=90_000.0),))  # 9,000 at the mark
    verdict = check_account(settings, risen, MARKET, NOW)
    assert verdict.mode is TradingMode.REDUCE_ONLY and verdict.reason.code == "max_exposicion"
    assert order(sell_to_close(0.1), settings, risen).accepted


def test_no_entries_while_the_market_stream_reconnects():
    down = replace(MARKET, connected=False)
    verdict = check_account(OPEN, ACCOUNT, down, NOW)
    assert verdict.mode is TradingMode.REDUCE_ONLY and verdict.reason.code == "mercado_desconectado"
    assert order(buy(), market=down).code == "mercado_desconectado"
    assert order(sell_to_close(), account=replace(ACCOUNT, positions=(LONG,)), market=down).accepted


def test_no_entries_when_the_last_closed_candle_is_older_than_two_intervals():
    settings = RiskSettings(stale_grace_ms=0)
    last = NOW - 2 * 5 * MINUTE
    market = MarketView("5m", last, connected=True, last_price=PRICE)
    assert check_account(settings, ACCOUNT, market, NOW).allows_entries  # exactly two intervals
    verdict = check_account(settings, ACCOUNT, market, NOW + 1)
    assert verdict.mode is TradingMode.REDUCE_ONLY and verdict.reason.code == "datos_obsoletos"
    assert verdict.reason.values == {"edad_ms": 600_001, "limite_ms": 600_000, "intervalo": "5m"}
    assert order(buy(), settings, market=market, now=NOW + 1).code == "datos_obsoletos"
    # The default grace lets a closed kline arrive a few seconds late.
    assert check_account(OPEN, ACCOUNT, market, NOW + 4_000).allows_entries
    never = replace(market, last_closed_open_time=None)
    assert check_account(OPEN, ACCOUNT, never, NOW).reason.code == "datos_obsoletos"


def test_cooldown_after_a_stop_out():
    settings = RiskSettings(cooldown_ms=15 * MINUTE)
    stopped = replace(ACCOUNT, last_stop_out_ms=NOW - 5 * MINUTE)
    verdict = check_account(settings, stopped, MARKET, NOW)
    assert verdict.mode is TradingMode.REDUCE_ONLY and verdict.reason.code == "enfriamiento"
    assert verdict.reason.values["restante_ms"] == 10 * MINUTE
    assert order(buy(), settings, stopped).code == "enfriamiento"
    later = NOW + 10 * MINUTE
    market = replace(MARKET, last_closed_open_time=later - 30_000 - MINUTE)
    assert check_account(settings, stopped, market, later).allows_entries
    assert check_account(OPEN, stopped, MARKET, NOW).allows_entries  # no cooldown set


def test_pausing_reasons_come_first_and_every_reason_is_listed():
    settings = RiskSettings(max_daily_loss=0.05, cooldown_ms=MINUTE)
    account = replace(_paused(), last_stop_out_ms=NOW)
    verdict = check_account(settings, account, replace(MARKET, connected=False), NOW)
    codes = [reason.code for reason in verdict.reasons]
    assert verdict.mode is TradingMode.PAUSE
    assert codes == ["perdida_diaria", "mercado_desconectado", "enfriamiento"]


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_the_throttle_counts_orders_per_10_s_and_per_minute_on_an_injected_clock():
    clock = Clock(NOW)
    throttle = OrderThrottle(clock, per_10s=3, per_minute=5)
    assert all(throttle.acquire().accepted for _ in range(3))
    refused = throttle.acquire()
    assert refused.code == "limite_ordenes"
    assert refused.reason.values == {
        "ventana": "10 s",
        "enviadas": 3,
        "limite": 3,
        "reintentar_ms": 10_000,
    }
    assert throttle.acquire(Purpose.STOP).accepted  # exits may use Binance's remaining room
    clock.now += 10_000
    assert throttle.counts() == (0, 4)
    assert throttle.acquire().accepted
    refused = throttle.acquire()
    assert refused.reason.values["ventana"] == "60 s" and refused.reason.values["limite"] == 5
    clock.now = NOW + MINUTE
    assert throttle.counts() == (0, 1) and throttle.acquire().accepted


def test_the_throttle_stays_under_binances_limits():
    throttle = OrderThrottle.from_settings(RiskSettings(), Clock(NOW))
    sent = sum(throttle.acquire().accepted for _ in range(ORDERS_10S))
    assert sent < ORDERS_10S
    exits = sum(throttle.acquire(Purpose.EXIT).accepted for _ in range(ORDERS_10S))
    assert sent + exits == ORDERS_10S  # never more than Binance allows, even for exits
    assert RiskSettings().orders_1m < ORDERS_1M
    with pytest.raises(RiskSettingsError) as error:
        OrderThrottle(Clock(NOW), per_10s=ORDERS_10S + 1)
    assert error.value.field == "ordenes_10s"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_daily_loss": 0}, "max_perdida_diaria"),
        ({"max_daily_loss": 1.5}, "max_perdida_diaria"),
        ({"max_drawdown": float("nan")}, "max_drawdown"),
        ({"max_leverage": 126}, "max_apalancamiento"),
        ({"max_open_positions": 0}, "max_posiciones"),
        ({"max_open_positions": 1.5}, "max_posiciones"),
        ({"max_exposure": float("inf")}, "max_exposicion"),
        ({"max_order_notional": -1}, "max_nocional_orden"),
        ({"cooldown_ms": -1}, "enfriamiento_ms"),
        ({"orders_1m": ORDERS_1M + 1}, "ordenes_1m"),
        ({"max_exposure": "mucho"}, "max_exposicion"),
        ({"max_open_positions": True}, "max_posiciones"),
    ],
)
def test_a_bad_setting_names_its_public_field(kwargs, field):
    with pytest.raises(RiskSettingsError) as error:
        RiskSettings(**kwargs)
    assert error.value.field == field and error.value.detail == {field: str(error.value)}


def test_intents_accept_the_public_words():
    intent = OrderIntent("BTCUSDT", "venta", 0.1, "mercado", "salida", reduce_only=True)
    assert (intent.side, intent.type, intent.purpose) == (Side.SELL, OrderType.MARKET, Purpose.EXIT)
