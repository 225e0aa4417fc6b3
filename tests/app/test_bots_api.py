"""/bots and /kill: creating a bot (every validation error with its status and field), reading
it, and the commands the bot host applies (202 stored, 409 when the state forbids them)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app import create_app
from config.settings import settings_from_mapping
from core.broker.exchange_trades import FillSummary, TradeBook
from core.broker.paper import Bar, PaperSimulator
from core.fills import Costs
from core.models import BotDecision, BotStatus, BotTrade, BotTrigger, Candle, Order, Side

B, T = BotStatus, BotTrigger
BODY = {"nombre": "cruce", "symbol": "BTCUSDT", "interval": "1m", "estrategia": "sma_cruce"}


@pytest.fixture
def db(app):
    return app.extensions["kryptelion"].db


def _create(client, **changes):
    response = client.post("/bots", json={**BODY, **changes})
    assert response.status_code == 201, response.json
    return response.json


def _trading(db, bot_id: int) -> None:
    for trigger in (T.START, T.STARTED, T.SYNCED):
        db.bots.update_status(bot_id, trigger, "bot")


def test_create_stores_the_bot_wanted_running(client, db):
    created = _create(
        client, params={"rapida": 5, "lenta": 20}, capital=1000.0, comision=0.0005,
        comision_maker=0.0002, slippage=1.0, apalancamiento=3.0, tamano=0.5, stop_loss=0.02,
        take_profit="2atr", trailing=0.01, funding=0.0001, modo="paper",
        riesgo={"max_drawdown": 0.2, "ordenes_10s": 5, "max_perdida_diaria": None},
    )  # fmt: skip
    assert created == {
        "id": 1, "nombre": "cruce", "estado": "detenido", "motivo": "", "symbol": "BTCUSDT",
        "interval": "1m", "estrategia": "sma_cruce", "modo": "paper", "capital": 1000.0,
        "en_marcha": True, "creado": created["creado"], "actualizado": created["creado"],
    }  # fmt: skip
    stored = db.bots.get(1)
    assert stored.params == {"rapida": 5, "lenta": 20, "modo": "ambos"}
    assert (stored.taker_fee, stored.maker_fee, stored.slippage_bps) == (0.0005, 0.0002, 1.0)
    assert (stored.leverage, stored.size, stored.funding_rate) == (3.0, 0.5, 0.0001)
    assert (stored.stop_loss, stored.take_profit, stored.trailing) == ("0.02", "2atr", 0.01)
    # Stored under RiskSettings' internal names; a null limit keeps its default.
    assert stored.risk == {"max_drawdown": 0.2, "orders_10s": 5}
    assert client.get("/bots").json == {"bots": [created]}


def test_the_mode_defaults_to_trading_mode_and_testnet_runs_on_the_demo(client):
    assert _create(client)["modo"] == "paper"
    assert _create(client, nombre="t", modo="testnet")["modo"] == "testnet"


@pytest.mark.parametrize(
    ("changes", "status", "field", "needle"),
    [
        ({"estrategia": "sma_cruze"}, 422, "estrategia", "did you mean 'sma_cruce'"),
        ({"params": {"rapida": 50, "lenta": 10}}, 422, "params.rapida", "smaller than lenta"),
        ({"params": {"rapidaa": 5}}, 422, "params.rapidaa", "did you mean 'rapida'"),
        ({"params": {"rapida": True}}, 422, "params.rapida", "must be int"),
        ({"stop_loss": "2 bananas"}, 422, "stop_loss", "ATR multiple"),
        ({"take_profit": 1.5}, 422, "take_profit", "invalid fields"),
        ({"trailing": 0.2}, 422, "trailing", "invalid fields"),
        ({"trailing": 0.0005}, 422, "trailing", "invalid fields"),
        ({"trailing": "0.01"}, 422, "trailing", "invalid fields"),
        ({"riesgo": {"max_drawdown": 2}}, 422, "riesgo.max_drawdown", "not in (0, 1]"),
        ({"riesgo": {"max_posiciones": 1.5}}, 422, "riesgo.max_posiciones", "whole number"),
        ({"riesgo": {"ordenes_10s": True}}, 422, "riesgo.ordenes_10s", "invalid fields"),
        ({"riesgo": {"max_drawdown": "0.2"}}, 422, "riesgo.max_drawdown", "invalid fields"),
        ({"riesgo": {"max_dd": 0.1}}, 422, "riesgo.max_dd", "invalid fields"),
        ({"riesgo": {"max_drawdown": 0.2, "enfriamiento_ms": -1}}, 422,
         "riesgo.enfriamiento_ms", "not in [0"),
        ({"symbol": "NOPEUSDT"}, 400, "symbol", "unknown symbol"),
        ({"modo": "live"}, 409, "modo", "LIVE_TRADING_CONFIRM=yes"),
        ({"modo": "papel"}, 422, "modo", "invalid fields"),
        ({"nombre": ""}, 422, "nombre", "invalid fields"),
        ({"nombre": "   "}, 422, "nombre", "invalid fields"),
        ({"nombre": "x" * 61}, 422, "nombre", "invalid fields"),
        ({"capital": True}, 422, "capital", "invalid fields"),
        ({"apalancamiento": 500.0}, 422, "apalancamiento", "invalid fields"),
        ({"interval": "7m"}, 422, "interval", "invalid fields"),
        ({"start_date": "2024-01-01"}, 422, "start_date", "invalid fields"),
    ],
)  # fmt: skip
def test_bad_bots_get_their_status_and_field(client, db, changes, status, field, needle):
    response = client.post("/bots", json={**BODY, **changes})
    assert response.status_code == status, response.json
    assert needle in response.json["error"] and field in response.json["detalle"]
    assert db.bots.list() == []


def test_a_duplicate_name_is_a_409(client, db):
    _create(client)
    response = client.post("/bots", json={**BODY, "symbol": "ETHUSDT"})
    assert response.status_code == 409 and response.json["detalle"] == {"nombre": "taken"}
    assert [b.symbol for b in db.bots.list()] == ["BTCUSDT"]


def test_modes_the_settings_cannot_trade_are_409_before_any_network(tmp_path):
    # MARKET=binance is never contacted: the mode is refused before the symbol is looked up.
    settings = settings_from_mapping({"DATA_DIR": str(tmp_path), "MARKET": "binance"})
    app = create_app(settings)
    client = app.test_client()
    for mode, needle in (("live", "LIVE_TRADING_CONFIRM"), ("testnet", "MARKET=testnet")):
        response = client.post("/bots", json={**BODY, "modo": mode})
        assert response.status_code == 409 and needle in response.json["error"]
        assert set(response.json["detalle"]) == {"modo"}
    app.extensions["kryptelion"].db.close()


def _paper_snapshot(db) -> tuple[dict, float]:
    """A paper broker that entered long on the second of three candles, its equity at the last
    close, and those candles stored."""
    simulator = PaperSimulator(1000.0, Costs(0.0005, 0.0005, 0.0, 2.0, 0.5))
    candles = [Candle("BTCUSDT", "1m", 60_000 * i, 100.0 + i, 102.0 + i, 99.0 + i, 101.0 + i, 5.0)
               for i in range(3)]  # fmt: skip
    for candle, target in zip(candles, (1.0, 1.0, 1.0), strict=True):
        simulator.step(Bar(candle.open_time, candle.open, candle.high, candle.low, candle.close),
                       target)  # fmt: skip
    db.candles.upsert_candles(candles)
    return simulator.snapshot(), simulator.equity(candles[-1].close)


def test_detail_trades_and_events_of_a_trading_bot(client, db):
    bot_id = _create(client, riesgo={"max_drawdown": 0.2}, capital=1000.0, comision=0.0005,
                     apalancamiento=2.0, tamano=0.5)["id"]  # fmt: skip
    _trading(db, bot_id)
    db.bots.add_decision(BotDecision(bot_id, 60_000, 1.0, 101.0, "cruce alcista"))
    closed = db.bots.open_trade(BotTrade(bot_id, Side.SELL, 0, 100.0, 2.0))
    db.bots.close_trade(
        BotTrade(bot_id, Side.SELL, 0, 100.0, 2.0, exit_time=60_000, exit_price=99.0, pnl=1.5,
                 fees=0.2, exit_reason="señal", return_pct=0.0015, id=closed.id)
    )  # fmt: skip
    db.bots.open_trade(BotTrade(bot_id, Side.BUY, 60_000, 101.0, 1.0))
    snapshot, equity = _paper_snapshot(db)
    db.bots.save_broker_state(bot_id, snapshot)

    detail = client.get(f"/bots/{bot_id}").json
    assert (detail["estado"], detail["motivo"], detail["en_marcha"]) == ("operando", "", True)
    assert detail["config"]["riesgo"] == {"max_drawdown": 0.2}
    assert detail["config"]["params"] == {"rapida": 10, "lenta": 30, "modo": "ambos"}
    assert detail["posicion"] == {
        "side": "long", "entry_time": 60_000, "entry_price": 101.0, "exit_time": None,
        "exit_price": None, "quantity": 1.0, "pnl": 0.0, "return": 0.0, "fees": 0.0,
        "funding": 0.0, "exit_reason": "",
    }  # fmt: skip
    assert (detail["pnl_cerrado"], detail["operaciones_cerradas"], detail["eventos"]) == (1.5, 1, 3)
    assert detail["equity"] == pytest.approx(equity, rel=1e-12)
    assert detail["decisiones"] == [
        {"open_time": 60_000, "posicion": 1.0, "precio": 101.0, "motivo": "cruce alcista"}
    ]
    trades = client.get(f"/bots/{bot_id}/operaciones").json["operaciones"]
    assert [(t["side"], t["exit_time"], t["exit_reason"]) for t in trades] == [
        ("short", 60_000, "señal"), ("long", None, ""),
    ]  # fmt: skip
    assert trades[1] == detail["posicion"]
    events = client.get(f"/bots/{bot_id}/eventos").json["eventos"]
    assert [(e["desde"], e["hacia"], e["disparador"]) for e in events] == [
        ("detenido", "iniciando", "iniciar"), ("iniciando", "sincronizando", "iniciado"),
        ("sincronizando", "operando", "sincronizado"),
    ]  # fmt: skip


def test_the_detail_config_shows_the_trailing_stop(client):
    with_it, without = _create(client, trailing=0.005)["id"], _create(client, nombre="sin")["id"]
    assert client.get(f"/bots/{with_it}").json["config"]["trailing"] == 0.005
    assert client.get(f"/bots/{without}").json["config"]["trailing"] is None


def test_a_new_bot_has_no_position_equity_or_decisions(client):
    bot_id = _create(client)["id"]
    detail = client.get(f"/bots/{bot_id}").json
    assert (detail["posicion"], detail["equity"], detail["decisiones"]) == (None, None, [])
    assert (detail["proteccion"], detail["riesgo_uso"]) == (None, None)
    assert (detail["pnl_cerrado"], detail["eventos"]) == (0, 0)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ""), ("GET", "/operaciones"), ("GET", "/eventos"), ("GET", "/ordenes"),
     ("POST", "/parar"), ("POST", "/pausar"), ("POST", "/reanudar")],
)  # fmt: skip
def test_unknown_bots_are_404(client, method, path):
    response = client.open(f"/bots/99{path}", method=method)
    assert response.status_code == 404 and "bot 99 does not exist" in response.json["error"]


def test_commands_are_stored_with_202(client, db):
    bot_id = _create(client)["id"]
    _trading(db, bot_id)
    paused = client.post(f"/bots/{bot_id}/pausar")
    assert paused.status_code == 202
    assert paused.json == {
        "id": 1, "bot_id": bot_id, "comando": "pausar", "cerrar": False,
        "creado": paused.json["creado"], "hecho": None, "resultado": "",
    }  # fmt: skip
    stop = client.post(f"/bots/{bot_id}/parar", json={"cerrar": True})
    assert stop.status_code == 202 and (stop.json["comando"], stop.json["cerrar"]) == (
        "parar", True,
    )  # fmt: skip
    plain = client.post(f"/bots/{bot_id}/parar")  # no body at all: cerrar false
    assert plain.status_code == 202 and plain.json["cerrar"] is False
    pending = db.bots.pending_commands()
    assert [(c.command, c.close) for c in pending] == [
        ("pausar", False), ("parar", True), ("parar", False),
    ]  # fmt: skip
    # The state is the host's to change: the request only stored the commands.
    assert db.bots.get(bot_id).status is B.TRADING


@pytest.mark.parametrize(
    ("moves", "command", "state", "allowed"),
    [
        ((T.START, T.STARTED, T.SYNCED), "reanudar", "operando", ["parar", "pausar"]),
        ((T.START, T.STARTED, T.SYNCED, T.PAUSE), "pausar", "pausado", ["parar", "reanudar"]),
        ((T.START,), "pausar", "iniciando", ["parar"]),
        ((T.START, T.STARTED, T.SYNCED, T.STOP), "parar", "deteniendo", []),
        ((T.START, T.STARTED, T.SYNCED, T.STOP, T.FINISHED), "parar", "detenido", []),
        ((), "reanudar", "detenido", []),
    ],
)
def test_a_command_the_state_forbids_is_a_409_naming_the_state(
    client, db, moves, command, state, allowed
):
    bot_id = _create(client)["id"]
    for trigger in moves:
        db.bots.update_status(bot_id, trigger, "bot", desired_running=False)
    response = client.post(f"/bots/{bot_id}/{command}")
    assert response.status_code == 409, response.json
    assert response.json["detalle"] == {"estado": state, "permitidos": allowed}
    assert db.bots.pending_commands() == []


def test_a_bot_not_started_yet_may_be_stopped(client, db):
    bot_id = _create(client)["id"]  # detenido, wanted running: its host has not started it
    assert client.post(f"/bots/{bot_id}/parar").status_code == 202


@pytest.mark.parametrize("body", ['{"cerrar": 1}', '{"cerrar": true, "x": 1}', "[]", "{"])
def test_a_bad_stop_body_is_refused(client, body):
    bot_id = _create(client)["id"]
    response = client.post(f"/bots/{bot_id}/parar", data=body, content_type="application/json")
    assert response.status_code in (400, 422) and "error" in response.json


def test_kill_stores_one_matar_for_every_bot(client, db):
    response = client.post("/kill")
    assert response.status_code == 202
    assert (response.json["bot_id"], response.json["comando"], response.json["cerrar"]) == (
        None, "matar", True,
    )  # fmt: skip
    assert [c.command for c in db.bots.pending_commands()] == ["matar"]


def test_mutations_need_the_api_token_when_set(demo_exchange, tmp_path):
    settings = settings_from_mapping(
        {"DATA_DIR": str(tmp_path), "DEMO_PORT": str(demo_exchange.port), "API_TOKEN": "s3cret"}
    )
    app = create_app(settings)
    client, auth = app.test_client(), {"Authorization": "Bearer s3cret"}
    assert client.post("/bots", json=BODY).status_code == 401
    assert (
        client.post("/bots", json=BODY, headers={"Authorization": "Bearer no"}).status_code == 401
    )
    assert client.post("/bots", json=BODY, headers=auth).status_code == 201
    for path in ("/bots/1/pausar", "/bots/1/parar", "/bots/1/reanudar", "/kill"):
        assert client.post(path).status_code == 401, path
    assert client.post("/bots/1/parar", headers=auth).status_code == 202
    assert client.post("/kill", headers=auth).status_code == 202
    assert client.get("/bots").status_code == 200 and client.get("/bots/1").status_code == 200
    app.extensions["kryptelion"].db.close()


USAGE = {"perdida_diaria": 0.01, "drawdown": 0.03, "posiciones": 1, "exposicion": 505.0}


def test_the_detail_shows_the_risk_usage_and_the_open_trades_stop_and_target(client, db):
    bot_id = _create(client, capital=1000.0, comision=0.0005, apalancamiento=2.0, tamano=0.5)["id"]
    db.bots.open_trade(BotTrade(bot_id, Side.BUY, 60_000, 101.0, 1.0))
    simulator = PaperSimulator(1000.0, Costs(0.0005, 0.0005, 0.0, 2.0, 0.5))
    for i, target in enumerate((1.0, 1.0, 1.0)):
        bar = Bar(60_000 * i, 100.0 + i, 100.5 + i, 99.5 + i, 100.0 + i)
        simulator.step(bar, target, stop_distance=2.0, take_distance=5.0)  # price distances
    db.bots.save_broker_state(bot_id, {**simulator.snapshot(), "uso_riesgo": USAGE})
    detail = client.get(f"/bots/{bot_id}").json
    assert detail["riesgo_uso"] == USAGE
    entry = simulator.trade.entry_price
    assert detail["proteccion"] == {"stop": entry - 2.0, "objetivo": entry + 5.0}


def test_a_testnet_bots_equity_is_what_its_host_stored(client, db):
    bot_id = _create(client, modo="testnet")["id"]
    assert client.get(f"/bots/{bot_id}").json["equity"] is None
    db.bots.save_broker_state(bot_id, {"equity": 1012.5, "uso_riesgo": USAGE})
    detail = client.get(f"/bots/{bot_id}").json
    assert (detail["equity"], detail["riesgo_uso"]) == (1012.5, USAGE)


def test_an_exchange_bots_protection_is_its_stored_trade_books(client, db):
    bot_id = _create(client, modo="testnet")["id"]
    book = TradeBook(1_000.0, 60_000)
    fill = FillSummary(1, 1.0, 0.01, 50_000.0, 0.25, 0.0, 1_700_000_000_000)
    book.open(fill, Decimal("49000.0"), None, 25_100.0)
    db.bots.open_trade(BotTrade(bot_id, Side.BUY, fill.time, fill.price, fill.quantity))
    db.bots.save_broker_state(bot_id, {"book": book.snapshot(), "equity": 999.75})
    detail = client.get(f"/bots/{bot_id}").json
    assert detail["proteccion"] == {"stop": 49_000.0, "objetivo": None}
    assert detail["posicion"]["entry_price"] == 50_000.0


def test_a_bots_orders_newest_first_in_the_ordenes_shape(client, db):
    bot_id = _create(client)["id"]
    other = _create(client, nombre="otro")["id"]
    for price, owner in ((50_000.0, bot_id), (51_000.0, other), (52_000.0, bot_id), (1.0, None)):
        purpose = None if owner is None else "entrada"
        order = Order("BTCUSDT", Side.BUY, 0.01, price, bot_id=owner, purpose=purpose)
        db.orders.create(order, actor="bot")
    page = client.get(f"/bots/{bot_id}/ordenes").json
    assert [o["precio"] for o in page["ordenes"]] == [52_000.0, 50_000.0]
    assert page["ordenes"] == [client.get(f"/ordenes/{o['id']}").json for o in page["ordenes"]]
    assert (page["total"], page["limit"], page["offset"]) == (2, 100, 0)
    second = client.get(f"/bots/{bot_id}/ordenes?limit=1&offset=1").json
    assert [o["precio"] for o in second["ordenes"]] == [50_000.0] and second["total"] == 2
    assert client.get(f"/bots/{bot_id}/ordenes?limit=0").status_code == 400
