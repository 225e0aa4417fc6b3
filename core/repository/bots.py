"""Bots: configuration, state (every transition stored with its event), the broker's snapshot,
decisions and trades."""

from __future__ import annotations

import builtins
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import Connection, Engine, Row, String, Table, insert, select, true, update
from sqlalchemy.exc import IntegrityError

from core.errors import BotStateError, DataError, NotFoundError
from core.fills import check_distance, check_trailing
from core.models import Bot, BotDecision, BotEvent, BotMode, BotStatus, BotTrade, BotTrigger, Side
from core.repository.bot_commands import BotCommands
from core.repository.bot_leases import BotLeases
from core.repository.engine import read_connection, write_transaction
from core.repository.tables import BotDecisionRow, BotEventRow, BotRow, BotTradeRow
from core.risk_types import SETTING_FIELDS, RiskSettings
from core.state import bot_transition

_bots = cast(Table, BotRow.__table__)
_events = cast(Table, BotEventRow.__table__)
_decisions = cast(Table, BotDecisionRow.__table__)
_trades = cast(Table, BotTradeRow.__table__)
# A bot read without the broker's snapshot, which only `load_broker_state` needs.
_BOT_COLUMNS = [column for column in _bots.c if column.name != "broker_state"]
_CONFIG_FIELDS = (
    "name", "strategy", "symbol", "interval", "capital", "taker_fee", "maker_fee", "slippage_bps",
    "leverage", "size", "stop_loss", "take_profit", "funding_rate", "trailing",
)  # fmt: skip
_TRADE_NUMBERS = ("entry_price", "exit_price", "quantity", "pnl", "fees", "funding", "return_pct")
_TRADE_EXIT = ("exit_time", "exit_price", "pnl", "fees", "funding", "exit_reason", "return_pct")


def _now() -> int:
    return int(time.time() * 1000)


def _check_finite(what: str, values: Mapping[str, object]) -> None:
    """Raise DataError naming the first number that is NaN or infinite: strict JSON, the API
    and PostgreSQL's JSON would refuse it later."""
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise DataError(f"{what} not stored: its {name} is {value}, not a finite number")


def _check_lengths(table: Table, what: str, values: Mapping[str, object]) -> None:
    """Raise DataError for a text longer than its column (PostgreSQL would refuse it)."""
    for name, value in values.items():
        column_type = table.c[name].type
        length = column_type.length if isinstance(column_type, String) else None
        if isinstance(value, str) and length is not None and len(value) > length:
            raise DataError(f"{what} not stored: its {name} is longer than {length} characters")


def _dumps(what: str, name: str, value: object) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise DataError(
            f"{what} not stored: its {name} is not JSON of finite numbers: {error}"
        ) from None


def _check_distance(name: str, text: str | None) -> None:
    """A stop or target as text: a fraction ("0.02") or an ATR multiple ("3atr"), checked by
    the rule the backtester applies; raises DataError."""
    if text is None:
        return
    try:
        value: float | str = float(text)
    except ValueError:
        value = text
    check_distance(value, name)


def _check_risk(risk: Mapping[str, object]) -> None:
    """Raise DataError for a setting RiskSettings does not have, RiskSettingsError (naming it)
    for a value outside its bounds."""
    unknown = sorted(set(risk) - set(SETTING_FIELDS))
    if unknown:
        raise DataError(f"risk: unknown settings {unknown}; known: {sorted(SETTING_FIELDS)}")
    RiskSettings(**risk)  # type: ignore[arg-type]


def _config_values(bot: Bot) -> dict[str, object]:
    values: dict[str, object] = {name: getattr(bot, name) for name in _CONFIG_FIELDS}
    if not bot.name.strip():
        raise DataError("bot not stored: its name is empty")
    _check_finite("bot", values)
    _check_lengths(_bots, "bot", values)
    _check_distance("stop_loss", bot.stop_loss)
    _check_distance("take_profit", bot.take_profit)
    check_trailing(bot.trailing)
    _check_risk(bot.risk)
    values["mode"] = BotMode(bot.mode).value
    values["params"] = _dumps("bot", "params", bot.params)
    values["risk"] = _dumps("bot", "risk", bot.risk)
    return values


