"""Dashboard in headless Chromium: first paint with 10,000 candles, and the cost of live updates.

A real `python run.py` (demo exchange at 1x, so the bridge sends the demo's 4 updates a second,
web app, bridge) on free ports and Debian's Chromium through Playwright.

- First paint: from navigation start to the frame after the 10,000 candles (and the default SMA)
  were handed to the chart (`?velas=10000`, candles already stored). Target (issue #9): < 1 s.
- Live update: the time the page spends on each `vela` message (store, chart bar, every overlay
  recomputed over 10,000 closes and its last point updated) with SMA, EMA, Bollinger, RSI and
  MACD all on, at 4 updates/s.

    python benchmarks/bench_ui.py [--runs 5] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.demo_process import free_port  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ENTRY = "performance.getEntriesByName"
ALL_OVERLAYS = {
    "sma": {"on": True, "params": {"period": 20}},
    "ema": {"on": True, "params": {"period": 50}},
    "bollinger": {"on": True, "params": {"period": 20, "k": 2}},
    "rsi": {"on": True, "params": {"period": 14}},
    "macd": {"on": True, "params": {"fast": 12, "slow": 26, "signal": 9}},
}


def wait_for(url: str, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:
                return reply.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def first_paint(browser, web: str, runs: int) -> None:
    painted, fcp = [], []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{web}/?velas=10000")
        page.wait_for_function(f"() => {ENTRY}('kryptelion:velas-pintadas').length", timeout=30_000)
        bars = page.evaluate("() => window.kryptelion.grafico.velas.data().length")
        assert bars >= 10_000, bars
        painted.append(page.evaluate(f"() => {ENTRY}('kryptelion:velas-pintadas')[0].startTime"))
        fcp.append(page.evaluate(f"() => {ENTRY}('first-contentful-paint')[0].startTime"))
        context.close()
    print(
        f"first paint with {bars:,} candles: median {statistics.median(painted):.0f} ms "
        f"(min {min(painted):.0f}, max {max(painted):.0f}; {runs} fresh pages); "
        f"first contentful paint median {statistics.median(fcp):.0f} ms"
    )


def live_updates(browser, web: str, seconds: float) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(
        f"localStorage.setItem('kryptelion.sesion', JSON.stringify({{overlays: "
        f"{json.dumps(ALL_OVERLAYS)}}}))"
    )
    page = context.new_page()
    page.goto(f"{web}/?velas=10000")
    page.wait_for_function("() => window.kryptelion.overlays.activas.size === 5", timeout=30_000)
    page.wait_for_function("() => window.kryptelion.stats.updates > 3", timeout=30_000)
    page.evaluate("() => { window.kryptelion.stats.updateMs.length = 0; }")
    start = page.evaluate("() => window.kryptelion.stats.updates")
    time.sleep(seconds)
    costs = sorted(page.evaluate("() => window.kryptelion.stats.updateMs"))
    count = page.evaluate("() => window.kryptelion.stats.updates") - start
    candles = page.evaluate("() => window.kryptelion.state.serie.length")
    context.close()
    p95 = costs[int(0.95 * (len(costs) - 1))]
    print(
        f"live updates with 5 overlays on {candles:,} candles: {count / seconds:.1f} updates/s, "
        f"{statistics.mean(costs):.2f} ms per update on average (median "
        f"{statistics.median(costs):.2f}, p95 {p95:.2f}, max {costs[-1]:.2f}); "
        f"{statistics.mean(costs) * count / seconds / 10:.2f} % of the main thread"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    ports = {name: free_port() for name in ("DEMO_PORT", "WEB_PORT", "BRIDGE_PORT")}
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "DATA_DIR": data_dir, "LOG_LEVEL": "WARNING", "DEMO_SPEED": "1",
               **{name: str(port) for name, port in ports.items()}}  # fmt: skip
        server = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, env=env)
        web = f"http://127.0.0.1:{ports['WEB_PORT']}"
        try:
            wait_for(f"{web}/health")
            # Store the candles first: the figure is reading and drawing, not downloading.
            wait_for(f"{web}/velas?symbol=BTCUSDT&interval=1m&limit=10000")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                    args=CHROMIUM_ARGS,
                )
                first_paint(browser, web, args.runs)
                live_updates(browser, web, args.seconds)
                browser.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
