"""optimizar: search a strategy's parameters, and measure how much of the result is overfitting.

`grid` and `aleatorio` run straight on the sweep engine (backtesting.sweep); `tpe`, `genetico`
(NSGA-II, multi-objective too) and `cmaes` ask optuna's samplers for batches of trials and run
each batch on the same engine. Every optimisation reports the deflated Sharpe ratio of its best
combination and the probability of backtest overfitting of the whole search
(backtesting.validacion); `validacion=` adds walk-forward or purged k-fold validation, where the
search is repeated on in-sample candles only and its choice judged on the candles after them.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backtesting import validacion as val
from backtesting.simulador import Setup, prepare
from backtesting.sweep import (
    Combination,
    Evaluated,
    chunk_size,
    day_ends,
    evaluate,
    tiles,
)
from core.errors import DataError
from estrategias.base import Param, Strategy
from estrategias.factory import REGISTRY, crear_estrategia

log = logging.getLogger(__name__)

METODOS = ("grid", "aleatorio", "tpe", "genetico", "cmaes")
VALIDACIONES = ("walk_forward", "kfold_purgado")
VALIDATION_OPTIONS = {
    "walk_forward": ("ventanas", "in_sample", "anclado"),
    "kfold_purgado": ("folds", "embargo", "test_folds"),
}
# Metrics where less is better; every other metric is maximised (drawdowns are negative
# fractions, so maximising max_drawdown minimises the loss).
LOWER_IS_BETTER = frozenset({
    "volatility", "max_drawdown_duration_ms", "avg_drawdown_duration_ms", "total_fees",
    "liquidations", "ambiguous_bars", "avg_trade_duration_ms", "max_trade_duration_ms",
})  # fmt: skip
MAX_COMBINATIONS = 250_000
DEFAULT_TRIALS = 100
PBO_BLOCKS = 16
PBO_LIMIT = 0.5
DSR_LIMIT = 0.95

Progress = Callable[[int, int, dict[str, Any] | None], None]


class Cancelled(Exception):
    """The caller's `cancelado()` said stop; raised between batches, nothing half-counted."""


@dataclass(frozen=True, slots=True)
class Dimension:
    """One searched parameter: discrete values (grid, aleatorio, samplers) or bounds (samplers
    and aleatorio only)."""

    name: str
    kind: type
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False


@dataclass
class ResultadoOptimizacion:
    """What `optimizar` found; `resultados` has one row per combination tried."""

    resultados: pd.DataFrame
    mejor: dict[str, Any] | None
    objetivo: list[str]
    metodo: str
    probadas: int
    omitidas: int
    pareto: pd.DataFrame | None = None
    validacion: dict[str, Any] | None = None
    dsr: float | None = None
    pbo: float | None = None
    avisos: list[str] = field(default_factory=list)
    segundos: float = 0.0
    segundos_sobreajuste: float = 0.0  # of `segundos`: the deflated Sharpe and PBO


# --- the search space ----------------------------------------------------------------------


def _suggestion(name: Any, known: Iterable[str]) -> str:
    """ " (did you mean 'x'?)" for the closest known name, or nothing."""
    hint = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _strategy_class(name: str) -> type[Strategy]:
    if name not in REGISTRY:
        crear_estrategia(name)  # raises the registry's StrategyError with its suggestion
    return REGISTRY[name]


def parse_space(strategy: str, espacio: dict[str, Any]) -> tuple[list[Dimension], Combination]:
    """The searched dimensions and the fixed parameters of `espacio`.

    A range, list or array is a set of values; a tuple `(low, high)` or `(low, high, "log")` is
    bounds; anything else is a fixed value. DataError names the bad entry.
    """
    params = {p.name: p for p in _strategy_class(strategy).params}
    if not isinstance(espacio, dict) or not espacio:
        raise DataError("espacio: give at least one parameter, e.g. {'rapida': range(5, 50, 5)}")
    dims, fixed = [], {}
    for name, spec in espacio.items():
        if name not in params:
            raise DataError(
                f"espacio: {strategy} has no parameter {name!r}{_suggestion(name, params)}; "
                f"parameters: {', '.join(params)}"
            )
        param = params[name]
        if isinstance(spec, tuple):
            dims.append(_bounds(param, spec))
        elif isinstance(spec, range | list | np.ndarray):
            values = tuple(dict.fromkeys(_checked(param, v) for v in spec))
            if not values:
                raise DataError(f"espacio: {name} has no values")
            dims.append(Dimension(name, param.kind, values=values))
        else:
            fixed[name] = _checked(param, spec)
    if not dims:
        raise DataError("espacio: nothing to search (every parameter is fixed)")
    return dims, fixed


