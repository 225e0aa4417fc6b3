"""Bot speed (issue #15): our own time per closed candle, an exchange bot's candle → order →
fill, and 20 bots on 20 streams in one host.

1. A paper bot's step (live signals → risk → broker), timed in process on demo candles: the
   time from a closed candle to the decision handed to the broker, p50/p99 (target p99 < 20 ms).
2. An exchange bot (core.bot.Bot on an ExchangeBroker, wired as wsbridge's host wires it:
   ExchangeAccount, its user stream, OrderIntents in SQLite) on a demo exchange in its own
   process at 120x, its decisions alternating long / short / flat so every candle trades:
   candle → order sent (all of it, and our own part), → fill booked over REST, → the FILLED
   event at the user-stream consumer, and the whole step, split into HTTP calls and ours.
3. A BotHost with 20 paper bots on 20 streams (7 symbols x 1m/3m/5m…) fed by a demo exchange
   in its own process at 60x: candles stepped, CPU and peak memory of the host process.

    python benchmarks/bench_bot.py [--seconds 30] [--steps 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.demo_process import demo_exchange_process  # noqa: E402
from config.settings import settings_from_mapping  # noqa: E402
from core.bot import Bot, BotConfig  # noqa: E402
from core.broker.paper import PaperSimulator  # noqa: E402
from core.exchange.demo.market import DemoMarket  # noqa: E402
from core.exchange.demo.symbols import SYMBOLS  # noqa: E402
from core.exchange.demo.wire import exchange_info  # noqa: E402
from core.exchange.klines import frame_candles, klines_to_frame  # noqa: E402
from core.exchange.order_requests import OrderRequest  # noqa: E402
from core.exchange.rest import BinanceRest  # noqa: E402
from core.exchange.trading import TradingClient  # noqa: E402
from core.exchange.trading_types import ExchangeOrder, Fill  # noqa: E402
from core.exchange.user_events import OrderUpdate  # noqa: E402
from core.fills import Costs  # noqa: E402
from core.intervals import to_ms  # noqa: E402
from core.models import Bot as StoredBot  # noqa: E402
from core.models import BotMode, Candle, OrderState  # noqa: E402
from core.repository import Database  # noqa: E402
from core.rules import parse_rules  # noqa: E402
from core.signals import LiveSignals  # noqa: E402
from estrategias.factory import crear_estrategia  # noqa: E402
from websocket.client import KlineStreamClient  # noqa: E402
from wsbridge.bots import BotHost, DbRecorder, MarketClock, RunningBot, bot_config  # noqa: E402
from wsbridge.exchange_bots import ExchangeAccount  # noqa: E402

MINUTE = 60_000


def percentiles(samples_ms: list[float]) -> str:
    if not samples_ms:
        return "no samples"
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.3f} ms   p99 {p99:6.3f} ms   (n={len(ordered)})"


def demo_candles(count: int) -> list[Candle]:
    market = DemoMarket(42)
    start = to_ms("2026-05-04")
    batch = market.klines("BTCUSDT", "1m", start + (count + 1) * MINUTE, start, None, count)
    scale, steps = 10.0**batch.spec.price_decimals, 10.0**batch.spec.qty_decimals
    return [
        Candle("BTCUSDT", "1m", int(t), *(v[:4] / scale), v[4] / steps)
        for t, v in zip(batch.open_times, batch.values, strict=True)
    ]


def bench_step() -> None:
    """Time Bot.on_candle itself: our own time between a closed candle and the broker."""
    candles = demo_candles(6_000)
    info = exchange_info(SYMBOLS.values(), candles[0].open_time, None)
    rules = parse_rules(json.loads(info))["BTCUSDT"]
    config = BotConfig("bench", "BTCUSDT", "1m", "sma_cruce", 10_000, Costs(leverage=3),
                       stop_loss=0.01, take_profit="2atr")  # fmt: skip
    signals = LiveSignals("BTCUSDT", "1m", [crear_estrategia("sma_cruce", rapida=9, lenta=21)])
    broker = PaperSimulator(config.capital, config.costs, config.stop_fraction, None)
    now = {"ms": 0}
    from indicadores import atr

    bot = Bot(config, signals, broker, rules, lambda: now["ms"],
              atr=lambda h, lo, c: atr(h, lo, c, 14))  # fmt: skip
    bot.start(candles[:5_000])
    times, refused = [], 0
    for candle in candles[5_000:]:
        now["ms"] = candle.open_time + MINUTE
        started = time.perf_counter()
        refused += bot.on_candle(candle).refusal is not None
        times.append((time.perf_counter() - started) * 1000)
    print("paper bot step (signals, risk, ATR stops, broker), 5,000 candles of history")
    print(f"  closed candle -> decision at the broker  {percentiles(times)}")
    print(f"  trades: {len(broker.closed)}, entries refused: {refused}")


EXCHANGE_SPEED = 120.0  # a 1m candle every half second; a step takes well under that
CYCLE = (1.0, -1.0, 0.0)  # long, short (a reversal: exit and entry), flat (an exit)


class Alternate:
    """A decider wanting long, short, flat, long… on consecutive candles: every step trades."""

    name, warmup = "alterna", 0

    def __init__(self) -> None:
        self._count = 0

    def live(self) -> Alternate:
        return self

    def update(self, candle: Candle) -> float:
        self._count += 1
        return CYCLE[self._count % len(CYCLE)]

    def events(self) -> Sequence[Any]:
        return ()


@dataclass
class StepTrace:
    """One exchange step, timed in the thread that runs it (perf_counter seconds)."""

    thread: int
    start: float
    cpu_start: float
    end: float = 0.0
    cpu_s: float = 0.0  # the thread's CPU time in the whole step
    http_s: float = 0.0  # inside HTTP calls: the exchange, the network and python-binance
    http_cpu_s: float = 0.0  # our CPU inside them (python-binance, requests)
    intents_s: float = 0.0  # storing and reading the order intents (SQLite)
    calls: int = 0
    sent: list[tuple[float, float, str]] = field(default_factory=list)  # at, HTTP before, id
    answered: list[float] = field(default_factory=list)  # place_order's round trip
    orders: dict[int, str] = field(default_factory=dict)  # exchange order id → client id
    booked: dict[int, float] = field(default_factory=dict)  # order id → its fills listed


class TimedClient(TradingClient):
    """The real trading client, noting for the traced thread when each order leaves, when its
    fills are listed and how long every HTTP call takes."""

    trace: StepTrace | None = None

    def _traced(self) -> StepTrace | None:
        trace = self.trace
        return trace if trace is not None and trace.thread == threading.get_ident() else None

    def _once(self, call, params):  # type: ignore[no-untyped-def]
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return super()._once(call, params)
        finally:
            if (trace := self._traced()) is not None:
                trace.http_s += time.perf_counter() - started
                trace.http_cpu_s += time.thread_time() - cpu
                trace.calls += 1

    def place_order(self, request: OrderRequest) -> ExchangeOrder:
        trace = self._traced()
        entered = time.perf_counter()
        if trace is not None:
            trace.sent.append((entered, trace.http_s, request.client_order_id))
        order = super().place_order(request)
        if trace is not None:
            trace.answered.append(time.perf_counter() - entered)
            trace.orders[order.order_id] = order.client_order_id
        return order

    def user_trades(self, symbol: str, **options: Any) -> list[Fill]:
        fills = super().user_trades(symbol, **options)
        trace, order_id = self._traced(), options.get("order_id")
        if trace is not None and fills and order_id is not None:
            trace.booked.setdefault(order_id, time.perf_counter())
        return fills


class TimedIntents:
    """The broker's OrderIntents, timing every call of the traced step."""

    def __init__(self, intents: Any, client: TimedClient) -> None:
        self._intents, self._client = intents, client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._intents, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                if (trace := self._client._traced()) is not None:
                    trace.intents_s += time.perf_counter() - started

        return timed