def _bot(row: Row) -> Bot:
    return Bot(
        id=row.id,
        params=json.loads(row.params),
        mode=BotMode(row.mode),
        risk=json.loads(row.risk),
        status=BotStatus(row.status),
        status_reason=row.status_reason,
        desired_running=bool(row.desired_running),
        created_at=row.created_at,
        updated_at=row.updated_at,
        **{name: getattr(row, name) for name in _CONFIG_FIELDS},
    )


def _event(row: Row) -> BotEvent:
    return BotEvent(
        id=row.id,
        bot_id=row.bot_id,
        from_state=BotStatus(row.from_state),
        to_state=BotStatus(row.to_state),
        trigger=BotTrigger(row.trigger),
        at=row.at,
        actor=row.actor,
        reason=row.reason,
    )


def _event_values(event: BotEvent) -> dict[str, object]:
    names = ("bot_id", "from_state", "to_state", "trigger", "actor", "reason", "at")
    return {name: getattr(event, name) for name in names}


def _decision(row: Row) -> BotDecision:
    return BotDecision(
        id=row.id,
        bot_id=row.bot_id,
        open_time=row.open_time,
        position=row.position,
        price=row.price,
        reason=row.reason,
    )


def _trade(row: Row) -> BotTrade:
    names = ("id", "bot_id", "entry_time", "entry_price", "quantity", *_TRADE_EXIT)
    return BotTrade(side=Side(row.side), **{name: getattr(row, name) for name in names})


def _trade_values(trade: BotTrade) -> dict[str, object]:
    names = ("entry_time", "entry_price", "quantity", *_TRADE_EXIT)
    values: dict[str, object] = {name: getattr(trade, name) for name in names}
    _check_finite("trade", {name: values[name] for name in _TRADE_NUMBERS})
    _check_lengths(_trades, "trade", {"exit_reason": trade.exit_reason})
    return {**values, "side": Side(trade.side).value, "open": trade.open}


def _entry(trade: BotTrade) -> tuple[object, ...]:
    """What identifies a trade's opening: a close must repeat it."""
    return (trade.bot_id, trade.side, trade.entry_time, trade.entry_price, trade.quantity)


def _bot_row(connection: Connection, bot_id: int, lock: bool = False) -> Row:
    """The bot's row (without the snapshot), locked FOR UPDATE on PostgreSQL when `lock`;
    raises NotFoundError."""
    query = select(*_BOT_COLUMNS).where(_bots.c.id == bot_id)
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None:
        raise NotFoundError(f"bot {bot_id} does not exist")
    return row


