"""/trabajos: every job, whatever its kind (long backtests, optimisations): state and outcome."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app.api import RequestError, operation
from app.schemas import TrabajosQuery
from app.services import services
from core.repository import Job
from core.repository.backtests import json_safe

bp = Blueprint("trabajos", __name__)
# Where each kind's own, fuller view lives.
VIEWS = {"optimizacion": "/optimizaciones/{id}", "backtest": "/trabajos/{id}"}


def job_json(job: Job) -> dict[str, Any]:
    """Any job's public JSON: what it is, where it stands, and its outcome once it ended."""
    return json_safe({
        "id": job.id, "tipo": job.kind, "estado": job.state,
        "url": VIEWS.get(job.kind, "/trabajos/{id}").format(id=job.id),
        "creado": job.created_at, "iniciado": job.started_at, "terminado": job.finished_at,
        "progreso": {"hechas": job.done, "total": job.total, "fase": job.phase or None},
        "cancelacion_pedida": job.cancel_requested, "error": job.error,
        "resultado": job.summary if job.kind != "optimizacion" else None,
    })  # fmt: skip


@operation(bp, "/trabajos", "GET", "Every job, newest first", query=TrabajosQuery)
def list_trabajos(query: TrabajosQuery):  # type: ignore[no-untyped-def]
    jobs = services().db.jobs
    found = jobs.find(None, limit=query.limit, offset=query.offset)
    return {
        "trabajos": [job_json(j) for j in found], "total": jobs.count(),
        "limit": query.limit, "offset": query.offset,
    }  # fmt: skip


@operation(bp, "/trabajos/<int:job_id>", "GET", "A job: state, progress and outcome")
def get_trabajo(job_id: int):  # type: ignore[no-untyped-def]
    return job_json(services().db.jobs.get(job_id))


@operation(
    bp,
    "/trabajos/<int:job_id>/cancelar",
    "POST",
    "Cancel a job (a pending one at once, a running one when it next checks)",
    statuses=(202, 409),
)
def cancel_trabajo(job_id: int):  # type: ignore[no-untyped-def]
    job, changed = services().db.jobs.request_cancel(job_id)
    if not changed:
        raise RequestError(409, f"trabajo {job_id} already ended ({job.state})",
                           {"estado": job.state})  # fmt: skip
    return {"id": job.id, "estado": job.state, "cancelacion_pedida": True}, 202
