"""Manual smoke test: print live kline events from the configured market (not a pytest test).

    python websocket/test_ws_connection.py [SYMBOL [INTERVAL [SECONDS]]]   # BTCUSDT 1m 30

With MARKET=demo (the default) and no demo exchange on DEMO_HOST:DEMO_PORT, it starts one in this
process first, as every entry point does. Ctrl-C or SIGTERM stops it cleanly before SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.settings import load_settings  # noqa: E402
from core.exchange.demo import ensure_demo_exchange  # noqa: E402
from core.models import Candle  # noqa: E402
from websocket.client import KlineStreamClient  # noqa: E402


async def main(symbol: str, interval: str, seconds: float) -> None:
    settings = load_settings()
    ensure_demo_exchange(settings)

    async def show(candle: Candle) -> None:
        state = "CLOSED" if candle.closed else "open  "
        print(
            f"{state} {candle.symbol} {candle.interval} {candle.open_time} o={candle.open} "
            f"h={candle.high} l={candle.low} c={candle.close} v={candle.volume}",
            flush=True,
        )

    async def state(name: str, detail: str) -> None:
        # The client retries forever; say where it is trying, so an unreachable market shows.
        hint = f" — is {settings.binance_ws_url} (MARKET={settings.market}) reachable?"
        print(f"[{name}] {detail}{hint if name == 'reconectando' else ''}", flush=True)

    client = KlineStreamClient(settings.binance_ws_url, settings.binance_rest_url, show, state)
    await client.subscribe(symbol, interval)
    task = asyncio.create_task(client.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
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