def _checked(param: Param, value: Any) -> Any:
    try:
        return param.check(value.item() if isinstance(value, np.generic) else value)
    except Exception as error:  # StrategyError: the parameter's own message
        raise DataError(f"espacio: {error}") from None


def _bounds(param: Param, spec: tuple[Any, ...]) -> Dimension:
    scale = spec[2] if len(spec) == 3 else None
    if len(spec) not in (2, 3) or scale not in (None, "log") or param.kind not in (int, float):
        raise DataError(
            f"espacio: {param.name} bounds are (low, high) or (low, high, 'log') of a numeric "
            "parameter; give a list or a range for a set of values"
        )
    low, high = _checked(param, spec[0]), _checked(param, spec[1])
    if not low < high:
        raise DataError(f"espacio: {param.name} needs low < high, got {low}, {high}")
    if scale == "log" and low <= 0:
        raise DataError(f"espacio: {param.name} needs low > 0 on a log scale")
    return Dimension(param.name, param.kind, low=low, high=high, log=scale == "log")


def grid(dims: Sequence[Dimension], fixed: Combination) -> list[Combination]:
    """Every combination of the dimensions' values, in the order given."""
    if any(d.values is None for d in dims):
        raise DataError(
            "espacio: grid takes ranges or lists; (low, high) bounds are for aleatorio, tpe, "
            "genetico and cmaes"
        )
    total = math.prod(len(d.values or ()) for d in dims)
    if total > MAX_COMBINATIONS:
        raise DataError(
            f"espacio: {total:,} combinations, more than {MAX_COMBINATIONS:,}; coarsen the steps "
            "or use aleatorio or tpe with intentos"
        )
    names = [d.name for d in dims]
    return [
        {**dict(zip(names, values, strict=True)), **fixed}
        for values in itertools.product(*(d.values or () for d in dims))
    ]


def _sample(dim: Dimension, rng: np.random.Generator) -> Any:
    if dim.values is not None:
        return dim.values[int(rng.integers(len(dim.values)))]
    assert dim.low is not None and dim.high is not None
    if dim.log:
        value = math.exp(rng.uniform(math.log(dim.low), math.log(dim.high)))
    else:
        value = rng.uniform(dim.low, dim.high)
    return int(min(max(round(value), dim.low), dim.high)) if dim.kind is int else float(value)


def random_combinations(
    dims: Sequence[Dimension], fixed: Combination, count: int, seed: int
) -> list[Combination]:
    """`count` distinct random combinations (fewer if the space has fewer)."""
    rng = np.random.default_rng(seed)
    seen: dict[tuple[Any, ...], Combination] = {}
    for _ in range(count * 20):
        if len(seen) == count:
            break
        combo = {d.name: _sample(d, rng) for d in dims}
        seen.setdefault(tuple(combo.values()), {**combo, **fixed})
    return list(seen.values())


# --- objectives ----------------------------------------------------------------------------


def _objectives(objetivo: str | Sequence[str]) -> list[str]:
    names = [objetivo] if isinstance(objetivo, str) else list(objetivo)
    if not names:
        raise DataError("objetivo: name at least one metric, e.g. 'sharpe'")
    known = _metric_names()
    for name in names:
        if name not in known:
            raise DataError(f"objetivo: unknown metric {name!r}{_suggestion(name, known)}")
    return names


@functools.cache
def _metric_names() -> list[str]:
    """Every numeric metric of ejecutar_backtest, read from one tiny run."""
    times = np.arange(3, dtype=np.int64) * 60_000
    prices = np.array([1.0, 1.1, 1.2])
    setup = prepare({"open_time": times, "open": prices, "high": prices, "low": prices,
                     "close": prices, "volume": prices})  # fmt: skip
    _, sim = setup.simulate(np.zeros(3))
    return [k for k, v in setup.metrics(sim).items() if not isinstance(v, bool)]


