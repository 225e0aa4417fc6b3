"""The backtest service behind POST /backtest: candles (downloading what is missing), run, store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from app.api import RequestError
from app.backtest_pool import shared_pool
from app.jobs import JobContext, job_runner
from app.schemas import BacktestIn
from app.services import Services
from backtesting.simulador import ejecutar_backtest
from core.errors import DataError, StrategyError
from core.fills import check_distance, check_trailing
from core.intervals import end_ms, ms_to_iso, to_ms
from core.models import BacktestRun, Side, Trade
from core.repository.backtests import json_safe
from core.repository.jobs import CANCELLED, DONE
from data.candles import NotEnoughCandlesError, load_run_candles, missing_candles
from estrategias.base import Strategy
from estrategias.factory import crear_estrategia

EQUITY_POINTS = 2000
JOB_KIND = "backtest"


@contextmanager
def _blame(*fields: str, status: int = 400) -> Iterator[None]:
    """Name the request field an error is about (the form shows it next to that field): the
    first of `fields` the message starts with, else the last one."""
    try:
        yield
    except (DataError, StrategyError) as error:
        message = str(error)
        field = next((f for f in fields if message.startswith(f.rpartition(".")[2])), fields[-1])
        raise RequestError(status, message, {field: message}) from None


def validate(body: BacktestIn) -> tuple[Strategy, int | None, int | None]:
    """Everything checkable before any download: strategy, parameters, dates (`end_date` by the
    one end rule, `core.intervals.end_ms`), SL/TP, trailing stop (422 out of Binance's callback
    range, as the schema's bounds)."""
    params = [f"params.{name}" for name in body.params]
    with _blame(*params, "strategy"):
        strategy = crear_estrategia(body.strategy, **body.params)
    with _blame("start_date"):
        start = None if body.start_date is None else to_ms(body.start_date)
    with _blame("end_date"):
        end = None if body.end_date is None else end_ms(body.end_date)
    for name in ("stop_loss", "take_profit"):
        with _blame(name):
            check_distance(getattr(body, name), name)
    with _blame("trailing", status=422):
        check_trailing(body.trailing)
    if start is not None and end is not None and start >= end:
        raise RequestError(422, "start_date must be before end_date", {"end_date": "too early"})
    return strategy, start, end


def check_download(svc: Services, body: BacktestIn, start: int | None, end: int | None) -> None:
    """Refuse (422) a backtest that would download more than BACKTEST_MAX_DOWNLOAD candles,
    saying how to download them first; a request must not do unbounded work."""
    url, limit = svc.settings.binance_rest_url, svc.settings.backtest_max_download
    download = missing_candles(svc.db, body.symbol, body.interval, start, end, rest_url=url)
    if download is None or download.missing <= limit:
        return
    command = (
        f"python run.py update --symbols {body.symbol} --intervals {body.interval} "
        f"--start {ms_to_iso(download.start)} --end {ms_to_iso(download.end)}"
    )
    raise RequestError(
        422,
        f"this backtest would download {download.missing:,} candles, more than the "
        f"{limit:,} one request may (BACKTEST_MAX_DOWNLOAD); download them first: {command}",
        {"start_date": f"{download.missing} candles to download", "comando": command},
    )


def load_candles(
    svc: Services, symbol: str, interval: str, start: int | None, end: int | None
) -> pd.DataFrame:
    """The run's candles by `data.candles.load_run_candles`; too few are a 404 naming the
    stream."""
    url = svc.settings.binance_rest_url
    try:
        return load_run_candles(svc.db, symbol, interval, start, end, rest_url=url)
    except NotEnoughCandlesError as error:
        raise RequestError(404, str(error), error.detail) from None


def downsample(open_time: np.ndarray, equity: np.ndarray) -> list[list[float]]:
    """At most EQUITY_POINTS [time, equity] pairs, evenly spaced, always keeping the last."""
    step = max(1, -(-len(equity) // EQUITY_POINTS))
    index = np.unique(np.append(np.arange(0, len(equity), step), len(equity) - 1))
    return [[int(t), float(v)] for t, v in zip(open_time[index], equity[index], strict=True)]


def _trade(row: Any) -> Trade:
    return Trade(
        side=Side.BUY if row.side == "long" else Side.SELL,
        entry_time=int(row.entry_time), entry_price=float(row.entry_price),
        exit_time=int(row.exit_time), exit_price=float(row.exit_price),
        quantity=float(row.quantity), pnl=float(row.pnl), fees=float(row.fees),
        funding=float(row.funding), exit_reason=str(row.exit_reason),
        return_pct=float(row.ret),
    )  # fmt: skip


def run_backtest(svc: Services, body: BacktestIn) -> BacktestRun:
    """Validate the strategy, gather candles, run the engine and store the run."""
    strategy, start, end = validate(body)
    velas = load_candles(svc, body.symbol, body.interval, start, end)
    result = ejecutar_backtest(
        velas, strategy, capital=body.capital, comision=body.comision, slippage=body.slippage,
        apalancamiento=body.apalancamiento, tamano=body.tamano, stop_loss=body.stop_loss,
        take_profit=body.take_profit, funding=body.funding, comision_maker=body.comision_maker,
        trailing=body.trailing,
    )  # fmt: skip
    metrics = dict(result.metricas)
    if getattr(strategy, "report", None):
        metrics["ml"] = strategy.report  # type: ignore[attr-defined]
    trades = result.trades.rename(columns={"return": "ret"})
    times = velas["open_time"].to_numpy()
    run = BacktestRun(
        symbol=body.symbol, interval=body.interval, strategy=strategy.name, params=strategy.p,
        start_time=int(times[0]), end_time=int(times[-1]), capital=body.capital, metrics=metrics,
        trades=tuple(_trade(row) for row in trades.itertuples(index=False)),
        equity=tuple(
            (int(t), float(e)) for t, e in downsample(times, result.equity["equity"].to_numpy())
        ),
    )  # fmt: skip
    return svc.db.backtests.save(run)


def submit_backtest(svc: Services, body: BacktestIn) -> tuple[int, bytes]:
    """(status, JSON body) of POST /backtest: checked here, run by a backtest worker, or with
    `trabajo` stored as a job (202) that runs in its own process, with no download limit.

    Raises RequestError before any work for bad fields or too much to download inline, and 503
    when every worker is busy.
    """
    _, start, end = validate(body)
    svc.symbol_rules(body.symbol)  # an unknown symbol is a 400 before anything else
    if body.trabajo:
        job = job_runner().submit(JOB_KIND, body.model_dump(mode="json"))
        reply = {"id": job.id, "estado": job.state, "url": f"/trabajos/{job.id}"}
        return 202, json.dumps(reply).encode()
    check_download(svc, body, start, end)
    return shared_pool(svc.settings.backtest_workers).run(svc.settings, body)


def run_backtest_job(ctx: JobContext) -> dict[str, Any]:
    """A backtest job, in its own process: the stored run's id when done (see app.jobs)."""
    if ctx.db.jobs.cancel_requested(ctx.job.id or 0):
        return {"state": CANCELLED}
    run = run_backtest(Services(ctx.settings, ctx.db), BacktestIn.model_validate(ctx.job.request))
    summary = {"backtest": run.id, "url": f"/backtest/{run.id}",
               "metricas": json_safe(run.metrics)}  # fmt: skip
    return {"state": DONE, "summary": summary, "done": 1, "total": 1}


def run_json(run: BacktestRun, with_details: bool = True) -> dict[str, Any]:
    """The public JSON of a stored run."""
    out: dict[str, Any] = {
        "id": run.id, "symbol": run.symbol, "interval": run.interval, "strategy": run.strategy,
        "params": run.params, "capital": run.capital, "creado": run.created_at,
        "rango": {"inicio": run.start_time, "fin": run.end_time,
                  "inicio_iso": ms_to_iso(run.start_time), "fin_iso": ms_to_iso(run.end_time)},
        "metricas": json_safe(run.metrics),
    }  # fmt: skip
    if with_details:
        out["trades"] = [
            {"side": "long" if t.side is Side.BUY else "short", "entry_time": t.entry_time,
             "entry_price": t.entry_price, "exit_time": t.exit_time, "exit_price": t.exit_price,
             "quantity": t.quantity, "pnl": t.pnl, "return": t.return_pct, "fees": t.fees,
             "funding": t.funding, "exit_reason": t.exit_reason}
            for t in run.trades
        ]  # fmt: skip
        out["equity"] = [list(point) for point in run.equity]
    return out
