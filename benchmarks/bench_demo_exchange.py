"""Demo exchange speed: 1500-candle klines pages over HTTP, and 500 stream subscribers at 60x.

Targets (issue #4, 2-core machine): a 1500-candle 1m page served in < 20 ms median; 500
WebSocket subscribers of one stream at 60x speed served without anyone falling behind.
The exchange runs in its own process, as `run.py demo-exchange` would; times are measured by
the client, so they include HTTP and JSON parsing on both sides.

    python benchmarks/bench_demo_exchange.py [--requests 200] [--clients 500] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import requests
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.demo_process import demo_exchange_process  # noqa: E402

SPEED = 60.0
LISTED = 1_567_296_000_000  # 2019-09-01, the main symbols' listing


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms   (n={len(ordered)})"


def timed_get(session: requests.Session, url: str, params: dict) -> tuple[float, int]:
    start = time.perf_counter()
    response = session.get(url, params=params, timeout=30)
    rows = len(response.json())
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200 and rows, response.text[:200]
    return elapsed, rows


def bench_rest(rest_url: str, count: int) -> None:
    session = requests.Session()
    url = rest_url + "/fapi/v1/klines"
    latest = {"symbol": "BTCUSDT", "interval": "1m", "limit": 1500}
    for _ in range(5):
        timed_get(session, url, latest)
    print("REST GET /fapi/v1/klines, 1500 candles per page")
    times = [timed_get(session, url, latest)[0] for _ in range(count)]
    print(f"  1m latest page (cached days)     {percentiles(times)}")
    now = session.get(rest_url + "/fapi/v1/time", timeout=5).json()["serverTime"]
    rng = random.Random(1)
    times = []
    for _ in range(count):
        start = rng.randrange(LISTED, now - 2 * 86_400_000, 60_000)
        times.append(timed_get(session, url, {**latest, "startTime": start})[0])
    print(f"  1m random page since 2019 (cold) {percentiles(times)}")
    for interval in ("1d", "1M"):
        page = {"symbol": "ETHUSDT", "interval": interval, "limit": 1500}
        cold, rows = timed_get(session, url, page)
        times = [timed_get(session, url, page)[0] for _ in range(count)]
        print(f"  {interval} full history: first (cold) {cold:7.1f} ms for {rows} candles")
        print(f"  {interval} full history (warm)        {percentiles(times)}")


class Subscriber:
    """One stream client: counts events and finals, and measures lag behind the event time E."""

    def __init__(self) -> None:
        self.events = 0
        self.finals: list[int] = []
        self.max_lag_ms = 0.0
        self.lags: list[float] = []
        self.error: str | None = None

    async def listen(self, url: str, clock: tuple[int, float], until: float) -> None:
        demo_at, wall_at = clock
        try:
            async with connect(url, max_queue=None, compression=None) as ws:
                while (left := until - time.time()) > 0:
                    try:
                        text = await asyncio.wait_for(ws.recv(), left)
                    except TimeoutError:
                        break
                    received = demo_at + (time.time() - wall_at) * 1000 * SPEED
                    event = json.loads(text)
                    lag = (received - event["E"]) / SPEED
                    self.events += 1
                    self.lags.append(lag)
                    self.max_lag_ms = max(self.max_lag_ms, lag)
                    if event["k"]["x"]:
                        self.finals.append(event["k"]["t"])
        except Exception as error:  # reported in the summary, not fatal to the benchmark
            self.error = f"{type(error).__name__}: {error}"


def demo_clock(rest_url: str) -> tuple[int, float]:
    """(demo ms, wall s) of one instant, from the server's clock and the request's midpoint."""
    before = time.time()
    server_time = requests.get(rest_url + "/fapi/v1/time", timeout=5).json()["serverTime"]
    return server_time, (before + time.time()) / 2


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_streams(rest_url: str, ws_url: str, clients: int, seconds: float, pid: int):
    url = ws_url + "/market/ws/btcusdt@kline_1m"
    subscribers = [Subscriber() for _ in range(clients)]
    clock = demo_clock(rest_url)
    connect_until = time.time() + 30 + seconds
    tasks = []
    for i, subscriber in enumerate(subscribers):
        tasks.append(asyncio.ensure_future(subscriber.listen(url, clock, connect_until)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # connect in waves, as a crowd of browsers would
    await asyncio.sleep(1.0)
    for subscriber in subscribers:  # measure only the steady state after everyone joined
        subscriber.events, subscriber.finals, subscriber.lags = 0, [], []
        subscriber.max_lag_ms = 0.0
    cpu_before, wall_before = cpu_seconds(pid), time.time()
    await asyncio.sleep(seconds)
    cpu = (cpu_seconds(pid) - cpu_before) / (time.time() - wall_before)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    report_streams(subscribers, seconds, cpu)


def report_streams(subscribers: list[Subscriber], seconds: float, cpu: float) -> None:
    counts = [s.events for s in subscribers]
    finals = [len(s.finals) for s in subscribers]
    lags = sorted(lag for s in subscribers for lag in s.lags)
    steps = [b - a for s in subscribers for a, b in zip(s.finals, s.finals[1:], strict=False)]
    gaps = sum(1 for step in steps if step != 60_000)
    errors = [s.error for s in subscribers if s.error]
    expected = int(seconds * SPEED / 60)
    behind = [
        s for s in subscribers if s.error or s.max_lag_ms > 1000 or len(s.finals) < expected - 1
    ]
    print(
        f"WebSocket: {len(subscribers)} subscribers of btcusdt@kline_1m, {SPEED:g}x, {seconds:g} s"
    )
    median = statistics.median(counts)
    print(f"  events per client   min {min(counts)}  median {median:g}  max {max(counts)}")
    print(f"  finals per client   min {min(finals)}  max {max(finals)}  (expected ~{expected})")
    if lags:
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        median_lag = statistics.median(lags)
        worst = lags[-1]
        print(
            f"  lag behind E (real) median {median_lag:.1f} ms  p99 {p99:.1f}  max {worst:.1f} ms"
        )
    print(f"  gaps between finals {gaps}   errors {len(errors)}   server CPU {cpu:.0%} of a core")
    print(f"  fell behind (lag > 1 s, missed finals or dropped): {len(behind)}")
    for error in sorted(set(errors))[:5]:
        print(f"    {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with demo_exchange_process(SPEED) as (rest_url, ws_url, pid):
        bench_rest(rest_url, args.requests)
        asyncio.run(bench_streams(rest_url, ws_url, args.clients, args.seconds, pid))


if __name__ == "__main__":
    main()
