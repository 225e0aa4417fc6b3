"""Bot leases: which process runs a bot. A bot host claims a bot before running it and renews
the claim every poll, so two processes (`python run.py` and `python run.py bot`, or two
machines on one database) never run one bot twice; a claim a dead process left lapses and the
next host resumes the bot."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy import Engine, Table, or_, select, update

from core.repository.engine import read_connection, write_transaction
from core.repository.tables import BotRow

_bots = cast(Table, BotRow.__table__)


class BotLeases:
    """db.bots' lease methods (mixed into BotRepository, which owns `_engine`). Times are wall
    clock epoch ms: leases are between processes, whatever the market's clock."""

    _engine: Engine

    def claim(self, bot_id: int, host: str, now_ms: int, lease_ms: int) -> bool:
        """Take the bot for `host` until now + `lease_ms`, unless another host holds a lease
        that has not lapsed; True when the bot is `host`'s now. Atomic: of two hosts racing,
        one wins."""
        free = or_(
            _bots.c.lease_until.is_(None), _bots.c.lease_until < now_ms, _bots.c.host == host
        )
        query = update(_bots).where(_bots.c.id == bot_id, free)
        with write_transaction(self._engine) as connection:
            done = connection.execute(query.values(host=host, lease_until=now_ms + lease_ms))
        return done.rowcount == 1

    def renew(self, host: str, bot_ids: Iterable[int], now_ms: int, lease_ms: int) -> set[int]:
        """Extend `host`'s leases of `bot_ids`; returns the ids it still holds (a bot another
        host took after this one's lease lapsed is not among them)."""
        ids = list(bot_ids)
        if not ids:
            return set()
        mine = (_bots.c.id.in_(ids), _bots.c.host == host)
        with write_transaction(self._engine) as connection:
            connection.execute(update(_bots).where(*mine).values(lease_until=now_ms + lease_ms))
            held = connection.execute(select(_bots.c.id).where(*mine)).scalars()
            return set(held)

    def release(self, bot_id: int, host: str) -> None:
        """Give the bot up (it stopped here): any host may run it next."""
        query = update(_bots).where(_bots.c.id == bot_id, _bots.c.host == host)
        with write_transaction(self._engine) as connection:
            connection.execute(query.values(host=None, lease_until=None))

    def holder(self, bot_id: int, now_ms: int) -> str | None:
        """The host whose lease of the bot has not lapsed, None when nobody runs it."""
        query = select(_bots.c.host, _bots.c.lease_until).where(_bots.c.id == bot_id)
        with read_connection(self._engine) as connection:
            row = connection.execute(query).first()
        if row is None or row.lease_until is None or row.lease_until < now_ms:
            return None
        return str(row.host)
