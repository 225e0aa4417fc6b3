"""The demo exchange's optional state file (`--state FILE`): accounts, orders, positions and
fills survive a restart, as they would on a real exchange.

Written atomically (temporary file, then rename) at most once a second while something changed
and at shutdown, so a killed demo loses at most its last second. On start-up the engine walks
the market from where it stopped, so orders resting while it was down fill at the instants the
market traded through them. Countdowns (real-time heartbeats) do not survive a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from aiohttp import web

from core.errors import ConfigError
from core.exchange.demo.accounts import Account, Accounts, ListenKey, MarginType, SymbolConfig
from core.exchange.demo.market import DemoClock
from core.exchange.demo.matching import MatchingEngine
from core.exchange.demo.orders import AlgoOrder, Book, Fill, Order, Position

log = logging.getLogger(__name__)

VERSION = 1
SAVE_EVERY_S = 1.0


def snapshot(accounts: Accounts, engine: MatchingEngine, now_ms: int) -> dict[str, Any]:
    """Everything the demo must remember, as JSON-ready data."""
    return {
        "version": VERSION,
        "saved_ms": now_ms,
        "ids": dict(engine.ids),
        "walked": engine.walked(),
        "accounts": [_account(account) for account in accounts],
    }


def _account(account: Account) -> dict[str, Any]:
    book = account.book
    return {
        "api_key": account.api_key,
        "wallet_balance": account.wallet_balance,
        "update_ms": account.update_ms,
        "symbols": {
            symbol: {"leverage": c.leverage, "margin_type": c.margin_type.value}
            for symbol, c in account.symbols.items()
        },
        "listen_key": asdict(account.listen_key) if account.listen_key else None,
        "orders": [asdict(o) for o in book.orders.values()],
        "algo_orders": [asdict(a) for a in book.algo_orders.values()],
        "positions": [asdict(p) for p in book.positions.values() if p.amount or p.realized],
        "fills": [asdict(f) for f in book.fills],
    }


def _build(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def restore(data: dict[str, Any], accounts: Accounts, engine: MatchingEngine) -> None:
    """Put a snapshot back into fresh accounts and engine; ConfigError if it is not one."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ConfigError("demo state file: not a version-1 Kryptelion demo state")
    engine.ids.update({k: int(v) for k, v in data["ids"].items() if k in engine.ids})
    for row in data["accounts"]:
        if row["api_key"] not in accounts.secrets:
            log.warning("demo state: skipping an account whose API key is no longer configured")
            continue
        account = accounts.get(row["api_key"], int(row["update_ms"]))
        account.wallet_balance = float(row["wallet_balance"])
        account.update_ms = int(row["update_ms"])
        account.symbols = {
            s: SymbolConfig(int(c["leverage"]), MarginType(c["margin_type"]))
            for s, c in row["symbols"].items()
        }
        key = row.get("listen_key")
        account.listen_key = ListenKey(key["value"], int(key["expires_ms"])) if key else None
        book = Book()
        book.orders = {o["order_id"]: _build(Order, o) for o in row["orders"]}
        book.algo_orders = {a["algo_id"]: _build(AlgoOrder, a) for a in row["algo_orders"]}
        book.positions = {p["symbol"]: _build(Position, p) for p in row["positions"]}
        book.fills = [_build(Fill, f) for f in row["fills"]]
        account.book = book
    for symbol, instant in data.get("walked", {}).items():
        engine.watch(symbol, int(instant))


def load(path: Path) -> dict[str, Any] | None:
    """The saved snapshot, or None when the file does not exist yet."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ConfigError(f"demo state file {path}: cannot be read ({error})") from None


def write(path: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically: a crash mid-write leaves the previous state intact."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    os.replace(temporary, path)


def add_state_file(
    app: web.Application, path: Path, accounts: Accounts, engine: MatchingEngine, clock: DemoClock
) -> None:
    """Save the demo's state to `path` once a second when it changed, and at shutdown."""

    def save(last: str) -> str:
        data = snapshot(accounts, engine, clock.now_ms())
        text = json.dumps({**data, "saved_ms": 0}, separators=(",", ":"))
        if text != last:
            write(path, data)
        return text

    async def saver(app: web.Application):  # type: ignore[no-untyped-def]
        async def loop() -> None:
            last = ""
            while True:
                await asyncio.sleep(SAVE_EVERY_S)
                try:
                    last = save(last)
                except OSError:
                    log.exception("demo state: cannot write %s", path)

        task = asyncio.ensure_future(loop())
        yield
        task.cancel()
        save("")
        log.info("demo state saved to %s", path)

    app.cleanup_ctx.append(saver)
