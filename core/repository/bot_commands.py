"""Bot commands (parar, pausar, reanudar, matar): written by the web app, applied and marked done
by the process hosting the bots; db.bots exposes them."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import cast

from sqlalchemy import Engine, Row, Table, insert, select, update

from core.errors import NotFoundError
from core.models import BotCommand
from core.repository.engine import read_connection, write_transaction
from core.repository.tables import BotCommandRow, BotRow

_commands = cast(Table, BotCommandRow.__table__)
_bots = cast(Table, BotRow.__table__)


def _now() -> int:
    return int(time.time() * 1000)


def _command(row: Row) -> BotCommand:
    return BotCommand(
        id=row.id,
        bot_id=row.bot_id,
        command=row.command,
        close=bool(row.close),
        created_at=row.created_at,
        done_at=row.done_at,
        result=row.result,
    )


class BotCommands:
    """db.bots' command methods (mixed into BotRepository, which owns `_engine`)."""

    _engine: Engine

    def add_command(self, bot_id: int | None, command: str, close: bool = False) -> BotCommand:
        """Store a pending command (`bot_id` None: every bot); returns it with `id` set.
        Raises NotFoundError for an unknown bot, DataError for an unknown command."""
        new = BotCommand(bot_id, command, close, created_at=_now())
        values = {"bot_id": bot_id, "command": command, "close": close,
                  "created_at": new.created_at, "result": ""}  # fmt: skip
        with write_transaction(self._engine) as connection:
            if bot_id is not None:
                query = select(_bots.c.id).where(_bots.c.id == bot_id)
                if connection.execute(query).first() is None:
                    raise NotFoundError(f"bot {bot_id} does not exist")
            statement = insert(_commands).values(values).returning(_commands.c.id)
            command_id = connection.execute(statement).scalar_one()
        return replace(new, id=command_id)

    def pending_commands(self) -> list[BotCommand]:
        """The commands not applied yet, oldest first."""
        query = select(_commands).where(_commands.c.done_at.is_(None)).order_by(_commands.c.id)
        with read_connection(self._engine) as connection:
            return [_command(row) for row in connection.execute(query)]

    def kill_commands_since(self, since_ms: int) -> list[BotCommand]:
        """The kill switch's commands stored since `since_ms`, applied or not, oldest first:
        every host running bots must act on them, whoever marks them done."""
        query = (
            select(_commands)
            .where(_commands.c.command == "matar", _commands.c.created_at >= since_ms)
            .order_by(_commands.c.id)
        )
        with read_connection(self._engine) as connection:
            return [_command(row) for row in connection.execute(query)]

    def finish_command(self, command_id: int, result: str) -> BotCommand:
        """Mark a command applied, with `result`; returns it. A command already finished keeps
        its first result (two hosts cannot both finish it). Raises NotFoundError."""
        with write_transaction(self._engine) as connection:
            connection.execute(
                update(_commands)
                .where(_commands.c.id == command_id, _commands.c.done_at.is_(None))
                .values(done_at=_now(), result=result)
            )
            query = select(_commands).where(_commands.c.id == command_id)
            row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"bot command {command_id} does not exist")
        return _command(row)

    def set_desired_running(self, bot_id: int, wanted: bool) -> None:
        """Change only whether a person wants the bot running, without a transition (a bot
        stopped before its host started it); raises NotFoundError."""
        values = {"desired_running": wanted, "updated_at": _now()}
        with write_transaction(self._engine) as connection:
            done = connection.execute(update(_bots).where(_bots.c.id == bot_id).values(values))
        if done.rowcount == 0:
            raise NotFoundError(f"bot {bot_id} does not exist")
