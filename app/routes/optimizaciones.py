"""/optimizaciones: parameter searches run as jobs (progress, results, cancellation)."""

from __future__ import annotations

from flask import Blueprint

from app.api import RequestError, operation
from app.jobs import job_runner
from app.optimizaciones import KIND, job_json, result_json, submit
from app.schemas import (
    OptimizacionCreada,
    OptimizacionesQuery,
    OptimizacionIn,
    ResultadosQuery,
)
from app.services import services
from backtesting.optimizador import LOWER_IS_BETTER, _objectives
from core.errors import DataError, NotFoundError
from core.repository import Job

bp = Blueprint("optimizaciones", __name__)


def _job(job_id: int) -> Job:
    job = services().db.jobs.get(job_id)
    if job.kind != KIND:
        raise NotFoundError(f"optimizacion {job_id} does not exist")
    return job


@operation(
    bp,
    "/optimizaciones",
    "POST",
    "Start an optimisation job (checked first; runs in its own process, JOBS_MAX at once)",
    body=OptimizacionIn,
    response=OptimizacionCreada,
    statuses=(202, 400, 404, 422, 502),
)
def create_optimizacion(body: OptimizacionIn):  # type: ignore[no-untyped-def]
    job = submit(services(), body)
    url = f"/optimizaciones/{job.id}"
    return {"id": job.id, "estado": job.state, "url": url}, 202, {"Location": url}


@operation(
    bp, "/optimizaciones/<int:job_id>", "GET", "An optimisation: state, progress, best, summary"
)
def get_optimizacion(job_id: int):  # type: ignore[no-untyped-def]
    return job_json(_job(job_id))


@operation(
    bp,
    "/optimizaciones/<int:job_id>/resultados",
    "GET",
    "An optimisation's combinations (params and metrics), paginated, optionally best first",
    query=ResultadosQuery,
)
def get_resultados(job_id: int, query: ResultadosQuery):  # type: ignore[no-untyped-def]
    _job(job_id)
    if query.orden is not None:
        try:
            _objectives([query.orden])
        except DataError as error:
            raise RequestError(400, str(error), {"orden": str(error)}) from None
    jobs = services().db.jobs
    rows = jobs.results(
        job_id, query.limit, query.offset, query.orden,
        descending=query.orden not in LOWER_IS_BETTER,
    )  # fmt: skip
    return {
        "resultados": [result_json(r) for r in rows], "total": jobs.count_results(job_id),
        "limit": query.limit, "offset": query.offset, "orden": query.orden,
    }  # fmt: skip


@operation(
    bp,
    "/optimizaciones",
    "GET",
    "Optimisation jobs, newest first (without their summaries)",
    query=OptimizacionesQuery,
)
def list_optimizaciones(query: OptimizacionesQuery):  # type: ignore[no-untyped-def]
    jobs = services().db.jobs
    found = jobs.find(KIND, limit=query.limit, offset=query.offset)
    return {
        "optimizaciones": [job_json(j, with_summary=False) for j in found],
        "total": jobs.count(KIND), "limit": query.limit, "offset": query.offset,
    }  # fmt: skip


@operation(
    bp,
    "/optimizaciones/<int:job_id>/cancelar",
    "POST",
    "Cancel an optimisation (a pending one at once, a running one at its next batch)",
    statuses=(202, 409),
)
def cancel_optimizacion(job_id: int):  # type: ignore[no-untyped-def]
    _job(job_id)
    job, changed = services().db.jobs.request_cancel(job_id)
    if not changed:
        raise RequestError(409, f"optimizacion {job_id} already ended ({job.state})",
                           {"estado": job.state})  # fmt: skip
    return {"id": job.id, "estado": job.state, "cancelacion_pedida": True}, 202


@operation(
    bp,
    "/optimizaciones/<int:job_id>/reanudar",
    "POST",
    "Resume an interrupted, cancelled or failed optimisation: the combinations it already ran "
    "are kept, the rest run, and it ends as an uninterrupted run would",
    statuses=(202, 409),
)
def resume_optimizacion(job_id: int):  # type: ignore[no-untyped-def]
    _job(job_id)
    if not services().db.jobs.requeue(job_id):
        job = services().db.jobs.get(job_id)
        raise RequestError(409, f"optimizacion {job_id} is {job.state}: nothing to resume",
                           {"estado": job.state})  # fmt: skip
    job_runner().kick()
    job = services().db.jobs.get(job_id)
    return {"id": job.id, "estado": job.state, "url": f"/optimizaciones/{job.id}"}, 202
