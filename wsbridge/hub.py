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
from websockets.protocol import State

from config.settings import Settings
from core.errors import ExchangeError, KryptelionError
from core.exchange.klines import frame_candles, klines_to_frame
from core.exchange.limits import MAX_STREAMS
from core.exchange.rest import BinanceRest
from core.intervals import INTERVALS
from core.models import Candle
from core.repository import Database
from core.signals import LiveSignals, PositionChange
from estrategias.factory import crear_estrategia
from websocket.client import KlineStreamClient, stream_name

log = logging.getLogger(__name__)
SNAPSHOT_CANDLES = 500
SEND_LIMIT = 256 * 1024  # bytes queued for one browser before its updates are skipped
STALL_LIMIT_S = 30.0  # a browser behind for this long is dropped


def to_chart_seconds(ms: int) -> int:
    """Binance milliseconds become chart seconds here and nowhere else."""
    return ms // 1000


def _percentile(values: deque[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def candle_json(candle: Candle) -> dict[str, Any]:
    return {"open_time": candle.open_time, "time": to_chart_seconds(candle.open_time),
            "open": candle.open, "high": candle.high, "low": candle.low, "close": candle.close,
            "volume": candle.volume, "closed": candle.closed}  # fmt: skip


def signal_json(change: PositionChange) -> dict[str, Any]:
    signal = change.signal
    return {"tipo": "senal", "symbol": signal.symbol, "interval": signal.interval,
            "estrategia": signal.strategy, "posicion": signal.position,
            "anterior": change.previous, "open_time": signal.open_time,
            "time": to_chart_seconds(signal.open_time), "precio": signal.price}  # fmt: skip


@dataclass(eq=False)  # identity semantics: clients live in sets
class Client:
    """A browser connection and the streams it follows."""

    ws: ServerConnection
    streams: set[tuple[str, str]] = field(default_factory=set)
    behind_since: float | None = None  # monotonic time of the first skipped message
    skipped: int = 0
    missed_from: dict[tuple[str, str], int] = field(default_factory=dict)  # first missed candle


@dataclass
class Subscription:
    symbol: str
    interval: str
    clients: set[Client] = field(default_factory=set)
    history: deque[Candle] = field(default_factory=lambda: deque(maxlen=SNAPSHOT_CANDLES))
    current: Candle | None = None
    signals: LiveSignals | None = None  # the strategies, once warmed up
    release: asyncio.TimerHandle | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def positions(self) -> dict[str, float]:
        return self.signals.positions if self.signals is not None else {}


class Hub:
    """Owns upstream clients, subscriptions and browser clients; built once in main()."""

    def __init__(self, db: Database, ws_base: str, rest_url: str, strategies: list[str],
                 max_clients: int = 5000, grace_s: float = 30.0, send_limit: int = SEND_LIMIT,
                 stall_limit_s: float = STALL_LIMIT_S) -> None:  # fmt: skip
        self.db = db
        self.ws_base, self.rest_url = ws_base, rest_url
        self.strategy_names = strategies
        self.max_clients = max_clients
        self.grace_s = grace_s
        self.send_limit, self.stall_limit_s = send_limit, stall_limit_s
        self.skipped = self.dropped = 0
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

    def check_stream(self, symbol: str, interval: str) -> tuple[str, str] | None:
        """(field, why) when (symbol, interval) cannot be served, or None when it can."""
        if interval not in INTERVALS:
            return "interval", f"invalid interval {interval[:20]!r}; valid: {', '.join(INTERVALS)}"
        if symbol not in self.symbols:
            return "symbol", f"unknown symbol {symbol[:20]!r} on this market"
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
        strategies = [crear_estrategia(name) for name in self.strategy_names]
        signals = LiveSignals(sub.symbol, sub.interval, strategies)
        candles = frame_candles(frame, sub.symbol, sub.interval)
        signals.prime(candles)
        sub.history.extend(candles)
        sub.signals = signals
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
            if stream_name(*key) in client.streams:
                await client.unsubscribe(*key)  # batched with the other releases
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
        if sub.signals is None:  # candles flow only once the warm-up is done
            return
        decisions = sub.signals.on_closed(candle)
        for change in decisions.changes:
            self.broadcast(sub, signal_json(change))
        if decisions.crossovers:
            await asyncio.to_thread(self.db.crossovers.add, list(decisions.crossovers))

    # browser side ------------------------------------------------------------------------
    def broadcast(self, sub: Subscription, message: dict[str, Any]) -> None:
        self._send_all(sub.clients, message, sub)

    def broadcast_all(self, message: dict[str, Any]) -> None:
        self._send_all(self.clients, message)

    def _send_all(self, clients: set[Client], message: dict[str, Any],
                  sub: Subscription | None = None) -> None:  # fmt: skip
        """Encode once and write to every client without awaiting any of them.

        A client with more than `send_limit` bytes still queued (slow or stalled) is skipped, so
        its queue stays bounded and it never slows the others. Once it drains it gets the latest
        state of what it missed: the upstream state and, as `vela` updates, every candle of its
        streams from the first one it missed (a full snapshot would refill a slow link at once).
        A client behind for `stall_limit_s` is dropped (its browser reconnects to a snapshot).
        """
        start = time.perf_counter()
        now = time.monotonic()
        ready = []
        for client in clients:
            if client.ws.state is not State.OPEN:
                continue
            if client.ws.transport.get_write_buffer_size() > self.send_limit:
                self._fall_behind(client, now, sub, message)
                continue
            if client.behind_since is not None:
                self._catch_up(client)
            ready.append(client.ws)
        broadcast(ready, json.dumps(message, separators=(",", ":")))
        self.fanout_ms.append((time.perf_counter() - start) * 1000)
        self.messages_out += len(ready)

    def _fall_behind(
        self, client: Client, now: float, sub: Subscription | None, message: dict[str, Any]
    ) -> None:
        client.skipped += 1
        self.skipped += 1
        if sub is not None:
            # The earliest candle this client may lack: the skipped one itself (a closing update
            # can arrive after the next candle opened) or the stream's latest.
            latest = sub.current or (sub.history[-1] if sub.history else None)
            times = [latest.open_time if latest else 0]
            if message.get("tipo") == "vela":
                times.append(message["vela"]["open_time"])
            key = (sub.symbol, sub.interval)
            client.missed_from[key] = min(client.missed_from.get(key, min(times)), min(times))
        if client.behind_since is None:
            client.behind_since = now
        elif now - client.behind_since > self.stall_limit_s:
            log.warning("dropping a browser %.0f s behind (%d updates skipped)",
                        now - client.behind_since, client.skipped)  # fmt: skip
            self.dropped += 1
            client.ws.transport.abort()

    def _catch_up(self, client: Client) -> None:
        client.behind_since = None
        messages: list[dict[str, Any]] = [
            {"tipo": "estado", "estado": self.upstream_state, "detalle": "al día"}
        ]
        for key, first in client.missed_from.items():
            if key in client.streams and (sub := self.subscriptions.get(key)) is not None:
                candles = [c for c in sub.history if c.open_time >= first]
                if sub.current is not None:
                    candles.append(sub.current)
                messages += [{"tipo": "vela", "symbol": c.symbol, "interval": c.interval,
                              "vela": candle_json(c)} for c in candles]  # fmt: skip
        client.missed_from.clear()
        for message in messages:
            broadcast([client.ws], json.dumps(message, separators=(",", ":")))

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
            "clientes_rezagados": sum(c.behind_since is not None for c in self.clients),
            "mensajes_omitidos": self.skipped, "clientes_expulsados": self.dropped,
        }  # fmt: skip

    async def close(self) -> None:
        for client, task in self.upstreams:
            await client.close()
            await task
