"""The sweep engine: many parameter combinations of one strategy over one set of candles.

Each combination goes through the very functions `ejecutar_backtest` uses (`Setup.simulate`,
`Setup.metrics`), so its metrics are those of a single backtest bit for bit. What a sweep
shares is everything that does not depend on the combination: the checked candles and costs
(one `Setup`) and every indicator window (an `IndicatorCache`, so a 50 x 50 SMA grid computes
100 averages, not 5,000). Combinations are ordered so that neighbours share windows, and a
chunk of them is one task, local or on a Dask worker.
"""

from __future__ import annotations

import ctypes
import logging
import math
import sys
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backtesting.simulador import Setup
from core.errors import StrategyError
from estrategias.factory import crear_estrategia
from indicadores.cache import IndicatorCache

log = logging.getLogger(__name__)

# One worker's indicator memo: the 16 averages of a tile (see TILE) and a few more on a year of
# 1m candles, so that two workers and the process that drives them stay under 1 GB.
WORKER_CACHE_BYTES = 80 * 2**20

Combination = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Evaluated:
    """One combination's outcome: its metrics, or the strategy's refusal; and its equity at the
    close of each UTC day (what PBO and the deflated Sharpe are computed from)."""

    params: Combination
    metrics: dict[str, Any] | None
    refused: str | None
    daily_equity: np.ndarray | None


def day_ends(setup: Setup) -> np.ndarray:
    """Bars whose equity the daily series keeps: the first traded bar and each UTC day's last."""
    times = setup.velas.open_time[setup.first :]
    day = times // 86_400_000
    last = np.flatnonzero(np.diff(day, append=day[-1] + 1))
    return np.unique(np.concatenate(([0], last))) + setup.first


# glibc hands arrays above its mmap threshold back to the kernel when they are freed, so every
# 4 MB array of the next combination page-faults anew: more than half of a sweep's time. Keeping
# them on the heap (threshold 32 MB, glibc's maximum; trim beyond 128 MB) avoids that; Dask's
# nanny sets the opposite (MALLOC_TRIM_THRESHOLD_=65536) for its workers.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_allocator_tuned = False


def tune_allocator() -> None:
    """Keep freed arrays on the heap for reuse (glibc only; elsewhere a no-op), once a process."""
    global _allocator_tuned
    if _allocator_tuned or sys.platform != "linux":
        return
    _allocator_tuned = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 2**20)
    except (OSError, AttributeError):  # musl or another libc: keep its defaults
        log.debug("mallopt unavailable; allocator left as it is")


# A worker keeps one memo per Setup it was sent (Dask hands every task the same object) and per
# thread: a worker's threads run chunks at once, and a memo is active in one thread at a time
# (entering it from a second thread swaps its context token, and the first thread's exit fails).
_local = threading.local()


def _cache_for(setup: Setup) -> IndicatorCache:
    caches: weakref.WeakKeyDictionary[Setup, IndicatorCache] | None
    caches = getattr(_local, "caches", None)
    if caches is None:
        caches = _local.caches = weakref.WeakKeyDictionary()
    cache = caches.get(setup)
    if cache is None:
        cache = caches[setup] = IndicatorCache(WORKER_CACHE_BYTES)
    return cache


def evaluate(
    setup: Setup, strategy: str, combinations: Sequence[Combination], ends: np.ndarray
) -> list[Evaluated]:
    """Backtest each combination; a combination the strategy refuses is reported, not raised."""
    tune_allocator()
    out = []
    with _cache_for(setup):
        for params in combinations:
            try:
                instance = crear_estrategia(strategy, **params)
            except StrategyError as error:
                out.append(Evaluated(params, None, str(error), None))
                continue
            _, sim = setup.simulate(instance.decisions(setup.velas), keep=ends)
            out.append(Evaluated(params, setup.metrics(sim), None, sim.equity))
    return out


# Distinct values of each parameter per tile of the grid: an 8 x 8 tile of a 50 x 50 SMA grid
# needs 16 averages, which a worker's memo holds, where a whole row of the grid needs 51.
TILE = 8


def tiles(combinations: Sequence[Combination], size: int) -> list[list[Combination]]:
    """The combinations in chunks of at most `size` that share windows: tiles of TILE values
    of each parameter, and inside a tile the parameter with the fewest distinct values
    outermost (the later one of equals: rapida before lenta keeps each long window for a
    whole row of short ones). Values of different types sort apart, never raising."""
    if not combinations:
        return []
    names = list(combinations[0])

    def sortable(value: Any) -> tuple[str, Any]:
        return type(value).__name__, value

    rank = {n: {v: i for i, v in enumerate(sorted({sortable(c[n]) for c in combinations}))}
            for n in names}  # fmt: skip
    outer_first = sorted(names, key=lambda n: (len(rank[n]), -names.index(n)))

    def tile(params: Combination) -> tuple[int, ...]:
        return tuple(rank[n][sortable(params[n])] // TILE for n in outer_first)

    def key(params: Combination) -> tuple[Any, ...]:
        return tile(params), tuple(sortable(params[n]) for n in outer_first)

    size = max(1, size)
    out: list[list[Combination]] = []
    current: tuple[int, ...] | None = None
    for params in sorted(combinations, key=key):
        where = tile(params)
        if where != current or len(out[-1]) == size:
            out.append([])
            current = where
        out[-1].append(params)
    return out


def chunk_size(total: int, workers: int) -> int:
    """Enough tasks to balance the workers and to lose little when one dies, few enough that
    the per-task overhead stays small: about 8 tasks a worker, 4 to 64 combinations each."""
    return min(64, max(4, math.ceil(total / max(1, 8 * workers))))