class TimedAccount(ExchangeAccount):
    """The host's account, noting when each order's FILLED event reaches the stream consumer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filled: dict[str, float] = {}
        self.seen: dict[str, float] = {}  # an order's first event (NEW)

    async def _on_item(self, item: Any) -> None:
        if isinstance(item, OrderUpdate):
            self.seen.setdefault(item.client_order_id, time.perf_counter())
            if item.state is OrderState.FILLED:
                self.filled.setdefault(item.client_order_id, time.perf_counter())
        await super()._on_item(item)


def exchange_bot(settings: Any, db: Database, account: TimedAccount) -> RunningBot:
    """A testnet bot on the demo account, built as wsbridge.bots.BotHost._build builds one."""
    stored = db.bots.create(
        StoredBot(name="bench-exchange", strategy="sma_cruce", symbol="BTCUSDT", interval="1m",
                  mode=BotMode.TESTNET, capital=1_000, leverage=2, size=0.5,
                  stop_loss="0.02", take_profit="0.04")
    )  # fmt: skip
    assert stored.id is not None
    config = replace(bot_config(stored, EXCHANGE_SPEED), strategy=Alternate.name)
    rest = BinanceRest(settings.binance_rest_url)
    rules = parse_rules(rest.exchange_info())[stored.symbol]
    broker = account.broker(db, stored, config, lambda: rules, lambda message: None)
    assert isinstance(account.client, TimedClient)
    broker.intents = TimedIntents(broker.intents, account.client)
    recorder = DbRecorder(db, stored.id, lambda message: None)
    clock = MarketClock(rest.server_time, EXCHANGE_SPEED)
    signals = LiveSignals(stored.symbol, stored.interval, [Alternate()])
    bot = Bot(config, signals, broker, rules, lambda: int(clock() * 1000), recorder)
    frame = klines_to_frame(rest.klines(stored.symbol, stored.interval, limit=50))
    closed = frame[frame["close_time"] < rest.server_time()].drop(columns="close_time")
    bot.start(frame_candles(closed, stored.symbol, stored.interval))  # reconciles first
    return RunningBot(stored, bot, broker, recorder)


def exchange_step(
    client: TimedClient, db: Database, running: RunningBot, candle: Candle
) -> StepTrace:
    """One closed candle as BotHost._step takes it (the step, then the broker's snapshot)."""
    trace = StepTrace(threading.get_ident(), time.perf_counter(), time.thread_time())
    client.trace = trace
    try:
        running.bot.on_candle(candle)
        assert running.stored.id is not None
        db.bots.save_broker_state(running.stored.id, running.snapshot())
    finally:
        trace.end, client.trace = time.perf_counter(), None
        trace.cpu_s = time.thread_time() - trace.cpu_start
    return trace


async def until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the demo exchange did not get there in time")
        await asyncio.sleep(0.02)


async def drive_exchange(
    settings: Any, db: Database, steps: int
) -> tuple[list[StepTrace], TimedAccount, list[float]]:
    """`steps` live closed candles through the bot; the traces, the account (its stream's
    arrivals) and each candle's delay from its close to its arrival (wall seconds)."""
    client = TimedClient(settings.binance_rest_url, settings.demo_api_key.reveal(),
                         settings.demo_api_secret.reveal(), sync_clock=False)  # fmt: skip
    account = TimedAccount(settings, client)
    running = await asyncio.to_thread(exchange_bot, settings, db, account)
    assert running.stored.id is not None
    account.follow(running.stored.id, running.broker)
    await until(lambda: account.stream.stats.snapshots >= 1)
    closed: asyncio.Queue[tuple[Candle, float]] = asyncio.Queue()

    async def on_candle(candle: Candle) -> None:
        if candle.closed:  # how late it arrives, in market ms
            closed.put_nowait((candle, running.bot.clock() - candle.open_time - MINUTE))

    stream = KlineStreamClient(settings.binance_ws_url, settings.binance_rest_url, on_candle)
    await stream.subscribe("BTCUSDT", "1m", after=running.bot.last_open_time)
    task = asyncio.ensure_future(stream.run())
    traces: list[StepTrace] = []
    delays: list[float] = []
    try:
        while len(traces) < steps:
            candle, late_ms = await asyncio.wait_for(closed.get(), 30)
            if candle.open_time <= (running.bot.last_open_time or 0):
                continue
            delays.append(late_ms / EXCHANGE_SPEED / 1000)
            traces.append(await asyncio.to_thread(exchange_step, client, db, running, candle))
        sent = {cid for trace in traces for cid in trace.orders.values()}
        await until(lambda: sent <= account.filled.keys())
        await asyncio.to_thread(running.broker.kill)
    finally:
        task.cancel()
        await stream.close()
        await asyncio.gather(task, return_exceptions=True)
        await account.close()
    return traces, account, delays


def ms(seconds: float) -> float:
    return seconds * 1000


def bench_exchange(steps: int) -> None:
    """An exchange bot on a demo exchange in its own process: candle → order → fill."""
    with demo_exchange_process(EXCHANGE_SPEED) as (rest_url, _ws, _pid):
        with tempfile.TemporaryDirectory() as d:
            port = rest_url.rsplit(":", 1)[1]
            settings = settings_from_mapping({"DATA_DIR": d, "DEMO_PORT": port,
                                              "TRADING_MODE": "testnet",
                                              "DEMO_SPEED": str(EXCHANGE_SPEED)})  # fmt: skip
            db = Database(Path(d) / "bench.db")
            try:
                traces, account, delays = asyncio.run(drive_exchange(settings, db, steps))
            finally:
                db.close()
    report_exchange(traces, account, delays)


def report_exchange(traces: list[StepTrace], account: TimedAccount, delays: list[float]) -> None:
    """Print section 2: every figure in ms of wall time, per step or per market order."""
    trading = [t for t in traces if t.sent]
    seen, filled = account.seen, account.filled
    to_stream = [seen[c] - at for t in traces for at, _, c in t.sent if c in seen]
    placed = [(t, cid) for t in traces for cid in t.orders.values()]
    own_cpu = [t.cpu_s - t.http_cpu_s for t in traces]
    rows = [
        ("candle close -> its push reaches the host", delays),
        ("candle -> order sent (first of the step)", [t.sent[0][0] - t.start for t in trading]),
        ("  of which our own time (no HTTP)", [t.sent[0][0] - t.start - t.sent[0][1]
                                               for t in trading]),  # fmt: skip
        ("order sent -> exchange's answer (NEW)", [a for t in traces for a in t.answered]),
        ("order sent -> NEW event at the consumer", to_stream),
        ("candle -> fill booked (REST userTrades)", [a - t.start for t in traces
                                                     for a in t.booked.values()]),  # fmt: skip
        ("candle -> FILLED event at the consumer", [filled[c] - t.start for t, c in placed]),
        ("  that is after the step's end", [filled[c] - t.end for t, c in placed]),
        ("whole step (on_candle + broker snapshot)", [t.end - t.start for t in traces]),
        ("  inside HTTP calls (exchange, network)", [t.http_s for t in traces]),
        ("  our own CPU outside HTTP calls", own_cpu),
        ("  in order intents (SQLite, wall time)", [t.intents_s for t in traces]),
        ("  waiting (fill polls' sleeps, locks)", [t.end - t.start - t.http_s - c
                                                   for t, c in zip(traces, own_cpu, strict=True)]),
    ]  # fmt: skip
    print(f"exchange bot: BTCUSDT 1m, long / short / flat in turn, demo at {EXCHANGE_SPEED:.0f}x")
    for label, seconds in rows:
        print(f"  {label:<42} {percentiles([ms(value) for value in seconds])}")
    calls = statistics.mean(t.calls for t in traces)
    print(f"  steps: {len(traces)}, market orders: {len(placed)}, HTTP calls a step: {calls:.1f}, "
          f"steps that sent nothing (flat while flat): {len(traces) - len(trading)}")  # fmt: skip


STREAMS = [(s, i) for i in ("1m", "3m", "5m") for s in SYMBOLS][:20]


def bench_host(seconds: float) -> None:
    """20 paper bots on 20 streams in one BotHost process, the exchange in another."""
    exchange = demo_exchange_process(60.0)
    with exchange as (rest_url, _ws_url, _pid), tempfile.TemporaryDirectory() as d:
        port = rest_url.rsplit(":", 1)[1]
        settings = settings_from_mapping({"DATA_DIR": d, "DEMO_PORT": port})
        db = Database(Path(d) / "bench.db")
        for k, (symbol, interval) in enumerate(STREAMS):
            db.bots.create(
                StoredBot(
                    name=f"b{k}",
                    strategy="sma_cruce",
                    symbol=symbol,
                    interval=interval,
                    params={"rapida": 5, "lenta": 20},
                    desired_running=True,
                )  # fmt: skip
            )
        host = BotHost(settings, db)

        async def run() -> tuple[float, float]:
            task = asyncio.ensure_future(host.run())
            while len(host.running) < len(STREAMS):
                await asyncio.sleep(0.1)
            cpu_start, wall_start = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu_start, time.monotonic() - wall_start
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return cpu, wall

        cpu, wall = asyncio.run(run())
        stepped = sum(
            (db.bots.load_broker_state(b.id) or {"bar": -1})["bar"] + 1 for b in db.bots.list()
        )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"bot host: {len(STREAMS)} paper bots on {len(STREAMS)} streams, demo at 60x")
        print(f"  candles stepped in {wall:.0f} s: {stepped}")
        print(f"  CPU {100 * cpu / wall:.1f} % of a core, peak memory {peak_mb:.0f} MB")
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="the host's run (section 3)")
    parser.add_argument("--steps", type=int, default=40, help="exchange bot candles (section 2)")
    args = parser.parse_args()
    bench_step()
    bench_exchange(args.steps)
    bench_host(args.seconds)


if __name__ == "__main__":
    main()