class BotRepository(BotCommands, BotLeases):
    """Create, read, configure and transition bots; store their snapshots, decisions and trades.

    Bots are never deleted: their orders, events and trades keep pointing at them. The
    commands for the bot host (add_command, pending_commands, …) come from BotCommands.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, bot: Bot) -> Bot:
        """Store a new bot (it starts detenido); returns it with `id` and timestamps set.

        Raises BotStateError for another status, DataError when the name is taken or a value
        cannot be stored (NaN, too long, a bad stop), RiskSettingsError for a risk limit out of
        bounds."""
        if bot.status is not BotStatus.STOPPED:
            raise BotStateError(f"a new bot starts detenido, not {bot.status.value}")
        values = _config_values(bot)
        now = bot.created_at or _now()
        values |= {
            "status": bot.status.value,
            "status_reason": bot.status_reason,
            "desired_running": bot.desired_running,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with write_transaction(self._engine) as connection:
                bot_id = connection.execute(
                    insert(_bots).values(values).returning(_bots.c.id)
                ).scalar_one()
        except IntegrityError:
            # The name is the bots table's only unique column.
            raise DataError(f"nombre: a bot named {bot.name!r} exists") from None
        return replace(bot, id=bot_id, created_at=now, updated_at=now)

    def get(self, bot_id: int) -> Bot:
        """The bot with `bot_id`; raises NotFoundError."""
        with read_connection(self._engine) as connection:
            return _bot(_bot_row(connection, bot_id))

    def get_by_name(self, name: str) -> Bot:
        """The bot called `name`; raises NotFoundError."""
        query = select(*_BOT_COLUMNS).where(_bots.c.name == name)
        with read_connection(self._engine) as connection:
            row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"no bot is called {name!r}")
        return _bot(row)

    def list(self, status: BotStatus | None = None) -> builtins.list[Bot]:
        """Every bot (only those in `status` when given), oldest first."""
        query = select(*_BOT_COLUMNS).order_by(_bots.c.id)
        if status is not None:
            query = query.where(_bots.c.status == BotStatus(status).value)
        with read_connection(self._engine) as connection:
            return [_bot(row) for row in connection.execute(query)]

    def to_resume(self) -> builtins.list[Bot]:
        """The bots a person left running (`desired_running`), oldest first: `python run.py`
        starts them again."""
        query = select(*_BOT_COLUMNS).where(_bots.c.desired_running == true())
        with read_connection(self._engine) as connection:
            return [_bot(row) for row in connection.execute(query.order_by(_bots.c.id))]

    def update_config(self, bot: Bot) -> Bot:
        """Store `bot`'s configuration (name, strategy, params, market, mode, capital, costs,
        stops, risk) over the one with its id; status, snapshot and history are left alone. Returns
        the stored bot. Raises NotFoundError, and what `create` raises for its values."""
        if bot.id is None:
            raise NotFoundError("a bot without an id is not stored; create it first")
        values = _config_values(bot) | {"updated_at": _now()}
        try:
            with write_transaction(self._engine) as connection:
                _bot_row(connection, bot.id, lock=True)
                connection.execute(update(_bots).where(_bots.c.id == bot.id).values(values))
                row = _bot_row(connection, bot.id)
        except IntegrityError:
            raise DataError(f"nombre: a bot named {bot.name!r} exists") from None
        return _bot(row)

    def update_status(
        self,
        bot_id: int,
        trigger: BotTrigger,
        actor: str,
        reason: str = "",
        at: int | None = None,
        desired_running: bool | None = None,
    ) -> tuple[Bot, BotEvent]:
        """Move the bot through its state machine on `trigger` and store the event, atomically;
        `reason` becomes its status_reason, `desired_running` (when given) is set with it.

        The row is read inside the write transaction (FOR UPDATE on PostgreSQL), so two
        concurrent transitions cannot both start from the same state. Raises NotFoundError, or
        BotStateError (changing nothing) when the state does not allow `trigger`.
        """
        now = _now() if at is None else at
        _check_lengths(_events, "bot event", {"actor": actor})
        with write_transaction(self._engine) as connection:
            row = _bot_row(connection, bot_id, lock=True)
            event = bot_transition(BotStatus(row.status), trigger, actor, now, reason, bot_id)
            values = {"status": event.to_state.value, "status_reason": reason, "updated_at": now}
            if desired_running is not None:
                values["desired_running"] = desired_running
            connection.execute(update(_bots).where(_bots.c.id == bot_id).values(values))
            event_id = connection.execute(
                insert(_events).values(_event_values(event)).returning(_events.c.id)
            ).scalar_one()
            row = _bot_row(connection, bot_id)
        return _bot(row), replace(event, id=event_id)

    def events(self, bot_id: int) -> builtins.list[BotEvent]:
        """The bot's transitions, oldest first; raises NotFoundError for an unknown bot."""
        query = select(_events).where(_events.c.bot_id == bot_id).order_by(_events.c.id)
        return [_event(row) for row in self._read_of(bot_id, query)]

    def save_broker_state(self, bot_id: int, state: Mapping[str, Any]) -> None:
        """Store the broker's snapshot (any JSON object; this repository does not look inside),
        replacing the previous one. Raises NotFoundError, or DataError for NaN, infinities or
        values JSON cannot hold, storing nothing."""
        text = _dumps("broker state", "snapshot", dict(state))
        with write_transaction(self._engine) as connection:
            _bot_row(connection, bot_id, lock=True)
            connection.execute(update(_bots).where(_bots.c.id == bot_id).values(broker_state=text))

    def load_broker_state(self, bot_id: int) -> dict[str, Any] | None:
        """The last snapshot saved, None before the first; raises NotFoundError."""
        query = select(_bots.c.broker_state).where(_bots.c.id == bot_id)
        with read_connection(self._engine) as connection:
            row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"bot {bot_id} does not exist")
        return None if row.broker_state is None else json.loads(row.broker_state)

    def add_decision(self, decision: BotDecision) -> BotDecision:
        """Store what the strategy decided on a candle; returns it with `id` set. Raises
        NotFoundError for an unknown bot, DataError for a position or price that is not
        finite."""
        values = {
            "open_time": decision.open_time,
            "position": float(decision.position),
            "price": float(decision.price),
            "reason": decision.reason,
        }
        _check_finite("decision", values)
        decision_id = self._insert(_decisions, decision.bot_id, values)
        return replace(decision, id=decision_id)

    def latest_decisions(self, bot_id: int, n: int = 20) -> builtins.list[BotDecision]:
        """The bot's `n` latest decisions, newest candle first; raises NotFoundError."""
        query = (
            select(_decisions)
            .where(_decisions.c.bot_id == bot_id)
            .order_by(_decisions.c.open_time.desc(), _decisions.c.id.desc())
            .limit(n)
        )
        return [_decision(row) for row in self._read_of(bot_id, query)]

    def open_trade(self, trade: BotTrade) -> BotTrade:
        """Store a trade as it opens (no exit yet); returns it with `id` set. Raises DataError
        for a trade with an exit or numbers that are not finite, NotFoundError for an unknown
        bot."""
        if not trade.open or trade.exit_price is not None:
            raise DataError("trade not stored: an opening trade has no exit_time nor exit_price")
        trade_id = self._insert(_trades, trade.bot_id, _trade_values(trade))
        return replace(trade, id=trade_id)

    def close_trade(self, trade: BotTrade) -> BotTrade:
        """Complete the stored open trade `trade.id` with `trade`'s exit, PnL, fees, funding,
        reason and return; returns the stored trade. Closing it again with the very same values
        returns it unchanged, so a replayed close is harmless.

        Raises NotFoundError, or DataError (storing nothing) when `trade` has no exit, does not
        repeat the stored entry (bot, side, time, price, quantity), or the trade was closed
        with other values.
        """
        if trade.id is None:
            raise NotFoundError("a trade without an id is not stored; open it first")
        if trade.exit_time is None or trade.exit_price is None:
            raise DataError(f"trade {trade.id}: closing needs exit_time and exit_price")
        values = _trade_values(trade)
        with write_transaction(self._engine) as connection:
            query = select(_trades).where(_trades.c.id == trade.id)
            if connection.dialect.name == "postgresql":
                query = query.with_for_update()
            row = connection.execute(query).first()
            if row is None:
                raise NotFoundError(f"trade {trade.id} does not exist")
            stored = _trade(row)
            if _entry(stored) != _entry(trade):
                raise DataError(f"trade {trade.id}: {_entry(trade)} is not its entry")
            if not stored.open:
                if stored == trade:
                    return stored
                raise DataError(f"trade {trade.id} is already closed, with other values")
            exit_values = {name: values[name] for name in (*_TRADE_EXIT, "open")}
            connection.execute(update(_trades).where(_trades.c.id == trade.id).values(exit_values))
            row = connection.execute(select(_trades).where(_trades.c.id == trade.id)).one()
        return _trade(row)

    def trades(self, bot_id: int, open: bool | None = None) -> builtins.list[BotTrade]:
        """The bot's trades in entry order (only the open or the closed ones when `open` is
        given); raises NotFoundError for an unknown bot."""
        query = select(_trades).where(_trades.c.bot_id == bot_id)
        if open is not None:
            query = query.where(_trades.c.open == open)
        query = query.order_by(_trades.c.entry_time, _trades.c.id)
        return [_trade(row) for row in self._read_of(bot_id, query)]

    def _insert(self, table: Table, bot_id: int | None, values: dict[str, object]) -> int:
        """Insert a row of a bot's (checked to exist first), returning its id."""
        if bot_id is None:
            raise NotFoundError("a bot without an id is not stored; create it first")
        with write_transaction(self._engine) as connection:
            _bot_row(connection, bot_id)
            statement = insert(table).values(bot_id=bot_id, **values).returning(table.c.id)
            return int(connection.execute(statement).scalar_one())

    def _read_of(self, bot_id: int, query: Any) -> Iterable[Row]:
        """The rows of a bot's query, read with the bot's existence in one snapshot."""
        with read_connection(self._engine) as connection:
            _bot_row(connection, bot_id)
            return connection.execute(query).all()
