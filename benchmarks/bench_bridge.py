"""Bridge fan-out: delivery latency, upstream connections, CPU and memory per client.

Two scenarios against a demo exchange at 60x: 1,000 clients on one stream, and 50 streams with
20 clients each. The bridge runs in its own process (like `python -m wsbridge`); the clients run
here, as raw sockets (see RawClient). Latency is from the bridge receiving an update from
upstream to a client receiving it (both clocks are this machine's).
Target (issue #8): p99 < 50 ms at 1,000 clients.

    python benchmarks/bench_bridge.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.demo_process import demo_exchange_process, free_port  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT")
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h")


class RawClient(asyncio.Protocol):
    """A minimal WebSocket client: handshake, then scan unmasked server frames for "recibido".

    A full Python WebSocket client costs ~30 us of frame handling per message, so 1,000 of them in
    one process measured the benchmark, not the bridge. This one only reads bytes: server frames
    are unmasked and uncompressed (no extension is offered), so the timestamp is found in place.
    Pings are answered so the bridge keeps the connection.
    """

    def __init__(self, host: str, path: str, latencies: list[float], ready: asyncio.Event) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: "
            f"{base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.latencies, self.ready = latencies, ready
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        received = time.time() * 1000
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(bytes(self.buffer[:200]).decode(errors="replace"))
            del self.buffer[: end + 4]
            self.upgraded = True
        self._frames(received)

    def _frames(self, received: float) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, offset = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, offset = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode == 0x9:
                self._send(0xA, payload)
            elif not self.ready.is_set():
                self.ready.set()  # the first frame is the snapshot
            else:
                at = payload.rfind(b'"recibido":')
                if at >= 0:
                    sent = float(payload[at + 11 : payload.index(b"}", at)])
                    self.latencies.append(received - sent)

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None and len(payload) < 126
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        if self.transport is not None:
            self._send(0x8, struct.pack("!H", 1000))
            self.transport.close()


async def scenario(port: int, streams: list[tuple[str, str]], per_stream: int, seconds: float,
                   bridge: psutil.Process) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    rss_before = bridge.memory_info().rss
    clients, events = [], []
    for symbol, interval in streams:
        for _ in range(per_stream):
            ready = asyncio.Event()
            path = f"/?symbol={symbol}&interval={interval}"
            _, protocol = await loop.create_connection(
                lambda p=path, r=ready: RawClient(f"127.0.0.1:{port}", p, latencies, r),
                "127.0.0.1", port)  # fmt: skip
            clients.append(protocol)
            events.append(ready)
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 120)
    await asyncio.sleep(1.0)
    latencies.clear()  # measure the steady state only
    bridge.cpu_percent(None)
    await asyncio.sleep(seconds)
    cpu = bridge.cpu_percent(None)
    rss_per_client = (bridge.memory_info().rss - rss_before) / len(clients)
    values = np.array(latencies)
    health = json.loads(await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/health").read()))  # fmt: skip
    for protocol in clients:
        protocol.close()
    await asyncio.sleep(0.5)
    print(
        f"{len(streams)} stream(s) x {per_stream} clients = {len(clients)} clients: "
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
