"""Optimisations as jobs: POST /optimizaciones' checks, the job's work (optimizar with its
progress and results written to the database as it goes), and the public JSON of a job."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from app.api import RequestError
from app.backtests import downsample, validate
from app.jobs import JobContext, job_runner
from app.schemas import MAX_SPACE_VALUES, BacktestIn, Limites, OptimizacionIn, Rango
from app.services import Services
from backtesting import optimizador
from backtesting.optimizador import Cancelled, _feasible, _key, grid, optimizar, parse_space
from backtesting.sweep import Evaluated
from core.errors import DataError, StrategyError
from core.repository import Job, JobResult
from core.repository.backtests import json_safe
from core.repository.jobs import CANCELLED, DONE, RUNNING
from data.candles import load_run_candles

KIND = "optimizacion"
WRITE_EVERY_S = 0.5
COSTS = ("capital", "comision", "comision_maker", "slippage", "apalancamiento", "tamano",
         "stop_loss", "take_profit", "trailing", "funding")  # fmt: skip
SEARCH, VALIDATION = "busqueda", "validacion"
MAX_ROWS = 1_000_000  # more than any search (grids stop at optimizador.MAX_COMBINATIONS)


@contextmanager
def _field(name: str, status: int = 422) -> Iterator[None]:
    """A DataError or StrategyError about the request field `name` as a RequestError."""
    try:
        yield
    except (DataError, StrategyError) as error:
        raise RequestError(status, str(error), {name: str(error)}) from None


def _values(name: str, spec: Rango) -> list[int | float]:
    """The values of a {desde, hasta, paso} range, `hasta` included when it is on a step."""
    if spec.hasta < spec.desde:
        raise RequestError(422, f"espacio.{name}: hasta is below desde",
                           {f"espacio.{name}": "hasta < desde"})  # fmt: skip
    count = math.floor((spec.hasta - spec.desde) / spec.paso + 1e-9) + 1
    if count > MAX_SPACE_VALUES:
        message = f"espacio.{name}: {count:,} values, more than {MAX_SPACE_VALUES:,}"
        raise RequestError(422, message, {f"espacio.{name}": "too many values"})
    if all(isinstance(v, int) for v in (spec.desde, spec.hasta, spec.paso)):
        return list(range(int(spec.desde), int(spec.hasta) + 1, int(spec.paso)))
    return [round(spec.desde + i * spec.paso, 12) for i in range(count)]


def expand_space(espacio: dict[str, Any]) -> dict[str, Any]:
    """The request's `espacio` in optimizar's terms: lists of values, (low, high[, "log"])
    bounds, fixed values."""
    out: dict[str, Any] = {}
    for name, spec in espacio.items():
        if isinstance(spec, Rango):
            out[name] = _values(name, spec)
        elif isinstance(spec, Limites):
            out[name] = (spec.min, spec.max, "log") if spec.log else (spec.min, spec.max)
        else:
            out[name] = spec
    return out


def _backtest_body(body: OptimizacionIn) -> BacktestIn:
    names = ("symbol", "interval", "strategy", "start_date", "end_date", *COSTS)
    return BacktestIn(**{name: getattr(body, name) for name in names})


def check(svc: Services, body: OptimizacionIn) -> int | None:
    """Everything checkable before the job runs (RequestError naming the field): the strategy,
    dates and costs as POST /backtest checks them, the space, method, objectives, constraints and
    the symbol. The job itself downloads what is missing (long work, in its own process), so
    there is no download limit. Returns the number of combinations when known (grid)."""
    backtest = _backtest_body(body)
    _, start, end = validate(backtest)
    with _field("espacio"):
        dims, fixed = parse_space(body.strategy, expand_space(body.espacio))
    objectives = [body.objetivo] if isinstance(body.objetivo, str) else body.objetivo
    with _field("objetivo"):
        optimizador._objectives(objectives)
    if body.restricciones:
        with _field("restricciones"):
            optimizador._objectives(list(body.restricciones))
    if body.validacion is not None:
        with _field("opciones_validacion"):
            optimizador._check_options(body.validacion, body.opciones_validacion.model_dump(
                exclude_none=True))  # fmt: skip
    if body.metodo == "cmaes" and len(objectives) > 1:
        message = "metodo: cmaes optimises one objective; use genetico or tpe for several"
        raise RequestError(422, message, {"metodo": message})
    total = None
    if body.metodo == "grid":
        with _field("espacio"):
            total = len(grid(dims, fixed))
    svc.symbol_rules(body.symbol)  # an unknown symbol is a 400
    return total


def submit(svc: Services, body: OptimizacionIn) -> Job:
    """Check the optimisation and store it as a pending job (started when a slot is free)."""
    check(svc, body)
    return job_runner().submit(KIND, body.model_dump(mode="json"))


# --- in the job's process ---------------------------------------------------------------------


class Tracker:
    """optimizar's `progreso` and `cancelado` for a job: progress, the best so far and the
    main search's new result rows written at most every WRITE_EVERY_S (and at the end); the
    cancel flag read at most as often."""

    def __init__(
        self, ctx: JobContext, objective: str, limits: dict[str, float],
        clock: Callable[[], float], previous: Sequence[Evaluated] = (),
    ) -> None:  # fmt: skip
        self.db, self.job_id, self.objective, self.clock = ctx.db, ctx.job.id or 0, objective, clock
        self.limits = limits
        self.metrics: dict[tuple[Any, ...], dict[str, Any] | None] = {
            _key(item.params): item.metrics for item in previous
        }
        self.started = clock()
        self.searches = 0
        self.base_done = self.base_total = 0
        self.done = self.total = 0
        self.last = (0, 0)
        self.rows: list[JobResult] = []
        self.written = ctx.db.jobs.count_results(self.job_id)  # rows a resumed run keeps
        self.best: dict[str, Any] | None = None
        self.written_at = self.checked_at = -math.inf
        self.cancel = False

    def progress(self, done: int, total: int, best: dict[str, Any] | None) -> None:
        previous_done, previous_total = self.last
        if self.searches == 0 or done <= previous_done or previous_done >= previous_total:
            self.searches += 1  # validation repeats the search on each window
            self.base_done += previous_done
            self.base_total += previous_total
        self.last = (done, total)
        self.done, self.total = self.base_done + done, self.base_total + total
        if self.searches == 1 and best is not None:
            self._best(best)
        if self.clock() - self.written_at >= WRITE_EVERY_S:
            self.flush()

    def collect(self, batch: list[Evaluated]) -> None:
        """optimizar's `al_evaluar`: the main search's newly run combinations, as rows with
        their daily equity (what a resumed run needs of them)."""
        for item in batch:
            self.metrics[_key(item.params)] = item.metrics
            if item.metrics is not None:
                ordinal = self.written + len(self.rows)
                feasible = bool(_feasible(item.metrics, self.limits))
                daily = None if item.daily_equity is None else item.daily_equity.tolist()
                self.rows.append(JobResult(ordinal, item.params, item.metrics, feasible, daily))

    def _best(self, params: dict[str, Any]) -> None:
        if self.best is None or self.best["params"] != params:
            metrics = self.metrics.get(_key(params)) or {}
            self.best = {"params": params, "objetivo": self.objective,
                         "valor": metrics.get(self.objective), "metricas": metrics}  # fmt: skip

    def flush(self) -> None:
        phase = SEARCH if self.searches <= 1 else VALIDATION
        self.db.jobs.progress(self.job_id, self.done, self.total, phase, self.best, self.rows)
        self.written += len(self.rows)
        self.rows = []
        self.written_at = self.clock()

    def cancelled(self) -> bool:
        if self.clock() - self.checked_at >= WRITE_EVERY_S:
            self.checked_at = self.clock()
            self.cancel = self.db.jobs.cancel_requested(self.job_id)
        return self.cancel


def _rows(frame: pd.DataFrame | None, param_names: set[str]) -> list[dict[str, Any]]:
    """optimizar's table as {params, metrics, feasible} dicts, in its order."""
    out = []
    for record in [] if frame is None else frame.to_dict("records"):
        feasible = bool(record.pop("cumple", True))
        params = {k: v for k, v in record.items() if k in param_names}
        metrics = {k: v for k, v in record.items() if k not in param_names}
        out.append({"params": params, "metrics": metrics, "feasible": feasible})
    return out


