"""/bots and /kill: create, list and read bots (their trades, events and orders); stop, pause and
resume them through commands that the process hosting the bots applies (wsbridge.bots), so a
request never drives a bot itself."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, request

from app.api import RequestError, operation, parse_body
from app.routes.ordenes import order_json
from app.schemas import (
    BotComando,
    BotIn,
    BotOrdenesQuery,
    BotResumen,
    BotsPage,
    OrdenesPage,
    PararIn,
)
from app.services import Services, services
from core.broker.paper import PaperSimulator
from core.errors import BotStateError, DataError, NotFoundError, StrategyError
from core.fills import Costs, check_distance, check_trailing
from core.models import Bot, BotCommand, BotEvent, BotMode, BotStatus, BotTrade, BotTrigger, Side
from core.repository import Database
from core.risk_types import SETTING_FIELDS, RiskSettings
from core.state import bot_state
from estrategias.base import Strategy
from estrategias.factory import crear_estrategia

bp = Blueprint("bots", __name__)
DECISIONS = 20
# The commands a person sends one bot, and the trigger each becomes in its state machine.
TRIGGERS = {"parar": BotTrigger.STOP, "pausar": BotTrigger.PAUSE, "reanudar": BotTrigger.RESUME}
PUBLIC_RISK = {public: name for name, public in SETTING_FIELDS.items()}


def _invalid(field: str, error: Exception) -> RequestError:
    return RequestError(422, f"{field}: {error}", {field: str(error)})


def build_strategy(name: str, params: dict[str, Any]) -> Strategy:
    """The registered strategy with `params`; 422 naming `estrategia` (with the registry's
    suggestion) or the first param its message names (shared by /bots and /senales)."""
    try:
        return crear_estrategia(name, **params)
    except (StrategyError, DataError, TypeError) as error:
        text = str(error)
        named = [f"params.{p}" for p in params if text.startswith(p) or f"'{p}'" in text]
        raise _invalid((named or ["estrategia"])[0], error) from None


def _strategy(body: BotIn) -> tuple[str, dict[str, Any]]:
    """The registered strategy's name and full params."""
    strategy = build_strategy(body.estrategia, body.params)
    return strategy.name, dict(strategy.p)


def _risk(body: BotIn) -> dict[str, object]:
    """The risk limits under RiskSettings' internal names (how they are stored); 422 naming
    `riesgo.<public name>` for a value outside its bounds."""
    given = body.riesgo.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    risk = {PUBLIC_RISK[public]: value for public, value in given.items()}
    try:
        RiskSettings(**risk)  # type: ignore[arg-type]
    except DataError as error:
        field = getattr(error, "field", "")
        raise _invalid(f"riesgo.{field}" if field else "riesgo", error) from None
    return risk


def _mode(svc: Services, modo: BotMode | None) -> BotMode:
    """The bot's mode (default TRADING_MODE); 409 when these settings cannot trade in it
    (Settings.trading_refusal: the rule the bot host applies too)."""
    mode = BotMode(modo or svc.settings.trading_mode)
    refusal = svc.settings.trading_refusal(mode.value)
    if refusal is not None:
        raise RequestError(409, refusal, {"modo": refusal})
    return mode


def _distance(body: BotIn, field: str) -> str | None:
    value = getattr(body, field)
    try:
        check_distance(value, field)
    except DataError as error:
        raise _invalid(field, error) from None
    return None if value is None else str(value)


def _trailing(body: BotIn) -> float | None:
    """The trailing stop's callback fraction; 422 naming `trailing` out of Binance's range."""
    try:
        check_trailing(body.trailing)
    except DataError as error:
        raise _invalid("trailing", error) from None
    return body.trailing


def bot_from(svc: Services, body: BotIn) -> Bot:
    """The bot the body describes, wanted running; raises RequestError naming the field."""
    strategy, params = _strategy(body)
    stop_loss, take_profit = _distance(body, "stop_loss"), _distance(body, "take_profit")
    trailing = _trailing(body)
    risk = _risk(body)
    mode = _mode(svc, body.modo)
    svc.symbol_rules(body.symbol)  # 400 for a symbol the market does not list
    return Bot(
        name=body.nombre, strategy=strategy, symbol=body.symbol, interval=body.interval,
        params=params, mode=mode, capital=body.capital, taker_fee=body.comision,
        maker_fee=body.comision_maker, slippage_bps=body.slippage, leverage=body.apalancamiento,
        size=body.tamano, stop_loss=stop_loss, take_profit=take_profit,
        funding_rate=body.funding, risk=risk, trailing=trailing, desired_running=True,
    )  # fmt: skip


def _taken(db: Database, name: str) -> bool:
    try:
        db.bots.get_by_name(name)
    except NotFoundError:
        return False
    return True


def create(db: Database, bot: Bot) -> Bot:
    """Store the bot; 409 when its name is taken (checked again after a refused insert, so
    two requests racing for one name get one 201 and one 409)."""
    conflict = RequestError(409, f"a bot named {bot.name!r} exists", {"nombre": "taken"})
    if _taken(db, bot.name):
        raise conflict
    try:
        return db.bots.create(bot)
    except DataError:
        if _taken(db, bot.name):
            raise conflict from None
        raise


