"""Manual smoke test: print live kline events from the configured market (not a pytest test).

    python websocket/test_ws_connection.py BTCUSDT 1m [seconds]

With MARKET=demo and no demo exchange running, start one first: `python run.py demo-exchange`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.settings import load_settings  # noqa: E402
from core.models import Candle  # noqa: E402
from websocket.client import KlineStreamClient  # noqa: E402


async def main(symbol: str, interval: str, seconds: float) -> None:
    settings = load_settings()

    async def show(candle: Candle) -> None:
        state = "CLOSED" if candle.closed else "open  "
        print(
            f"{state} {candle.symbol} {candle.interval} {candle.open_time} o={candle.open} "
            f"h={candle.high} l={candle.low} c={candle.close} v={candle.volume}",
            flush=True,
        )

    async def state(name: str, detail: str) -> None:
        print(f"[{name}] {detail}", flush=True)

    client = KlineStreamClient(settings.binance_ws_url, settings.binance_rest_url, show, state)
    await client.subscribe(symbol, interval)
    task = asyncio.create_task(client.run())
    await asyncio.sleep(seconds)
    await client.close()
    await task


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            args[0] if args else "BTCUSDT",
            args[1] if len(args) > 1 else "1m",
            float(args[2]) if len(args) > 2 else 30.0,
        )
    )
