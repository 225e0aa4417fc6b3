"""Bot speed (issue #15): our own time per closed candle, and 20 bots on 20 streams in one host.

1. A paper bot's step (live signals → risk → broker), timed in process on demo candles: the
   time from a closed candle to the decision handed to the broker, p50/p99 (target p99 < 20 ms).
2. A BotHost with 20 paper bots on 20 streams (7 symbols x 1m/3m/5m…) fed by a demo exchange
   in its own process at 60x: candles stepped, CPU and peak memory of the host process.

    python benchmarks/bench_bot.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.demo_process import demo_exchange_process  # noqa: E402
from config.settings import settings_from_mapping  # noqa: E402
from core.bot import Bot, BotConfig  # noqa: E402
from core.broker.paper import PaperSimulator  # noqa: E402
from core.exchange.demo.market import DemoMarket  # noqa: E402
from core.exchange.demo.symbols import SYMBOLS  # noqa: E402
from core.exchange.demo.wire import exchange_info  # noqa: E402
from core.fills import Costs  # noqa: E402
from core.intervals import to_ms  # noqa: E402
from core.models import Bot as StoredBot  # noqa: E402
from core.models import Candle  # noqa: E402
from core.repository import Database  # noqa: E402
from core.rules import parse_rules  # noqa: E402
from core.signals import LiveSignals  # noqa: E402
from estrategias.factory import crear_estrategia  # noqa: E402
from wsbridge.bots import BotHost  # noqa: E402

MINUTE = 60_000


def percentiles(samples_ms: list[float]) -> str:
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
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    bench_step()
    bench_host(args.seconds)


if __name__ == "__main__":
    main()