def _validation(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary and summary.get("equity_oos"):
        curve = pd.DataFrame(summary["equity_oos"]).to_numpy()
        summary = {**summary, "equity_oos": downsample(curve[:, 0], curve[:, 1])}
    return summary if summary is None else json_safe(summary)


def _previous(ctx: JobContext) -> list[Evaluated]:
    """The combinations a resumed job had already run (those stored with their daily equity;
    the others run again)."""
    rows = ctx.db.jobs.results(ctx.job.id or 0, limit=MAX_ROWS, daily=True)
    return [
        Evaluated(row.params, row.metrics, None, np.asarray(row.daily, dtype=np.float64))
        for row in rows
        if row.daily is not None
    ]


def run_job(ctx: JobContext) -> dict[str, Any]:
    """The optimisation of `ctx.job`: the finish arguments of its job (state, summary, ...)."""
    body = OptimizacionIn.model_validate(ctx.job.request)
    objectives = [body.objetivo] if isinstance(body.objetivo, str) else body.objetivo
    previous = _previous(ctx)
    limits = dict(body.restricciones or {})
    tracker = Tracker(ctx, objectives[0], limits, time.monotonic, previous)
    backtest = _backtest_body(body)
    _, start, end = validate(backtest)
    url = ctx.settings.binance_rest_url
    velas = load_run_candles(ctx.db, body.symbol, body.interval, start, end, rest_url=url)
    espacio = expand_space(body.espacio)
    options = body.opciones_validacion.model_dump(exclude_none=True)
    if tracker.cancelled():
        return {"state": CANCELLED}
    try:
        result = optimizar(
            velas, body.strategy, espacio, metodo=body.metodo, objetivo=objectives,
            validacion=body.validacion, workers=body.workers, intentos=body.intentos,
            restricciones=body.restricciones or None, semilla=body.semilla,
            opciones_validacion=options, progreso=tracker.progress, cancelado=tracker.cancelled,
            al_evaluar=tracker.collect, previas=previous,
            **{name: getattr(body, name) for name in COSTS},
        )  # fmt: skip
    except Cancelled:
        tracker.flush()
        return {"state": CANCELLED}
    tracker.flush()  # the final progress and phase
    names = set(espacio)
    rows = _rows(result.resultados, names)
    best = next((r for r in rows if r["params"] == result.mejor), None)
    metrics = best["metrics"] if best else {}
    summary = {
        "metodo": result.metodo, "objetivo": result.objetivo, "probadas": result.probadas,
        "omitidas": result.omitidas, "dsr": result.dsr, "pbo": result.pbo,
        "avisos": result.avisos, "segundos": result.segundos,
        "segundos_sobreajuste": result.segundos_sobreajuste,
        "validacion": _validation(result.validacion), "mejor_metricas": metrics,
        "pareto": None if result.pareto is None else [
            {"params": r["params"], "metricas": r["metrics"], "cumple": r["feasible"]}
            for r in _rows(result.pareto, names)
        ],
    }  # fmt: skip
    return {
        "state": DONE, "summary": summary, "done": tracker.done, "total": max(tracker.total,
                                                                              tracker.done),
        "best": None if result.mejor is None else {
            "params": result.mejor, "objetivo": objectives[0],
            "valor": metrics.get(objectives[0]), "metricas": metrics,
        },
        "results": [JobResult(k, r["params"], r["metrics"], r["feasible"])
                    for k, r in enumerate(rows)],
    }  # fmt: skip


# --- the public JSON ------------------------------------------------------------------------


def _eta(job: Job, now_ms: int) -> float | None:
    if job.state != RUNNING or not job.done or job.started_at is None or job.total <= job.done:
        return None
    elapsed = (now_ms - job.started_at) / 1000
    return round(elapsed / job.done * (job.total - job.done), 1)


def job_json(job: Job, with_summary: bool = True) -> dict[str, Any]:
    """The public JSON of an optimisation job."""
    out: dict[str, Any] = {
        "id": job.id, "estado": job.state, "url": f"/optimizaciones/{job.id}",
        "creada": job.created_at, "iniciada": job.started_at, "terminada": job.finished_at,
        "progreso": {"hechas": job.done, "total": job.total, "fase": job.phase or None,
                     "eta_s": _eta(job, int(time.time() * 1000))},
        "mejor": job.best, "cancelacion_pedida": job.cancel_requested, "error": job.error,
        "solicitud": job.request,
    }  # fmt: skip
    if with_summary and job.state == DONE and job.summary:
        out.update(job.summary)
    return json_safe(out)


def result_json(row: JobResult) -> dict[str, Any]:
    return json_safe({"n": row.ordinal, "params": row.params, "metricas": row.metrics,
                      "cumple": row.feasible})  # fmt: skip
