"""The Hub: one upstream subscription per (symbol, interval), fanned out to many browsers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, broadcast

from config.settings import Settings
from core.errors import ExchangeError, KryptelionError
from core.exchange.klines import klines_to_frame
from core.exchange.rest import BinanceRest
from core.intervals import INTERVALS
from core.models import Candle
from core.repository import Database
from estrategias.base import LiveStrategy, Strategy, Velas
from estrategias.factory import crear_estrategia
from estrategias.sma_cruce import SmaCruce
from websocket.client import MAX_STREAMS, KlineStreamClient

log = logging.getLogger(__name__)
SNAPSHOT_CANDLES = 500


def to_chart_seconds(ms: int) -> int:
    """Binance milliseconds become chart seconds here and nowhere else."""
    return ms // 1000


def _velas(candles: deque[Candle]) -> Velas:
    return Velas(
        np.array([c.open_time for c in candles], dtype=np.int64),
        *(np.array([getattr(c, name) for c in candles]) for name in
          ("open", "high", "low", "close", "volume")),
    )  # fmt: skip


def _percentile(values: deque[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def candle_json(candle: Candle) -> dict[str, Any]:
    return {"open_time": candle.open_time, "time": to_chart_seconds(candle.open_time),
            "open": candle.open, "high": candle.high, "low": candle.low, "close": candle.close,
            "volume": candle.volume, "closed": candle.closed}  # fmt: skip


@dataclass(eq=False)  # identity semantics: clients live in sets
class Client:
    """A browser connection and the streams it follows."""

    ws: ServerConnection
    streams: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Subscription:
    symbol: str
    interval: str
    clients: set[Client] = field(default_factory=set)
    history: deque[Candle] = field(default_factory=lambda: deque(maxlen=SNAPSHOT_CANDLES))
    current: Candle | None = None
    strategies: list[tuple[Strategy, LiveStrategy]] = field(default_factory=list)
    positions: dict[str, float] = field(default_factory=dict)
    release: asyncio.TimerHandle | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    """Owns upstream clients, subscriptions and browser clients; built once in main()."""

    def __init__(self, db: Database, ws_base: str, rest_url: str, strategies: list[str],
                 max_clients: int = 5000, grace_s: float = 30.0) -> None:  # fmt: skip
        self.db = db
        self.ws_base, self.rest_url = ws_base, rest_url
        self.strategy_names = strategies
        self.max_clients = max_clients
        self.grace_s = grace_s
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        self.clients: set[Client] = set()
        self.upstreams: list[tuple[KlineStreamClient, asyncio.Task]] = []
        self.upstream_state = "desconectado"
        self.symbols: set[str] = set()
        self.started = time.time()
        self.messages_out = 0
        self.port = 0  # known once the server listens
        self.fanout_ms: deque[float] = deque(maxlen=2000)  # time to write one message to all

    @classmethod
    def from_settings(cls, settings: Settings, strategies: list[str]) -> Hub:
        """The hub for the configured market and database (python -m wsbridge, run.py)."""
        return cls(
            Database(settings.database_url),
            settings.binance_ws_url,
            settings.binance_rest_url,
            strategies,
        )

    async def load_symbols(self) -> None:
        info = await asyncio.to_thread(BinanceRest(self.rest_url).exchange_info)
        self.symbols = {s["symbol"] for s in info["symbols"] if s.get("status") == "TRADING"}

    def check_stream(self, symbol: str, interval: str) -> str | None:
        """Why (symbol, interval) cannot be served, or None when it can."""
        if interval not in INTERVALS:
            return f"invalid interval {interval!r}; valid: {', '.join(INTERVALS)}"
        if symbol not in self.symbols:
            return f"unknown symbol {symbol!r} on this market"
        return None

    # upstream side -----------------------------------------------------------------------
    async def _upstream_for(self) -> KlineStreamClient:
        for client, _ in self.upstreams:
            if len(client.streams) < MAX_STREAMS:
                return client
        client = KlineStreamClient(self.ws_base, self.rest_url, self.on_candle, self.on_state)
        self.upstreams.append((client, asyncio.create_task(client.run())))
        return client

    async def subscribe(self, client: Client, symbol: str, interval: str) -> Subscription:
        key = (symbol, interval)
        sub = self.subscriptions.get(key)
        if sub is None:
            sub = self.subscriptions[key] = Subscription(symbol, interval)
            try:
                last = await self._warm_up(sub)
                await (await self._upstream_for()).subscribe(symbol, interval, after=last)
            except (KryptelionError, OSError) as error:
                del self.subscriptions[key]
                raise ExchangeError(f"cannot start {symbol} {interval}: {error}") from None
            finally:
                sub.ready.set()
        else:
            await sub.ready.wait()  # joiners during the warm-up get the full snapshot too
            if key not in self.subscriptions:
                raise ExchangeError(f"cannot start {symbol} {interval}")
        if sub.release is not None:
            sub.release.cancel()
            sub.release = None
        sub.clients.add(client)
        client.streams.add(key)
        return sub

    async def _warm_up(self, sub: Subscription) -> int | None:
        """Recent closed candles from the database, topped up from REST; strategies primed."""
        frame = await asyncio.to_thread(self._recent, sub.symbol, sub.interval)
        for name in self.strategy_names:
            strategy = crear_estrategia(name)
            sub.strategies.append((strategy, strategy.live()))
        for row in frame.itertuples(index=False):
            candle = Candle(
                sub.symbol,
                sub.interval,
                int(row.open_time),
                row.open,
                row.high,
                row.low,
                row.close,
                row.volume,
            )
            sub.history.append(candle)
            for strategy, live in sub.strategies:
                sub.positions[strategy.name] = live.update(candle)
        return sub.history[-1].open_time if sub.history else None

    def _recent(self, symbol: str, interval: str):  # type: ignore[no-untyped-def]
        rest = BinanceRest(self.rest_url)
        now = rest.server_time()
        rows = klines_to_frame(rest.klines(symbol, interval, limit=SNAPSHOT_CANDLES + 1))
        closed = rows[rows["close_time"] < now].drop(columns="close_time")
        self.db.candles.upsert(symbol, interval, closed)
        return self.db.candles.read_frame(symbol, interval, limit=SNAPSHOT_CANDLES)

    def unsubscribe(self, client: Client, key: tuple[str, str]) -> None:
        sub = self.subscriptions.get(key)
        client.streams.discard(key)
        if sub is None:
            return
        sub.clients.discard(client)
        if not sub.clients and sub.release is None:
            loop = asyncio.get_running_loop()
            sub.release = loop.call_later(self.grace_s, lambda: asyncio.ensure_future(
                self._release(key)))  # fmt: skip

    async def _release(self, key: tuple[str, str]) -> None:
        sub = self.subscriptions.get(key)
        if sub is None or sub.clients:
            return
        del self.subscriptions[key]
        for client, _ in self.upstreams:
            if f"{key[0].lower()}@kline_{key[1]}" in client.streams:
                await client.unsubscribe(*key)
        log.info("released upstream %s %s", *key)

    async def on_state(self, state: str, detail: str) -> None:
        self.upstream_state = state
        self.broadcast_all({"tipo": "estado", "estado": state, "detalle": detail})

    async def on_candle(self, candle: Candle) -> None:
        sub = self.subscriptions.get((candle.symbol, candle.interval))
        if sub is None:
            return
        # "recibido": when the bridge got it from upstream (ms), for latency measurements.
        self.broadcast(sub, {"tipo": "vela", "symbol": candle.symbol,
                             "interval": candle.interval, "vela": candle_json(candle),
                             "recibido": round(time.time() * 1000, 1)})  # fmt: skip
        if not candle.closed:
            sub.current = candle
            return
        sub.current = None
        sub.history.append(candle)
        await asyncio.to_thread(self.db.candles.upsert_candles, [candle])
        await self._run_strategies(sub, candle)

    async def _run_strategies(self, sub: Subscription, candle: Candle) -> None:
        crossovers = []
        for strategy, live in sub.strategies:
            position = live.update(candle)
            before = sub.positions.get(strategy.name, 0.0)
            sub.positions[strategy.name] = position
            if position == before:
                continue
            self.broadcast(sub, {"tipo": "senal", "symbol": sub.symbol, "interval": sub.interval,
                                 "estrategia": strategy.name, "posicion": position,
                                 "anterior": before, "open_time": candle.open_time,
                                 "time": to_chart_seconds(candle.open_time),
                                 "precio": candle.close})  # fmt: skip
            if before != 0 and isinstance(strategy, SmaCruce):
                # The crossover itself, with both averages, from the recent closed candles.
                recent = _velas(sub.history)
                crossovers += [
                    c
                    for c in strategy.cruces(recent, sub.symbol, sub.interval)
                    if c.open_time == candle.open_time
                ]
        if crossovers:
            await asyncio.to_thread(self.db.crossovers.add, crossovers)

    # browser side ------------------------------------------------------------------------
    def broadcast(self, sub: Subscription, message: dict[str, Any]) -> None:
        self._send_all(sub.clients, message)

    def broadcast_all(self, message: dict[str, Any]) -> None:
        self._send_all(self.clients, message)

    def _send_all(self, clients: set[Client], message: dict[str, Any]) -> None:
        """Encode once and write to every client without awaiting any of them: a client whose
        send buffer is over its high-water mark (slow or stalled) is skipped for this message,
        so it catches up with the latest state and never slows the others."""
        start = time.perf_counter()
        broadcast([c.ws for c in clients], json.dumps(message, separators=(",", ":")))
        self.fanout_ms.append((time.perf_counter() - start) * 1000)
        self.messages_out += len(clients)

    def snapshot(self, sub: Subscription) -> dict[str, Any]:
        candles = [candle_json(c) for c in sub.history]
        if sub.current is not None:
            candles.append(candle_json(sub.current))
        return {"tipo": "snapshot", "symbol": sub.symbol, "interval": sub.interval,
                "velas": candles, "posiciones": sub.positions,
                "estado": self.upstream_state}  # fmt: skip

    def health(self) -> dict[str, Any]:
        uptime = max(1e-9, time.time() - self.started)
        return {
            "estado": "ok", "clientes": len(self.clients), "streams": len(self.subscriptions),
            "conexiones_upstream": len(self.upstreams), "upstream": self.upstream_state,
            "reconexiones": sum(c.stats.reconnects for c, _ in self.upstreams),
            "mensajes_por_s": round(self.messages_out / uptime, 2),
            "difusion_ms_p50": _percentile(self.fanout_ms, 50),
            "difusion_ms_p99": _percentile(self.fanout_ms, 99),
        }  # fmt: skip

    async def close(self) -> None:
        for client, task in self.upstreams:
            await client.close()
            await task