def _score(metrics: dict[str, Any], name: str) -> float:
    """The metric signed so that higher is better; NaN when it is undefined."""
    value = metrics.get(name)
    if value is None or math.isnan(float(value)):
        return math.nan
    return -float(value) if name in LOWER_IS_BETTER else float(value)


def _feasible(metrics: dict[str, Any], limits: dict[str, float]) -> bool:
    """Whether every constraint holds: each is the worst value accepted for its metric."""
    for name, worst in limits.items():
        value = metrics.get(name)
        if value is None:
            return False
        if (value > worst) if name in LOWER_IS_BETTER else (value < worst):
            return False
    return True


def pareto_front(scores: np.ndarray) -> np.ndarray:
    """Indices of the rows no other row dominates (higher is better in every column)."""
    ok = np.flatnonzero(~np.isnan(scores).any(axis=1))
    front = []
    for i in ok:
        others = scores[ok]
        dominated = ((others >= scores[i]).all(axis=1) & (others > scores[i]).any(axis=1)).any()
        if not dominated:
            front.append(i)
    return np.array(front, dtype=np.int64)


# --- running batches -----------------------------------------------------------------------


class _Local:
    """Chunks run one after the other in this process."""

    workers = 1

    def run(
        self, setup: Setup, strategy: str, batches: Sequence[Sequence[Combination]], ends: Any
    ) -> Iterator[list[Evaluated]]:
        for batch in batches:
            yield evaluate(setup, strategy, batch, ends)

    def close(self) -> None:
        pass


