"""The exchange side of the bot host: one trading account (the settings' keys, or the demo
exchange's account) shared by every testnet or live bot of the process — one TradingClient, one
user data stream feeding every bot's broker, a reconciliation every few seconds, and the kill
switch that leaves nothing open on the account.

One exchange bot per symbol: in one-way mode an account has one position per symbol, so a second
bot on it would trade the first one's position.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from config.settings import Settings
from core.bot import BotConfig
from core.broker.exchange import ExchangeBroker, StreamItem
from core.broker.intents import ClientIds
from core.errors import DataError, ExchangeError
from core.exchange.order_requests import OrderRequest, client_order_id
from core.exchange.trading import TradingClient, trading_client
from core.intervals import interval_ms
from core.models import Bot as StoredBot
from core.models import Order, OrderType, Side
from core.repository import Database
from core.repository.intents import OrderIntents
from core.rules import SymbolRules
from websocket.user_stream import UserStream

log = logging.getLogger(__name__)
RECONCILE_S = 10.0  # a symbol snapshot weighs 12: 72 a minute per bot of the 2,400
KILL_PREFIX = "kill"
Publish = Callable[[dict[str, Any]], None]


def client_prefix(stored: StoredBot) -> str:
    """The prefix of a stored bot's client ids: its id and its creation instant (base 36), so a
    bot of a recreated database never adopts an older bot's orders."""
    assert stored.id is not None
    stamp, digits = stored.created_at, ""
    while stamp:
        stamp, rest = divmod(stamp, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
    return f"k{stored.id}_{digits or '0'}"


class ExchangeAccount:
    """The account every exchange bot of the host trades, and its user stream."""

    def __init__(self, settings: Settings, client: TradingClient | None = None) -> None:
        self.settings = settings
        self.client = client if client is not None else trading_client(settings)
        self.brokers: dict[int, ExchangeBroker] = {}
        self.stream = UserStream(self.client, settings.binance_ws_url, self._on_item)
        self._task: asyncio.Task[None] | None = None
        # One queue and one feeding task per broker: a broker busy with a step (it holds its
        # lock) delays its own items only, never the stream or the other bots.
        self._queues: dict[int, asyncio.Queue[StreamItem]] = {}
        self._feeders: dict[int, asyncio.Task[None]] = {}

    def broker(
        self,
        db: Database,
        stored: StoredBot,
        config: BotConfig,
        rules: Callable[[], SymbolRules],
        publish: Publish,
    ) -> ExchangeBroker:
        """A stored bot's broker on this account, its intents in the orders table; DataError
        when another exchange bot of this process trades the symbol."""
        assert stored.id is not None
        taken = [b for i, b in self.brokers.items() if b.symbol == stored.symbol and i != stored.id]
        if taken:
            raise DataError(
                f"{stored.symbol}: another exchange bot of this account trades it (one position "
                f"per symbol in one-way mode)"
            )
        prefix = client_prefix(stored)
        bot_id = stored.id

        def on_change(order: Order) -> None:
            publish({"tipo": "orden", "id": bot_id, "orden": order.public()})

        intents = OrderIntents(db.orders, bot_id, ClientIds(prefix), on_change)
        return ExchangeBroker(
            self.client, stored.symbol, prefix, config.capital, config.costs,
            interval_ms(stored.interval), rules, intents, stop_loss=config.stop_fraction,
            take_profit=config.take_fraction, trailing=config.trailing,
        )  # fmt: skip

    def follow(self, bot_id: int, broker: ExchangeBroker) -> None:
        """Feed the broker the user stream from now on (the stream starts with the first)."""
        self.brokers[bot_id] = broker
        queue: asyncio.Queue[StreamItem] = asyncio.Queue()
        self._queues[bot_id] = queue
        self._feeders[bot_id] = asyncio.ensure_future(self._feed(bot_id, broker, queue))
        if self._task is None:
            self._task = asyncio.ensure_future(self.stream.run())

    def forget(self, bot_id: int) -> None:
        self.brokers.pop(bot_id, None)
        self._queues.pop(bot_id, None)
        feeder = self._feeders.pop(bot_id, None)
        if feeder is not None:
            feeder.cancel()

    async def _on_item(self, item: StreamItem) -> None:
        """One stream item to every broker's queue, in the stream's order."""
        for queue in list(self._queues.values()):
            queue.put_nowait(item)

    @staticmethod
    async def _feed(bot_id: int, broker: ExchangeBroker, queue: asyncio.Queue[StreamItem]) -> None:
        """A broker's items, one at a time; a failure is logged, never stops the feeding."""
        while True:
            item = await queue.get()
            try:
                await asyncio.to_thread(broker.on_user_event, item)
            except Exception:  # the next reconcile repairs what this item missed
                log.exception("bot %s could not follow a user-stream item", bot_id)

    def flatten_all(self) -> list[str]:
        """The kill switch's last step: every open order and algo order of the account cancelled,
        every position closed reduce-only at market; returns what it did."""
        snapshot = self.client.snapshot()
        symbols = {o.symbol for o in snapshot.open_orders}
        symbols |= {a.symbol for a in snapshot.open_algo_orders}
        symbols |= {p.symbol for p in snapshot.positions if p.amount}
        done = []
        for symbol in sorted(symbols):
            self.client.cancel_all_orders(symbol)
            self.client.cancel_all_algo_orders(symbol)
            done.append(f"{symbol}: órdenes canceladas")
        stamp = int(time.time() * 1000)
        for n, position in enumerate(p for p in self.client.positions() if p.amount):
            side = Side.SELL if position.amount > 0 else Side.BUY
            cid = client_order_id(KILL_PREFIX, stamp, n)
            try:
                self.client.place_order(OrderRequest(
                    position.symbol, side, OrderType.MARKET, abs(Decimal(position.amount)), cid,
                    reduce_only=True,
                ))  # fmt: skip
                done.append(f"{position.symbol}: posición {position.amount} cerrada")
            except ExchangeError as error:
                log.error("kill switch: %s not closed: %s", position.symbol, error)
                done.append(f"{position.symbol}: no cerrada ({error})")
        return done

    async def close(self) -> None:
        for bot_id in list(self._feeders):
            self.forget(bot_id)
        if self._task is not None:
            await self.stream.close()
            self._task.cancel()
            self._task = None
