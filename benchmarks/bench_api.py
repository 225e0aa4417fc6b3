"""REST API speed against a real waitress server (`run.py web`) and a demo exchange process.

Targets (issue #7): POST /backtest over one year of 1m candles already stored in SQLite, end to
end, under 1.5 s; GET /velas with 10,000 candles under 100 ms; requests/s of GET /ordenes with 20
concurrent clients.

    python benchmarks/bench_api.py
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.demo_process import demo_exchange_process  # noqa: E402
from data.updater import obtener_datos_historicos  # noqa: E402

YEAR = {"start_date": "2024-01-01", "end_date": "2024-12-31"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(function, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


def hammer(url: str, clients: int, seconds: float) -> float:
    """Requests per second of `clients` threads each looping GET `url` for `seconds`."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            assert session.get(url, timeout=10).status_code == 200
            done[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def main() -> int:
    with tempfile.TemporaryDirectory() as folder, demo_exchange_process() as (rest, _, _):
        db_path = Path(folder) / "datos_historicos.db"
        obtener_datos_historicos(
            ["BTCUSDT"], ["1m"], db_path, "2024-01-01", "2025-01-01", rest_url=rest
        )
        port = free_port()
        env = {
            **os.environ,
            "DATA_DIR": folder,
            "WEB_PORT": str(port),
            "DEMO_PORT": rest.rsplit(":", 1)[1],
            "LOG_LEVEL": "WARNING",
        }
        web = subprocess.Popen(
            [sys.executable, "run.py", "web"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    requests.get(base + "/health", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            session = requests.Session()
            body = {
                "symbol": "BTCUSDT",
                "interval": "1m",
                "strategy": "sma_cruce",
                "capital": 1000,
                **YEAR,
            }
            first = session.post(base + "/backtest", json=body, timeout=60).json()
            backtest = timed(lambda: session.post(base + "/backtest", json=body, timeout=60), 5)
            print(
                f"POST /backtest, one year of stored 1m candles ({first['metricas']['trades']:,}"
                f" trades): median {statistics.median(backtest):.0f} ms, "
                f"best {min(backtest):.0f} ms (target < 1500 ms)"
            )
            velas = base + "/velas?symbol=BTCUSDT&interval=1m&start=2024-03-01&limit=10000"
            assert len(session.get(velas, timeout=10).json()["velas"]) == 10_000
            times = timed(lambda: session.get(velas, timeout=10), 20)
            print(
                f"GET /velas, 10,000 candles: median {statistics.median(times):.1f} ms, "
                f"best {min(times):.1f} ms (target < 100 ms)"
            )
            order = {"symbol": "BTCUSDT", "lado": "compra", "precio": 29500.5, "cantidad": 0.01}
            for _ in range(50):
                session.post(base + "/ordenes", json=order, timeout=10)
            rate = hammer(base + "/ordenes?limit=20", clients=20, seconds=5)
            print(f"GET /ordenes (20 of 50 orders), 20 concurrent clients: {rate:,.0f} requests/s")
        finally:
            web.terminate()
            web.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