class _Dask:
    """Chunks as Dask tasks: the Setup (the candles) is scattered once to every worker."""

    def __init__(self, workers: int | None, cluster: str | None) -> None:
        import dask
        from distributed import Client, LocalCluster

        self._cluster = None
        if cluster:
            self.client = Client(cluster, timeout="10s")
        else:
            # Without a dashboard nobody reads the workers' statistical profiler, which samples
            # the computing thread every 10 ms (a few per cent of a sweep).
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                self._cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.WARNING,
                )  # fmt: skip
            self.client = Client(self._cluster)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})) or workers or 1)
        self._scattered: dict[int, Any] = {}

    def run(
        self, setup: Setup, strategy: str, batches: Sequence[Sequence[Combination]], ends: Any
    ) -> Iterator[list[Evaluated]]:
        from distributed import as_completed

        key = id(setup)
        if key not in self._scattered:
            self._scattered = {key: self.client.scatter(setup, broadcast=True, hash=False)}
        remote = self._scattered[key]
        futures = [
            self.client.submit(evaluate, remote, strategy, list(b), ends, pure=False)
            for b in batches
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


# --- the search ----------------------------------------------------------------------------


@dataclass
class _Search:
    """One search on one Setup: the combinations tried, in the order they were asked."""

    setup: Setup
    strategy: str
    objectives: list[str]
    limits: dict[str, float]
    runner: _Local | _Dask
    progress: Progress | None
    cancelled: Callable[[], bool] | None
    done: list[Evaluated] = field(default_factory=list)
    total: int = 0
    known: dict[tuple[Any, ...], Evaluated] = field(default_factory=dict)
    on_batch: Callable[[list[Evaluated]], None] | None = None
    leader: Evaluated | None = None

    def __post_init__(self) -> None:
        self.ends = day_ends(self.setup)

    def run(self, combinations: Sequence[Combination]) -> list[Evaluated]:
        """Evaluate `combinations` (in chunks that share windows); results in their order.

        Combinations in `known` (a resumed run's) are taken as they are, not run again.
        """
        index = {_key(c): i for i, c in enumerate(combinations)}
        found: list[Evaluated | None] = [self.known.get(key) for key in index]
        reused = [item for item in found if item is not None]
        fresh = [c for c, item in zip(combinations, found, strict=True) if item is None]
        if reused:
            self._add(reused)
        size = chunk_size(len(fresh), self.runner.workers)
        for batch in self.runner.run(self.setup, self.strategy, tiles(fresh, size), self.ends):
            for item in batch:
                found[index[_key(item.params)]] = item
            if self.on_batch is not None:
                self.on_batch(batch)
            self._add(batch)
        return [item for item in found if item is not None]

    def _add(self, batch: list[Evaluated]) -> None:
        """Count a batch done, keep the best so far, report progress, honour a cancel."""
        self.done.extend(batch)
        self.leader = self.best([self.leader, *batch] if self.leader else batch)
        if self.cancelled is not None and self.cancelled():
            raise Cancelled
        if self.progress is not None:
            best = self.leader.params if self.leader else None
            self.progress(len(self.done), self.total, best)

    def feasible(self, item: Evaluated) -> bool:
        return item.metrics is not None and _feasible(item.metrics, self.limits)

    def best(self, items: Sequence[Evaluated]) -> Evaluated | None:
        """The feasible item with the highest first objective (ties: the first tried)."""
        top, top_score = None, -math.inf
        for item in items:
            if not self.feasible(item):
                continue
            assert item.metrics is not None
            score = _score(item.metrics, self.objectives[0])
            if score > top_score:
                top, top_score = item, score
        return top


def _key(params: Combination) -> tuple[Any, ...]:
    """A combination's identity, whichever process built its dict."""
    return tuple(sorted(params.items()))


def _distribution(dim: Dimension):  # type: ignore[no-untyped-def]
    import optuna

    d = optuna.distributions
    if dim.values is None:
        if dim.kind is int:
            return d.IntDistribution(int(dim.low or 0), int(dim.high or 0), log=dim.log)
        return d.FloatDistribution(float(dim.low or 0), float(dim.high or 0), log=dim.log)
    values = dim.values
    if dim.kind is int and len(values) > 1:
        steps = {b - a for a, b in itertools.pairwise(sorted(values))}
        if len(steps) == 1 and sorted(values) == list(values):
            return d.IntDistribution(values[0], values[-1], step=steps.pop())
    return d.CategoricalDistribution(values)


def _sampler(metodo: str, seed: int, constrained: bool, multi: bool):  # type: ignore[no-untyped-def]
    import optuna

    constraints = (lambda t: t.user_attrs.get("restricciones", (1.0,))) if constrained else None
    if metodo == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=constraints)
    if metodo == "genetico":
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints)
    if multi:
        raise DataError("metodo: cmaes optimises one objective; use genetico or tpe for several")
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def _optuna_search(
    search: _Search, dims: Sequence[Dimension], fixed: Combination, metodo: str, trials: int,
    batch: int, seed: int,
) -> list[Evaluated]:  # fmt: skip
    """Ask-and-tell in batches: the sampler proposes `batch` trials, the sweep runs them."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    multi = len(search.objectives) > 1
    study = optuna.create_study(
        sampler=_sampler(metodo, seed, bool(search.limits), multi),
        directions=["maximize"] * len(search.objectives),
    )
    distributions = {d.name: _distribution(d) for d in dims}
    tried: list[Evaluated] = []
    seen: set[tuple[Any, ...]] = set()
    asks = 0
    while len(tried) < trials and asks < 20 * trials:
        pending = []
        for _ in range(min(batch, trials - len(tried))):
            trial = study.ask(distributions)
            asks += 1
            combo = {**trial.params, **fixed}
            key = _key(combo)
            if key in seen:  # a repeat teaches the sampler nothing new: tell it the old values
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            seen.add(key)
            pending.append((trial, combo))
        if not pending:
            continue
        results = search.run([combo for _, combo in pending])
        by_key = {_key(r.params): r for r in results}
        for trial, combo in pending:
            item = by_key[_key(combo)]
            tried.append(item)
            if item.metrics is None:  # refused by the strategy: counted, never a trial value
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            scores = [_score(item.metrics, name) for name in search.objectives]
            if any(math.isnan(s) for s in scores):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                violation = 0.0 if search.feasible(item) else 1.0
                trial.set_user_attr("restricciones", (violation,))
                study.tell(trial, [_finite(s) for s in scores])
    return tried


def _finite(score: float) -> float:
    """optuna takes finite values only; an infinite metric (a profit factor without losses)
    becomes the largest float."""
    return max(min(score, np.finfo(float).max), -np.finfo(float).max)


def _search(
    search: _Search, dims: Sequence[Dimension], fixed: Combination, metodo: str,
    intentos: int | None, seed: int, lote: int | None,
) -> list[Evaluated]:  # fmt: skip
    if metodo == "grid":
        combos = grid(dims, fixed)
        search.total += len(combos)
        return search.run(combos)
    count = intentos or DEFAULT_TRIALS
    if metodo == "aleatorio":
        combos = random_combinations(dims, fixed, count, seed)
        search.total += len(combos)
        return search.run(combos)
    search.total += count
    batch = lote or max(8, 4 * search.runner.workers)
    return _optuna_search(search, dims, fixed, metodo, count, batch, seed)


# --- validation ------------------------------------------------------------------------------


def _slice(velas: pd.DataFrame | dict[str, np.ndarray], rows: range) -> dict[str, np.ndarray]:
    return {name: np.asarray(velas[name])[rows.start : rows.stop] for name in _COLUMNS}


_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")


def _objective_of(metrics: dict[str, Any] | None, name: str) -> float | None:
    """The metric's own value (not signed), None when undefined."""
    value = None if metrics is None else metrics.get(name)
    return None if value is None or math.isnan(float(value)) else float(value)


