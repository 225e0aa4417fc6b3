"""POST /backtest is bounded: worker slots (503 beyond them), a download cap (422), and the web
process keeps answering /health quickly while backtests run — against a real `python run.py`."""

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

import psutil

from tests.conftest import running_kryptelion

DAY_MS = 86_400_000
START = 1_704_067_200_000  # 2024-01-01


def _post(url: str, body: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return reply.status, json.loads(reply.read()), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def _backtest(symbol: str, days: int) -> dict:
    return {
        "symbol": symbol, "interval": "1m", "strategy": "sma_cruce", "capital": 1000,
        "start_date": START, "end_date": START + days * DAY_MS,
    }  # fmt: skip


def _health_latencies(base: str, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        with urllib.request.urlopen(f"{base}/health", timeout=10) as reply:
            assert reply.status == 200
        out.append(time.perf_counter() - began)
        stop.wait(0.02)


def test_slots_download_cap_and_a_responsive_health(tmp_path):
    env = {"BACKTEST_WORKERS": "2", "BACKTEST_MAX_DOWNLOAD": "100000"}
    with running_kryptelion(tmp_path, env) as running:
        base = f"http://127.0.0.1:{running.ports['WEB_PORT']}"
        too_big = _post(f"{base}/backtest", _backtest("BTCUSDT", 70))  # 100,800 candles
        assert too_big[0] == 422 and "python run.py update" in too_big[1]["error"]
        assert "--symbols BTCUSDT --intervals 1m" in too_big[1]["detalle"]["comando"]

        latencies: list[float] = []
        stop = threading.Event()
        poller = threading.Thread(target=_health_latencies, args=(base, stop, latencies))
        poller.start()
        symbols = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
        together = threading.Barrier(len(symbols))
        results: dict[str, tuple[int, dict, dict]] = {}

        def run(symbol: str) -> None:
            together.wait()
            results[symbol] = _post(f"{base}/backtest", _backtest(symbol, 60))

        threads = [threading.Thread(target=run, args=(s,)) for s in symbols]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        stop.set()
        poller.join()

    # Two workers: two of the four simultaneous requests run, the other two are refused at once.
    statuses = sorted(code for code, _, _ in results.values())
    assert statuses == [201, 201, 503, 503], results
    for code, body, headers in results.values():
        if code == 503:
            assert headers["Retry-After"].isdigit() and "busy" in body["error"]
        else:
            assert body["rango"]["inicio"] == START and body["metricas"]["trades"] > 0
    assert len(latencies) > 10
    # Responsive means the usual answer is fast and none is stuck behind a backtest; one
    # scheduler hiccup on a shared 2-core machine (CI, or other jobs beside it) is not that.
    ordered = sorted(latencies)
    typical = ordered[int(len(ordered) * 0.9)]
    assert typical < 0.1, f"/health p90 {typical * 1000:.0f} ms during backtests"
    assert ordered[-1] < 0.5, f"/health took {ordered[-1] * 1000:.0f} ms during backtests"


def test_backtest_workers_exit_when_the_web_process_is_killed(tmp_path):
    with running_kryptelion(tmp_path, {"BACKTEST_WORKERS": "2"}) as running:
        base = f"http://127.0.0.1:{running.ports['WEB_PORT']}"
        assert _post(f"{base}/backtest", _backtest("BTCUSDT", 2))[0] == 201
        workers = psutil.Process(running.pid).children(recursive=True)
        assert any("multiprocessing" in " ".join(w.cmdline()) for w in workers), workers
        os.kill(running.pid, signal.SIGKILL)
        gone, alive = psutil.wait_procs(workers, timeout=20)
        assert not alive, f"orphaned backtest workers: {alive}"
