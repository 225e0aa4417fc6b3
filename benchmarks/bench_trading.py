"""Trading round trips against the demo exchange (issue #14), through Kryptelion's own stack.

The exchange runs in its own process, as `run.py demo-exchange` would. Orders go through
`TradingClient` (signing, rate budget, at-most-once submission) and fills come back through
`UserStream`, so the figures are what the bot will see:

- submit → ack: `place_order` of a MARKET order until its answer, p50/p99;
- submit → fill: from sending until the ORDER_TRADE_UPDATE `TRADE` event arrives, p50/p99;
- sustained: 300 orders in 10 s (Binance's per-account limit), evenly paced, counting errors.

    python benchmarks/bench_trading.py [--orders 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.demo_process import demo_exchange_process  # noqa: E402
from config.settings import DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET  # noqa: E402
from core.errors import ExchangeError  # noqa: E402
from core.exchange.limits import ORDERS_10S  # noqa: E402
from core.exchange.order_requests import OrderRequest, client_order_id  # noqa: E402
from core.exchange.trading import TradingClient  # noqa: E402
from core.exchange.trading_types import AccountSnapshot, ExecutionType  # noqa: E402
from core.exchange.user_events import OrderUpdate  # noqa: E402
from core.models import OrderType, Side  # noqa: E402
from websocket.user_stream import UserStream  # noqa: E402

QUANTITY = Decimal("0.002")  # ~200 USDT of BTC: above the 100 USDT minimum notional
WINDOW_S = 10.0


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.2f} ms   p99 {p99:6.2f} ms   (n={len(ordered)})"


def market(run: str, i: int) -> OrderRequest:
    """Alternate buys and sells so the position stays flat."""
    side = Side.BUY if i % 2 == 0 else Side.SELL
    return OrderRequest("BTCUSDT", side, OrderType.MARKET, QUANTITY, client_order_id(run, i))


async def round_trips(client: TradingClient, ws_url: str, count: int) -> None:
    loop = asyncio.get_running_loop()
    fills: dict[str, asyncio.Future[float]] = {}
    ready = asyncio.Event()

    async def on_event(item: object) -> None:
        if isinstance(item, AccountSnapshot):
            ready.set()
        elif isinstance(item, OrderUpdate) and item.execution_type is ExecutionType.TRADE:
            waiting = fills.get(item.client_order_id)
            if waiting is not None and not waiting.done():
                waiting.set_result(time.perf_counter())

    stream = UserStream(client, ws_url, on_event)
    task = asyncio.ensure_future(stream.run())
    await asyncio.wait_for(ready.wait(), 10)
    acks, filled = [], []
    for i in range(count + 10):
        request = market("rt", i)
        fills[request.client_order_id] = loop.create_future()
        start = time.perf_counter()
        await asyncio.to_thread(client.place_order, request)
        acked = time.perf_counter()
        done = await asyncio.wait_for(fills[request.client_order_id], 5)
        if i >= 10:  # the first ten warm up connections and caches
            acks.append((acked - start) * 1000)
            filled.append((done - start) * 1000)
    await stream.close()
    await asyncio.wait_for(task, 10)
    print("order round trip, MARKET BTCUSDT through TradingClient + UserStream")
    print(f"  submit -> ack                     {percentiles(acks)}")
    print(f"  submit -> ORDER_TRADE_UPDATE fill {percentiles(filled)}")


def sustained(client: TradingClient) -> None:
    """ORDERS_10S orders evenly spread over one 10 s window; every one must be accepted."""
    errors: list[str] = []
    spacing = WINDOW_S / ORDERS_10S
    start = time.perf_counter()
    for i in range(ORDERS_10S):
        due = start + i * spacing
        time.sleep(max(0.0, due - time.perf_counter()))
        try:
            client.place_order(market("sus", i))
        except ExchangeError as error:
            errors.append(f"{type(error).__name__}: {error}")
    elapsed = time.perf_counter() - start
    print(f"sustained: {ORDERS_10S} orders in {elapsed:.2f} s, {len(errors)} errors, "
          f"client-side waits {client.orders.waited_s:.2f} s")  # fmt: skip
    for line in errors[:5]:
        print("   ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    args = parser.parse_args()
    with demo_exchange_process(1.0) as (rest_url, ws_url, _pid):
        client = TradingClient(
            rest_url, DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET, sync_clock=False
        )
        sustained(client)
        time.sleep(WINDOW_S + 0.5)  # let the 10 s window empty before measuring latency
        asyncio.run(round_trips(client, ws_url, args.orders))


if __name__ == "__main__":
    main()