def _judge(
    velas: dict[str, np.ndarray], warmup: int, test: range, strategy: str, params: Combination,
    backtest: dict[str, Any],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:  # fmt: skip
    """The chosen combination on the test candles, warmed up on the candles just before them
    (known when the test starts, as a bot started then would know them)."""
    start = max(0, test.start - warmup)
    data = _slice(velas, range(start, test.stop))
    setup = prepare(data, **{**backtest, "desde": int(velas["open_time"][test.start])})
    instance = crear_estrategia(strategy, **params)
    _, sim = setup.simulate(instance.target_positions(setup.velas))
    return setup.metrics(sim), setup.velas.open_time[setup.first :], sim.equity[setup.first :]


SearchOn = Callable[[Setup], tuple[list[Evaluated], "_Search"]]


def _walk_forward(
    velas: dict[str, np.ndarray], strategy: str, options: dict[str, Any], run_search: SearchOn,
    backtest: dict[str, Any], objective: str,
) -> dict[str, Any]:  # fmt: skip
    """Optimise on each in-sample window, judge its best on the window after it, and stitch
    the out-of-sample equity (each window starting where the previous one ended)."""
    n = len(velas["open_time"])
    windows = _windows(
        val.walk_forward_windows, n, options.get("ventanas", 5), options.get("in_sample", 0.75),
        options.get("anclado", False),
    )  # fmt: skip
    out, times, equity = [], [], []
    capital = float(backtest.get("capital", 10_000))
    level = capital
    for window in windows:
        (train,), (test,) = window.train, window.test
        setup = prepare(_slice(velas, train), **backtest)
        tried, search = run_search(setup)
        best = search.best(tried)
        entry: dict[str, Any] = {
            "is": [int(velas["open_time"][train.start]), int(velas["open_time"][train.stop - 1])],
            "oos": [int(velas["open_time"][test.start]), int(velas["open_time"][test.stop - 1])],
            "mejor": None, "objetivo_is": None, "objetivo_oos": None,
        }  # fmt: skip
        if best is not None:
            warmup = train.stop - train.start
            metrics, t, e = _judge(velas, warmup, test, strategy, best.params, backtest)
            entry.update(
                mejor=best.params,
                objetivo_is=_objective_of(best.metrics, objective),
                objetivo_oos=_objective_of(metrics, objective),
                metricas_oos=metrics,
            )
            times.append(t)
            equity.append(e / capital * level)
            level = float(equity[-1][-1])
        out.append(entry)
    return _summary("walk_forward", out, times, equity, capital, objective)


def _windows(split: Callable[..., list[val.Window]], *args: Any) -> list[val.Window]:
    """The splitter's windows; its ValueError (a bad option, too few candles) as a DataError."""
    try:
        return split(*args)
    except (ValueError, TypeError) as error:
        raise DataError(f"opciones_validacion: {error}") from None


def _kfold(
    velas: dict[str, np.ndarray], strategy: str, options: dict[str, Any],
    run_search: SearchOn, backtest: dict[str, Any], objective: str,
) -> dict[str, Any]:  # fmt: skip
    """Purged k-fold: for each split, the search runs on each train range on its own (trades
    close at a range's end, so none overlaps a test: the purge), bars within `embargo` after a
    test are left out, and the combination best on the bar-weighted train ranges is judged on
    the test ranges."""
    n = len(velas["open_time"])
    folds = options.get("folds", 5)
    embargo = options.get("embargo", max(1, n // 100))
    windows = _windows(val.purged_kfold_windows, n, folds, embargo, options.get("test_folds", 1))
    cache: dict[tuple[int, int], tuple[list[Evaluated], _Search]] = {}
    out = []
    for window in windows:
        scores: dict[tuple[Any, ...], list[float]] = {}
        params: dict[tuple[Any, ...], Combination] = {}
        weights: list[int] = []
        for train in window.train:
            if len(train) < 2:
                continue
            key = (train.start, train.stop)
            if key not in cache:
                setup = prepare(_slice(velas, train), **backtest)
                cache[key] = run_search(setup)
            weights.append(len(train))
            tried, search = cache[key]
            for item in tried:
                k = _key(item.params)
                params[k] = item.params
                # A combination breaking a constraint on any train range is never chosen.
                ok = item.metrics is not None and search.feasible(item)
                value = _score(item.metrics or {}, objective) if ok else math.nan
                scores.setdefault(k, []).append(value)
        usable = {k: v for k, v in scores.items() if len(v) == len(weights)}
        means = {k: float(np.average(v, weights=weights)) for k, v in usable.items()
                 if not any(math.isnan(x) for x in v)}  # fmt: skip
        entry: dict[str, Any] = {
            "train": [[int(velas["open_time"][r.start]), int(velas["open_time"][r.stop - 1])]
                      for r in window.train],
            "test": [[int(velas["open_time"][r.start]), int(velas["open_time"][r.stop - 1])]
                     for r in window.test],
            "mejor": None, "objetivo_is": None, "objetivo_oos": None,
        }  # fmt: skip
        if means:
            chosen = max(means, key=lambda k: means[k])
            judged = [
                _judge(velas, test.start, test, strategy, params[chosen], backtest)[0]
                for test in window.test
            ]
            oos = [_score(m, objective) for m in judged]
            sign = -1 if objective in LOWER_IS_BETTER else 1
            oos_mean = sign * float(np.average(oos, weights=[len(t) for t in window.test]))
            entry.update(
                mejor=params[chosen], objetivo_is=sign * means[chosen],
                objetivo_oos=None if math.isnan(oos_mean) else oos_mean,  # as _objective_of
            )  # fmt: skip
        out.append(entry)
    summary = _summary("kfold_purgado", out, [], [], 0.0, objective)
    summary.update(folds=folds, embargo=embargo, test_folds=options.get("test_folds", 1))
    return summary


def _summary(
    kind: str, windows: list[dict[str, Any]], times: list[np.ndarray], equity: list[np.ndarray],
    capital: float, objective: str,
) -> dict[str, Any]:  # fmt: skip
    is_values = [w["objetivo_is"] for w in windows if w["objetivo_is"] is not None]
    oos_values = [w["objetivo_oos"] for w in windows if w["objetivo_oos"] is not None]
    result: dict[str, Any] = {
        "tipo": kind,
        "objetivo": objective,
        "ventanas": windows,
        "objetivo_is_medio": float(np.mean(is_values)) if is_values else None,
        "objetivo_oos_medio": float(np.mean(oos_values)) if oos_values else None,
    }
    if times:
        t, e = np.concatenate(times), np.concatenate(equity)
        result["equity_oos"] = [[int(a), float(b)] for a, b in zip(t, e, strict=True)]
        result["rentabilidad_oos"] = float(e[-1] / capital - 1)
    return result


# --- overfitting measures ------------------------------------------------------------------


def _overfitting(
    search: _Search, items: Sequence[Evaluated], best: Evaluated | None
) -> tuple[float | None, float | None, list[str]]:
    """Deflated Sharpe of the best combination and PBO of the search, on daily returns."""
    notes: list[str] = []
    usable = [i for i in items if i.daily_equity is not None]
    if best is None or len(usable) < 2:
        return None, None, ["DSR y PBO necesitan al menos dos combinaciones válidas"]
    times = search.setup.velas.open_time[search.ends]
    matrix = np.column_stack([np.asarray(i.daily_equity) for i in usable])
    _, returns = val.daily_returns(times, matrix)
    dsr = pbo = None
    column = next(k for k, i in enumerate(usable) if i is best)
    if len(returns) >= 2:
        std = returns.std(axis=0, ddof=1)
        sharpes = np.divide(returns.mean(axis=0), std, out=np.full(len(std), np.nan),
                            where=std > 0)  # fmt: skip
        dsr = val.deflated_sharpe_of(returns[:, column], sharpes)
    if len(returns) >= max(PBO_BLOCKS, 4):
        pbo = val.probability_of_backtest_overfitting(returns, PBO_BLOCKS).pbo
    else:
        notes.append(f"PBO necesita al menos {PBO_BLOCKS} días de datos")
    if pbo is not None and pbo > PBO_LIMIT:
        notes.append(
            f"probabilidad de sobreajuste {pbo:.0%}: la mejor combinación dentro de la muestra "
            "suele quedar por debajo de la mediana fuera de ella; no te fíes de ella"
        )
    if dsr is not None and dsr < DSR_LIMIT:
        notes.append(
            f"Sharpe deflactado {dsr:.2f} < {DSR_LIMIT}: con {len(usable)} pruebas, un Sharpe así "
            "puede salir por azar"
        )
    return dsr, pbo, notes


# --- the entry point ------------------------------------------------------------------------


def _table(items: Sequence[Evaluated], search: _Search) -> pd.DataFrame:
    rows = [
        {**item.params, **(item.metrics or {}), "cumple": search.feasible(item)}
        for item in items
        if item.metrics is not None
    ]
    return pd.DataFrame(rows)


def optimizar(
    velas: Any,
    estrategia: str,
    espacio: dict[str, Any],
    metodo: str = "grid",
    objetivo: str | Sequence[str] = "sharpe",
    capital: float = 10_000,
    comision: float = 0.0004,
    validacion: str | None = None,
    workers: int | None = None,
    cluster: str | None = None,
    intentos: int | None = None,
    restricciones: dict[str, float] | None = None,
    semilla: int = 0,
    lote: int | None = None,
    opciones_validacion: dict[str, Any] | None = None,
    progreso: Progress | None = None,
    cancelado: Callable[[], bool] | None = None,
    al_evaluar: Callable[[list[Evaluated]], None] | None = None,
    previas: Sequence[Evaluated] = (),
    **backtest: Any,
) -> ResultadoOptimizacion:
    """Search `estrategia`'s parameters over `espacio` on `velas`.

    `metodo`: grid (every combination), aleatorio (`intentos` random ones), tpe, genetico
    (NSGA-II) or cmaes (optuna samplers, `intentos` trials asked in batches of `lote`).
    `objetivo`: a metric of ejecutar_backtest or a list (multi-objective: `res.pareto`).
    `restricciones`: {metric: worst accepted value}, e.g. {"trades": 30}. The costs and risk
    arguments (`slippage`, `apalancamiento`, `stop_loss`, ...) are ejecutar_backtest's.
    `validacion`: walk_forward or kfold_purgado, tuned by `opciones_validacion` (ventanas,
    in_sample, anclado; folds, embargo, test_folds). `workers=N` runs on a local Dask cluster of
    N processes, `cluster="tcp://host:8786"` on a running Dask scheduler's workers.
    Combinations the strategy refuses are skipped and counted in `omitidas`.
    `al_evaluar(batch)` receives each batch of newly run combinations of the main search (what
    a job stores as it goes). `previas`: combinations an interrupted run already ran, with the
    same arguments; they are not run again. The samplers are seeded, so a resumed run asks for
    the same combinations in the same order and ends with the result of an uninterrupted one.
    Raises DataError for bad arguments, Cancelled when `cancelado()` turns true.
    """
    started = time.perf_counter()
    if metodo not in METODOS:
        raise DataError(f"metodo: must be one of {', '.join(METODOS)}, got {metodo!r}")
    if validacion is not None and validacion not in VALIDACIONES:
        raise DataError(f"validacion: must be one of {', '.join(VALIDACIONES)} or None")
    if workers is not None and not _whole(workers):
        raise DataError(f"workers: must be a whole number >= 1, got {workers!r}")
    if intentos is not None and not _whole(intentos):
        raise DataError(f"intentos: must be a whole number >= 1, got {intentos!r}")
    if validacion is not None:
        _check_options(validacion, dict(opciones_validacion or {}))
    objectives = _objectives(objetivo)
    limits = dict(restricciones or {})
    if limits:
        _objectives(list(limits))
    dims, fixed = parse_space(estrategia, espacio)
    backtest = {"capital": capital, "comision": comision, **backtest}
    setup = prepare(velas, **backtest)
    data = {name: getattr(setup.velas, name) for name in _COLUMNS}
    runner: _Local | _Dask = _Dask(workers, cluster) if (workers or cluster) else _Local()
    try:

        def run_search(target: Setup) -> tuple[list[Evaluated], _Search]:
            search = _Search(target, estrategia, objectives, limits, runner, progreso, cancelado)
            return _search(search, dims, fixed, metodo, intentos, semilla, lote), search

        main = _Search(setup, estrategia, objectives, limits, runner, progreso, cancelado,
                       known={_key(e.params): e for e in previas}, on_batch=al_evaluar)  # fmt: skip
        tried = _search(main, dims, fixed, metodo, intentos, semilla, lote)
        search = main
        validation = None
        options = dict(opciones_validacion or {})
        if validacion == "walk_forward":
            validation = _walk_forward(
                data, estrategia, options, run_search, backtest, objectives[0]
            )
        elif validacion == "kfold_purgado":
            validation = _kfold(data, estrategia, options, run_search, backtest, objectives[0])
    finally:
        runner.close()
    return _result(search, tried, metodo, objectives, validation, started)


def _check_options(validacion: str, options: dict[str, Any]) -> None:
    known = VALIDATION_OPTIONS[validacion]
    for name in options:
        if name not in known:
            raise DataError(
                f"opciones_validacion: {validacion} has no option {name!r}"
                f"{_suggestion(name, known)}; "
                f"options: {', '.join(known)}"
            )


def _whole(value: Any) -> bool:
    """A count: an int >= 1 (not a bool, a string or a float)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and bool(value >= 1)


def _result(
    search: _Search, tried: list[Evaluated], metodo: str, objectives: list[str],
    validation: dict[str, Any] | None, started: float,
) -> ResultadoOptimizacion:  # fmt: skip
    table = _table(tried, search)
    valid = [i for i in tried if i.metrics is not None]
    best = search.best(valid)
    pareto = None
    if len(objectives) > 1 and len(table):
        feasible = [i for i in valid if search.feasible(i)]
        scores = np.array([[_score(i.metrics or {}, o) for o in objectives] for i in feasible])
        front = pareto_front(scores) if len(feasible) else np.array([], dtype=np.int64)
        pareto = _table([feasible[k] for k in front], search)
        candidates = [feasible[k] for k in front]
        best = search.best(candidates) if candidates else best
    measured = time.perf_counter()
    dsr, pbo, notes = _overfitting(search, valid, best)
    measured = time.perf_counter() - measured
    return ResultadoOptimizacion(
        resultados=table, mejor=dict(best.params) if best else None, objetivo=objectives,
        metodo=metodo, probadas=len(valid), omitidas=len(tried) - len(valid), pareto=pareto,
        validacion=validation, dsr=dsr, pbo=pbo, avisos=notes,
        segundos=time.perf_counter() - started, segundos_sobreajuste=measured,
    )  # fmt: skip