def bot_json(bot: Bot) -> dict[str, Any]:
    return BotResumen(
        id=bot.id or 0, nombre=bot.name, estado=bot.status, motivo=bot.status_reason,
        symbol=bot.symbol, interval=bot.interval, estrategia=bot.strategy, modo=bot.mode,
        capital=bot.capital, en_marcha=bot.desired_running, creado=bot.created_at,
        actualizado=bot.updated_at,
    ).model_dump(mode="json")  # fmt: skip


def trade_json(trade: BotTrade) -> dict[str, Any]:
    """A bot's trade in a backtest's `trades` shape; the exit fields null while it is open."""
    return {
        "side": "long" if trade.side is Side.BUY else "short", "entry_time": trade.entry_time,
        "entry_price": trade.entry_price, "exit_time": trade.exit_time,
        "exit_price": trade.exit_price, "quantity": trade.quantity, "pnl": trade.pnl,
        "return": trade.return_pct, "fees": trade.fees, "funding": trade.funding,
        "exit_reason": trade.exit_reason,
    }  # fmt: skip


def event_json(event: BotEvent) -> dict[str, Any]:
    return {
        "id": event.id, "desde": event.from_state.value, "hacia": event.to_state.value,
        "disparador": event.trigger.value, "momento": event.at, "actor": event.actor,
        "motivo": event.reason,
    }  # fmt: skip


def command_json(command: BotCommand) -> dict[str, Any]:
    return BotComando(
        id=command.id or 0, bot_id=command.bot_id, comando=command.command,
        cerrar=command.close, creado=command.created_at, hecho=command.done_at,
        resultado=command.result,
    ).model_dump(mode="json")  # fmt: skip


def _paper_broker(bot: Bot, state: dict[str, Any] | None) -> PaperSimulator | None:
    """A paper bot's broker restored from its snapshot; None before its first step or for
    other modes."""
    if state is None or bot.mode is not BotMode.PAPER:
        return None
    maker = bot.taker_fee if bot.maker_fee is None else bot.maker_fee
    costs = Costs(bot.taker_fee, maker, bot.slippage_bps, bot.leverage, bot.size)
    simulator = PaperSimulator(bot.capital, costs)
    simulator.restore(state)
    return simulator


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _equity(
    db: Database, bot: Bot, state: dict[str, Any] | None, broker: PaperSimulator | None
) -> float | None:
    """A paper bot's equity at the last stored close of its market (its snapshot marked to that
    price, as the backtester would); another mode's is what its host stored under "equity"."""
    if bot.mode is not BotMode.PAPER:
        return _finite((state or {}).get("equity"))
    closes = db.candles.read_arrays(bot.symbol, bot.interval, limit=1).close
    if broker is None or not len(closes):
        return None
    return float(broker.equity(float(closes[-1])))


def _protection(state: dict[str, Any] | None, broker: PaperSimulator | None) -> dict | None:
    """The open trade's stop and target prices (null when unset), so a page can draw them
    without waiting for the next `posicion` message: a paper bot's from its restored broker,
    an exchange bot's from the trade book its host stored; None without an open trade."""
    if broker is not None:
        trade = broker.trade
        return (
            None
            if trade is None
            else {"stop": _finite(trade.stop), "objetivo": _finite(trade.take)}
        )
    book = (state or {}).get("book") or {}
    trade_state = book.get("trade")
    if not isinstance(trade_state, dict):
        return None
    return {"stop": _finite(trade_state.get("stop")), "objetivo": _finite(trade_state.get("take"))}


