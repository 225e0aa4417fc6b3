"""Bridge fan-out: delivery latency, upstream connections, CPU and memory per client.

Two scenarios against a demo exchange at 60x: 1,000 clients on one stream, and 50 streams with
20 clients each. The bridge runs in its own process (like `python -m wsbridge`); the clients run
here. Latency is from the bridge receiving an update from upstream to a client receiving it
(both clocks are this machine's). Target (issue #8): p99 < 50 ms at 1,000 clients.

    python benchmarks/bench_bridge.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.demo_process import demo_exchange_process  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT")
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def client(url: str, seconds: float, latencies: list[float], ready: asyncio.Event) -> None:
    async with connect(url, max_queue=None, compression=None) as ws:
        await ws.recv()  # snapshot
        ready.set()
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            received = time.time() * 1000
            # Slicing instead of json.loads keeps the client side from dominating the figure.
            at = raw.rfind('"recibido":')
            if at >= 0:
                latencies.append(received - float(raw[at + 11 : raw.index("}", at)]))


async def scenario(port: int, streams: list[tuple[str, str]], per_stream: int, seconds: float,
                   bridge: psutil.Process) -> None:  # fmt: skip
    latencies: list[float] = []
    rss_before = bridge.memory_info().rss
    tasks, events = [], []
    for symbol, interval in streams:
        for _ in range(per_stream):
            ready = asyncio.Event()
            url = f"ws://127.0.0.1:{port}/?symbol={symbol}&interval={interval}"
            tasks.append(asyncio.create_task(client(url, seconds, latencies, ready)))
            events.append(ready)
            await asyncio.sleep(0.002)
    await asyncio.gather(*(e.wait() for e in events))
    latencies.clear()  # measure the steady state only
    bridge.cpu_percent(None)
    await asyncio.sleep(seconds * 0.8)
    cpu = bridge.cpu_percent(None)
    rss_per_client = (bridge.memory_info().rss - rss_before) / len(tasks)
    health = json.loads(await asyncio.to_thread(
        lambda: __import__("urllib.request").request.urlopen(
            f"http://127.0.0.1:{port}/health").read()))  # fmt: skip
    await asyncio.gather(*tasks)
    values = np.array(latencies)
    print(
        f"{len(streams)} stream(s) x {per_stream} clients = {len(tasks)} clients: "
        f"{len(values):,} updates, latency p50 {np.percentile(values, 50):.1f} ms, "
        f"p99 {np.percentile(values, 99):.1f} ms, max {values.max():.1f} ms; upstream "
        f"connections {health['conexiones_upstream']}; fan-out of one message to all its "
        f"clients p50 {health['difusion_ms_p50']} ms, p99 {health['difusion_ms_p99']} ms; "
        f"bridge CPU {cpu:.0f}% of a core; RSS {rss_per_client / 1024:.0f} KB per client"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    streams = [(s, i) for s in SYMBOLS for i in INTERVALS][:50]
    with demo_exchange_process(speed=60) as (rest_url, ws_url, _):
        port = free_port()
        env = {
            **os.environ,
            "MARKET": "demo",
            "DEMO_PORT": rest_url.rsplit(":", 1)[1],
            "BRIDGE_PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": f"sqlite:///{ROOT / 'data' / 'bench_bridge.db'}",
        }
        bridge = subprocess.Popen([sys.executable, "-m", "wsbridge"], cwd=ROOT, env=env)
        try:
            time.sleep(2.5)
            process = psutil.Process(bridge.pid)
            asyncio.run(scenario(port, [("BTCUSDT", "1m")], 1000, args.seconds, process))
            asyncio.run(scenario(port, streams, 20, args.seconds, process))
        finally:
            bridge.terminate()
            bridge.wait(timeout=20)
            for suffix in ("", "-wal", "-shm"):
                (ROOT / "data" / f"bench_bridge.db{suffix}").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
