"""The optimiser on Dask: a LocalCluster and a real scheduler with `dask worker` processes on
loopback give the one-process results, also when a worker is killed in the middle of a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pandas as pd
import pytest
from distributed import Client

from backtesting.optimizador import _Dask, optimizar
from tests.conftest import ROOT, free_port
from tests.estrategias.helpers import synthetic_velas
from tests.waiting import until

DASK = Path(sys.executable).parent / "dask"
WORKERS = 3
# Many chunks of slow-enough combinations, so that a worker killed after the first chunk still
# had work: 200k candles, 10 x 10 (5 refused).
BIG_SPACE = {"rapida": list(range(5, 55, 5)), "lenta": list(range(30, 330, 30))}
SMALL_SPACE = {"rapida": [5, 10, 20, 40], "lenta": [10, 20, 40, 80]}


def _valid(space: dict[str, list[int]]) -> set[tuple[int, int]]:
    return {(r, s) for r in space["rapida"] for s in space["lenta"] if r < s}


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=3)  # a worker whose scheduler left may linger: then it is killed
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def big_velas() -> pd.DataFrame:
    return synthetic_velas(200_000, seed=3)


@pytest.fixture(scope="module")
def scheduler() -> Iterator[dict[str, Any]]:
    """A `dask scheduler` and three single-threaded `dask worker` processes without nannies
    (so killing a worker's pid kills the worker itself), able to import Kryptelion."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    processes = [subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        **quiet,
    )]  # fmt: skip
    try:
        client = until(lambda: _connect(address), 60, "the dask scheduler to accept clients")
        for _ in range(WORKERS):
            processes.append(subprocess.Popen(
                [str(DASK), "worker", address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--death-timeout", "60"],
                **quiet,
            ))  # fmt: skip
        client.wait_for_workers(WORKERS, timeout=60)
        pids = client.run(os.getpid)
        assert sorted(pids.values()) == sorted(p.pid for p in processes[1:])
        yield {"address": address, "client": client, "workers": processes[1:], "pids": pids}
        client.close()
    finally:
        _stop(processes)


def _connect(address: str) -> Client | None:
    try:
        return Client(address, timeout="2s")
    except OSError:
        return None


def test_the_local_cluster_s_workers_run_without_dask_s_profiler() -> None:
    """Nobody reads the profiler without a dashboard; it would sample every sweep every 10 ms."""
    runner = _Dask(2, None)
    try:
        enabled = runner.client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
        assert len(enabled) == 2 and not any(enabled.values())
    finally:
        runner.close()
    assert dask.config.get("distributed.worker.profile.enabled")  # this process's is untouched


def test_local_cluster_gives_the_in_process_results() -> None:
    velas = synthetic_velas(3_000, seed=7)
    local = optimizar(velas, "sma_cruce", SMALL_SPACE)
    spread = optimizar(velas, "sma_cruce", SMALL_SPACE, workers=2)
    pd.testing.assert_frame_equal(spread.resultados, local.resultados, check_exact=True)
    assert (spread.mejor, spread.omitidas, spread.dsr, spread.pbo) == (
        local.mejor,
        local.omitidas,
        local.dsr,
        local.pbo,
    )


def test_scheduler_and_three_workers_survive_a_killed_worker(
    scheduler: dict[str, Any], big_velas: pd.DataFrame
) -> None:
    single = optimizar(big_velas, "sma_cruce", BIG_SPACE)
    assert len(single.resultados) == len(_valid(BIG_SPACE))

    whole = optimizar(big_velas, "sma_cruce", BIG_SPACE, cluster=scheduler["address"])
    pd.testing.assert_frame_equal(whole.resultados, single.resultados, check_exact=True)

    client: Client = scheduler["client"]
    ours = {p.pid: p for p in scheduler["workers"]}
    seen: list[tuple[int, int]] = []
    killed: list[int] = []

    def progress(done: int, total: int, best: dict[str, Any] | None) -> None:
        seen.append((done, total))
        if killed:
            return
        # Kill a worker that holds unfinished chunks right now, once the first chunk is in
        # (the others are running or queued: with 3 workers on 2 cores one may be between two).
        busy = until(lambda: [a for a, keys in client.processing().items() if keys], 30,
                     "a worker running a chunk")  # fmt: skip
        pid = scheduler["pids"][busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = optimizar(
                big_velas, "sma_cruce", BIG_SPACE, cluster=scheduler["address"], progreso=progress
            )
        except BaseException as error:  # reported by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the run did not finish after a worker was killed"
    assert "error" not in outcome, outcome.get("error")
    assert killed and ours[killed[0]].wait(timeout=10) == -signal.SIGKILL
    total = len(single.resultados) + single.omitidas
    assert seen[0][0] < total, "the worker was killed after the end"
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    until(lambda: len(client.scheduler_info()["workers"]) == WORKERS - 1, 30,
          "the scheduler to drop the killed worker")  # fmt: skip

    result = outcome["result"]
    params = list(zip(result.resultados["rapida"], result.resultados["lenta"], strict=True))
    assert len(params) == len(set(params)) and set(params) == _valid(BIG_SPACE)
    assert result.omitidas == single.omitidas
    pd.testing.assert_frame_equal(result.resultados, single.resultados, check_exact=True)
    assert result.mejor == single.mejor


def test_validation_on_the_workers_is_the_in_process_one(scheduler: dict[str, Any]) -> None:
    velas = synthetic_velas(3_000, seed=7)
    for validacion in ("walk_forward", "kfold_purgado"):
        local = optimizar(velas, "sma_cruce", SMALL_SPACE, validacion=validacion)
        remote = optimizar(
            velas, "sma_cruce", SMALL_SPACE, validacion=validacion, cluster=scheduler["address"]
        )
        assert remote.validacion == local.validacion
        pd.testing.assert_frame_equal(remote.resultados, local.resultados, check_exact=True)