def _risk_usage(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the host measured against the limits (perdida_diaria, drawdown, posiciones,
    exposicion), stored with the broker snapshot; None until it stores one."""
    usage = (state or {}).get("uso_riesgo")
    return usage if isinstance(usage, dict) else None


def bot_detail(db: Database, bot_id: int) -> dict[str, Any]:
    """GET /bots/<id>: state, configuration, open position, closed PnL, risk usage, latest
    decisions."""
    bot = db.bots.get(bot_id)
    trades = db.bots.trades(bot_id)
    closed = [t for t in trades if not t.open]
    position = next((t for t in reversed(trades) if t.open), None)
    state = db.bots.load_broker_state(bot_id)
    broker = _paper_broker(bot, state)
    config = {
        "params": bot.params, "comision": bot.taker_fee, "comision_maker": bot.maker_fee,
        "slippage": bot.slippage_bps, "apalancamiento": bot.leverage, "tamano": bot.size,
        "stop_loss": bot.stop_loss, "take_profit": bot.take_profit, "trailing": bot.trailing,
        "funding": bot.funding_rate,
        "riesgo": {SETTING_FIELDS[name]: value for name, value in bot.risk.items()},
    }  # fmt: skip
    decisions = [
        {"open_time": d.open_time, "posicion": d.position, "precio": d.price, "motivo": d.reason}
        for d in db.bots.latest_decisions(bot_id, DECISIONS)
    ]
    return bot_json(bot) | {
        "config": config,
        "posicion": None if position is None else trade_json(position),
        "proteccion": None if position is None else _protection(state, broker),
        "pnl_cerrado": sum(t.pnl for t in closed),
        "operaciones_cerradas": len(closed),
        "equity": _equity(db, bot, state, broker),
        "riesgo_uso": _risk_usage(state),
        "decisiones": decisions,
        "eventos": len(db.bots.events(bot_id)),
    }


def check_command(bot: Bot, command: str) -> None:
    """409 naming the state when `bot`'s state does not allow `command` now. A bot still
    detenido but wanted running (its host has not started it yet) may be stopped."""
    if command == "parar" and bot.status is BotStatus.STOPPED and bot.desired_running:
        return
    try:
        bot_state(bot.status).next_status(TRIGGERS[command])
    except BotStateError:
        allowed = [c for c, t in TRIGGERS.items() if t in bot_state(bot.status).moves]
        raise RequestError(
            409,
            f"bot {bot.id} is {bot.status.value}: {command} is not allowed now",
            {"estado": bot.status.value, "permitidos": allowed},
        ) from None


def send(db: Database, bot_id: int, command: str, close: bool = False) -> BotCommand:
    """Store `command` for the bot host after checking the bot's state allows it."""
    check_command(db.bots.get(bot_id), command)
    return db.bots.add_command(bot_id, command, close)


@operation(bp, "/bots", "GET", "Every bot with its state", response=BotsPage)
def list_bots():  # type: ignore[no-untyped-def]
    return {"bots": [bot_json(b) for b in services().db.bots.list()]}


@operation(
    bp,
    "/bots",
    "POST",
    "Create a bot and start it (live needs the live settings)",
    body=BotIn,
    response=BotResumen,
    statuses=(201, 400, 409, 415, 422, 502),
)
def create_bot(body: BotIn):  # type: ignore[no-untyped-def]
    svc = services()
    return bot_json(create(svc.db, bot_from(svc, body))), 201


@operation(bp, "/bots/<int:bot_id>", "GET", "A bot: state, position, PnL, decisions")
def get_bot(bot_id: int):  # type: ignore[no-untyped-def]
    return bot_detail(services().db, bot_id)


@operation(bp, "/bots/<int:bot_id>/operaciones", "GET", "A bot's trades, open ones included")
def bot_trades(bot_id: int):  # type: ignore[no-untyped-def]
    return {"operaciones": [trade_json(t) for t in services().db.bots.trades(bot_id)]}


@operation(
    bp, "/bots/<int:bot_id>/ordenes", "GET", "A bot's orders, newest first",
    query=BotOrdenesQuery, response=OrdenesPage, statuses=(400,),
)  # fmt: skip
def bot_orders(bot_id: int, query: BotOrdenesQuery):  # type: ignore[no-untyped-def]
    db = services().db
    db.bots.get(bot_id)  # 404 for an unknown bot, not an empty page
    orders = db.orders.find(bot_id=bot_id, limit=query.limit, offset=query.offset)
    return {
        "ordenes": [order_json(o) for o in orders],
        "total": db.orders.count(bot_id=bot_id),
        "limit": query.limit,
        "offset": query.offset,
    }


@operation(bp, "/bots/<int:bot_id>/eventos", "GET", "A bot's state transitions")
def bot_events(bot_id: int):  # type: ignore[no-untyped-def]
    return {"eventos": [event_json(e) for e in services().db.bots.events(bot_id)]}


def _stop_body() -> PararIn:
    """POST /bots/<id>/parar's optional body: none at all means {"cerrar": false}."""
    if not request.get_data(cache=True).strip():
        return PararIn()
    return parse_body(PararIn)  # type: ignore[return-value]


COMMAND_STATUSES = (202, 404, 409)


@operation(
    bp,
    "/bots/<int:bot_id>/parar",
    "POST",
    'Stop a bot (optional body {"cerrar": true} also closes its position)',
    response=BotComando,
    statuses=(*COMMAND_STATUSES, 400, 415, 422),
)
def stop_bot(bot_id: int):  # type: ignore[no-untyped-def]
    body = _stop_body()
    return command_json(send(services().db, bot_id, "parar", body.cerrar)), 202


@operation(
    bp, "/bots/<int:bot_id>/pausar", "POST", "Pause a bot (it still protects its position)",
    response=BotComando, statuses=COMMAND_STATUSES,
)  # fmt: skip
def pause_bot(bot_id: int):  # type: ignore[no-untyped-def]
    return command_json(send(services().db, bot_id, "pausar")), 202


@operation(
    bp, "/bots/<int:bot_id>/reanudar", "POST", "Resume a paused bot (it reconciles first)",
    response=BotComando, statuses=COMMAND_STATUSES,
)  # fmt: skip
def resume_bot(bot_id: int):  # type: ignore[no-untyped-def]
    return command_json(send(services().db, bot_id, "reanudar")), 202


@operation(
    bp, "/kill", "POST", "Kill switch: stop every bot and close its position",
    response=BotComando, statuses=(202,),
)  # fmt: skip
def kill():  # type: ignore[no-untyped-def]
    return command_json(services().db.bots.add_command(None, "matar", close=True)), 202
