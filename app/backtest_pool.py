"""Backtests run in worker processes, at most one per slot, so the web process stays responsive.

A backtest downloads, reads, simulates and encodes hundreds of thousands of candles: in a web
thread it would hold the GIL and the memory of the web process. Here each runs in a worker
process (lower CPU priority than the web app), a request that finds every slot busy is refused
at once with 503 and `Retry-After`, and the worker hands back the finished JSON body.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from app.api import RequestError
from app.schemas import BacktestIn
from config.errors import KryptelionError
from config.settings import Settings

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5
_WORKER_NICENESS = 5
_DATABASES_PER_WORKER = 4


class BacktestPool:
    """`workers` backtest slots over a lazily started pool of spawned worker processes."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._slots = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def run(self, settings: Settings, body: BacktestIn) -> tuple[int, bytes]:
        """(status, JSON body) of the backtest `body` run by a worker.

        Raises RequestError 503 with Retry-After when every slot is busy or a worker died.
        """
        if not self._slots.acquire(blocking=False):
            raise RequestError(
                503,
                f"all {self.workers} backtest workers are busy; retry in {RETRY_AFTER_S} s",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        try:
            return self._pool().submit(_work, settings, body).result()
        except BrokenProcessPool:
            with self._lock:
                self._executor = None  # the next request starts fresh workers
            log.error("a backtest worker died (out of memory?); the pool restarts")
            raise RequestError(
                503, "the backtest worker stopped unexpectedly; retry",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None  # fmt: skip
        finally:
            self._slots.release()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # spawn, not fork: the web process has threads (waitress, demo exchange, bridge).
                self._executor = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                )
            return self._executor


@functools.cache
def shared_pool(workers: int) -> BacktestPool:
    """The process's pool for `workers` slots (0: one per core), shared by every app in it."""
    return BacktestPool(workers or os.cpu_count() or 1)


def _start_worker() -> None:
    """Run below the web app's priority, and exit with the web process: a worker's queues never
    see their parent die (they hold both ends), so a killed web app would leave it running."""
    os.nice(_WORKER_NICENESS)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: Any) -> None:
    parent.join()
    os._exit(1)


@functools.cache
def _databases() -> OrderedDict[str, Any]:
    return OrderedDict()


def _database(url: str) -> Any:
    """An open Database for `url`, kept for the worker's next backtests (a few, LRU)."""
    from core.repository import Database

    cache = _databases()
    if url in cache:
        cache.move_to_end(url)
        return cache[url]
    cache[url] = Database(url)
    while len(cache) > _DATABASES_PER_WORKER:
        cache.popitem(last=False)[1].close()
    return cache[url]


def _work(settings: Settings, body: BacktestIn) -> tuple[int, bytes]:
    """In a worker: run and store the backtest, return (status, JSON body)."""
    from app.backtests import run_backtest, run_json
    from app.errors import status_of
    from app.services import Services

    services = Services(settings=settings, db=_database(settings.database_url))
    try:
        run = run_backtest(services, body)
        return 201, json.dumps(run_json(run), allow_nan=False).encode()
    except KryptelionError as error:
        detail = getattr(error, "detail", None) or {}
        payload = {"error": str(error), "detalle": detail}
        return status_of(error), json.dumps(payload, allow_nan=False).encode()
