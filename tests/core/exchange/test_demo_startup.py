"""Start-up time and memory of a fresh demo exchange process with all history reachable."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import json, time
started = time.perf_counter()
import requests
from core.exchange.demo import DemoExchangeThread
exchange = DemoExchangeThread().start()
requests.get(exchange.rest_url + "/fapi/v1/ping", timeout=5).raise_for_status()
startup = time.perf_counter() - started
klines = exchange.rest_url + "/fapi/v1/klines"
pages = [
    {"symbol": "BTCUSDT", "interval": "1m", "startTime": 1567296000000, "limit": 1500},
    {"symbol": "BTCUSDT", "interval": "1m", "limit": 1500},
]
pages += [{"symbol": s, "interval": "1M", "startTime": 0, "limit": 1500}
          for s in ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")]
rows = [len(requests.get(klines, params=p, timeout=30).json()) for p in pages]
exchange.stop()
# VmHWM is this process image's peak; ru_maxrss would include the forking pytest's own peak.
with open("/proc/self/status") as status:
    peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
print(json.dumps({"startup_s": startup, "peak_rss_mb": peak_mb, "rows": rows}))
"""


@pytest.mark.timeout(60)
def test_starts_fast_and_stays_small_with_all_history_reachable():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["startup_s"] < 2.0, figures
    assert figures["peak_rss_mb"] < 300, figures
    assert figures["rows"][:2] == [1500, 1500], figures
    assert all(rows >= 80 for rows in figures["rows"][2:]), figures  # every month since 2019
