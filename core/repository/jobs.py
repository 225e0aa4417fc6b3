"""Stored jobs (long work run outside a request: optimisations now) and their result rows.

The web app creates a job `pendiente`; the process running it claims it (`start`), writes its
progress with the new result rows, and finishes it once. Every state change is conditional on
the state it leaves, so a job is run once and finished once whoever races for it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from sqlalchemy import Engine, Row, Table, delete, func, insert, select, update

from core.errors import NotFoundError
from core.repository.backtests import json_safe
from core.repository.engine import read_connection, write_transaction
from core.repository.tables import JobResultRow, JobRow

_jobs = cast(Table, JobRow.__table__)
_results = cast(Table, JobResultRow.__table__)

PENDING, RUNNING, DONE = "pendiente", "en_curso", "terminada"
CANCELLED, FAILED, INTERRUPTED = "cancelada", "error", "interrumpida"
JOB_STATES = (PENDING, RUNNING, DONE, CANCELLED, FAILED, INTERRUPTED)
FINAL_STATES = frozenset({DONE, CANCELLED, FAILED, INTERRUPTED})
# What a resume may start again: a job that ended before finishing its work.
RESUMABLE = frozenset({CANCELLED, FAILED, INTERRUPTED})


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored; times are epoch ms, `owner` the host:pid running it."""

    kind: str
    request: dict[str, Any]
    state: str = PENDING
    done: int = 0
    total: int = 0
    phase: str = ""
    best: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool = False
    owner: str | None = None
    created_at: int = 0
    started_at: int | None = None
    updated_at: int = 0
    finished_at: int | None = None
    id: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class JobResult:
    """One result row of a job: the `ordinal`-th combination, its params and metrics, and its
    equity at the close of each UTC day (what an interrupted optimisation resumes with)."""

    ordinal: int
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    feasible: bool = True
    daily: list[float] | None = None


def _now() -> int:
    return int(time.time() * 1000)


def _job(row: Row) -> Job:
    return Job(
        kind=row.kind, request=row.request, state=row.state, done=row.done, total=row.total,
        phase=row.phase, best=row.best, summary=row.summary, error=row.error,
        cancel_requested=bool(row.cancel_requested), owner=row.owner, created_at=row.created_at,
        started_at=row.started_at, updated_at=row.updated_at, finished_at=row.finished_at,
        id=row.id,
    )  # fmt: skip


def _result_rows(job_id: int, results: Sequence[JobResult]) -> list[dict[str, Any]]:
    return [
        {"job_id": job_id, "ordinal": r.ordinal, "params": json_safe(r.params),
         "metrics": json_safe(r.metrics), "feasible": bool(r.feasible),
         "daily": None if r.daily is None else [float(v) for v in r.daily]}
        for r in results
    ]  # fmt: skip


class JobRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, kind: str, request: dict[str, Any]) -> Job:
        """Store a new `pendiente` job; returns it with `id` and times set."""
        now = _now()
        job = Job(kind, json_safe(request), created_at=now, updated_at=now)
        values = {
            "kind": kind, "state": PENDING, "request": job.request, "done": 0, "total": 0,
            "phase": "", "cancel_requested": False, "created_at": now, "updated_at": now,
        }  # fmt: skip
        with write_transaction(self._engine) as connection:
            job_id = connection.execute(
                insert(_jobs).values(values).returning(_jobs.c.id)
            ).scalar_one()
        return replace(job, id=job_id)

    def get(self, job_id: int) -> Job:
        """The job; raises NotFoundError."""
        with read_connection(self._engine) as connection:
            row = connection.execute(select(_jobs).where(_jobs.c.id == job_id)).first()
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        return _job(row)

    def find(
        self, kind: str | None = None, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Job]:
        """Jobs newest first, optionally of one kind and state."""
        query = select(_jobs).order_by(_jobs.c.id.desc()).limit(limit).offset(offset)
        if kind is not None:
            query = query.where(_jobs.c.kind == kind)
        if state is not None:
            query = query.where(_jobs.c.state == state)
        with read_connection(self._engine) as connection:
            return [_job(row) for row in connection.execute(query)]

    def count(self, kind: str | None = None, state: str | None = None) -> int:
        query = select(func.count()).select_from(_jobs)
        if kind is not None:
            query = query.where(_jobs.c.kind == kind)
        if state is not None:
            query = query.where(_jobs.c.state == state)
        with read_connection(self._engine) as connection:
            return int(connection.execute(query).scalar_one())

    def pending(self, limit: int) -> list[Job]:
        """The oldest `limit` pending jobs, oldest first: the order they run in."""
        query = select(_jobs).where(_jobs.c.state == PENDING).order_by(_jobs.c.id).limit(limit)
        with read_connection(self._engine) as connection:
            return [_job(row) for row in connection.execute(query)]

    def start(self, job_id: int, owner: str) -> Job | None:
        """Claim a pending job for `owner` (now en_curso); None when it is not pending any more
        (cancelled meanwhile, or another process took it)."""
        now = _now()
        query = update(_jobs).where(_jobs.c.id == job_id, _jobs.c.state == PENDING)
        values = {"state": RUNNING, "owner": owner, "started_at": now, "updated_at": now}
        with write_transaction(self._engine) as connection:
            if connection.execute(query.values(values)).rowcount != 1:
                return None
        return self.get(job_id)

    def set_owner(self, job_id: int, owner: str) -> None:
        """Record the process running the job (host:pid) once it has started."""
        query = update(_jobs).where(_jobs.c.id == job_id, _jobs.c.state == RUNNING)
        with write_transaction(self._engine) as connection:
            connection.execute(query.values(owner=owner))

    def progress(
        self,
        job_id: int,
        done: int,
        total: int,
        phase: str,
        best: dict[str, Any] | None = None,
        results: Sequence[JobResult] = (),
    ) -> None:
        """Record a running job's progress and append its new result rows, in one transaction;
        nothing changes once the job has left en_curso."""
        values: dict[str, Any] = {"done": done, "total": total, "phase": phase,
                                  "updated_at": _now()}  # fmt: skip
        if best is not None:
            values["best"] = json_safe(best)
        query = update(_jobs).where(_jobs.c.id == job_id, _jobs.c.state == RUNNING)
        with write_transaction(self._engine) as connection:
            if connection.execute(query.values(values)).rowcount == 1 and results:
                connection.execute(insert(_results), _result_rows(job_id, results))

    def cancel_requested(self, job_id: int) -> bool:
        """Whether someone asked the job to stop (False for an unknown job)."""
        query = select(_jobs.c.cancel_requested).where(_jobs.c.id == job_id)
        with read_connection(self._engine) as connection:
            return bool(connection.execute(query).scalar())

    def request_cancel(self, job_id: int) -> tuple[Job, bool]:
        """Ask the job to stop: a pending one is cancelled at once, a running one is flagged
        for its process. Returns the job and whether the request took effect (False: it had
        already finished). Raises NotFoundError."""
        now = _now()
        pending = (_jobs.c.id == job_id, _jobs.c.state == PENDING)
        running = (_jobs.c.id == job_id, _jobs.c.state == RUNNING)
        with write_transaction(self._engine) as connection:
            changed = connection.execute(
                update(_jobs)
                .where(*pending)
                .values(state=CANCELLED, cancel_requested=True, updated_at=now, finished_at=now)
            ).rowcount
            changed = (
                changed
                or connection.execute(
                    update(_jobs).where(*running).values(cancel_requested=True, updated_at=now)
                ).rowcount
            )
        return self.get(job_id), changed == 1

    def finish(
        self,
        job_id: int,
        state: str,
        *,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
        best: dict[str, Any] | None = None,
        done: int | None = None,
        total: int | None = None,
        results: Sequence[JobResult] | None = None,
    ) -> bool:
        """End a running job in `state` (a final one) with its summary or error; `results`, when
        given, replace the rows written so far (the final table, in its order). True when this
        call ended it, False when it had already left en_curso (nothing is written then)."""
        if state not in FINAL_STATES:
            raise ValueError(f"{state!r} is not a final job state")
        now = _now()
        values: dict[str, Any] = {"state": state, "updated_at": now, "finished_at": now,
                                  "summary": json_safe(summary), "error": error}  # fmt: skip
        if best is not None:
            values["best"] = json_safe(best)
        values |= {"done": done} if done is not None else {}
        values |= {"total": total} if total is not None else {}
        query = update(_jobs).where(_jobs.c.id == job_id, _jobs.c.state == RUNNING)
        with write_transaction(self._engine) as connection:
            if connection.execute(query.values(values)).rowcount != 1:
                return False
            if results is not None:
                connection.execute(delete(_results).where(_results.c.job_id == job_id))
                if results:
                    connection.execute(insert(_results), _result_rows(job_id, results))
        return True

    def requeue(self, job_id: int) -> bool:
        """Put an interrupted, cancelled or failed job back in the queue (`pendiente`), its rows
        kept for the resumed run; False when it is not in one of those states."""
        query = update(_jobs).where(_jobs.c.id == job_id, _jobs.c.state.in_(RESUMABLE))
        values = {"state": PENDING, "cancel_requested": False, "owner": None, "error": None,
                  "finished_at": None, "updated_at": _now()}  # fmt: skip
        with write_transaction(self._engine) as connection:
            return connection.execute(query.values(values)).rowcount == 1

    def running(self) -> list[Job]:
        """The jobs en_curso, oldest first (to check their owners are alive)."""
        query = select(_jobs).where(_jobs.c.state == RUNNING).order_by(_jobs.c.id)
        with read_connection(self._engine) as connection:
            return [_job(row) for row in connection.execute(query)]

    def results(
        self,
        job_id: int,
        limit: int = 100,
        offset: int = 0,
        order_by: str | None = None,
        descending: bool = True,
        daily: bool = False,
    ) -> list[JobResult]:
        """The job's result rows by ordinal, or by the metric `order_by` (rows without that
        metric last); their daily equity only when `daily` (a resume needs it, pages do not)."""
        columns = [c for c in _results.c if daily or c.name != "daily"]
        query = select(*columns).where(_results.c.job_id == job_id)
        if order_by is not None:
            value = _results.c.metrics[order_by].as_float()
            query = query.order_by((value.desc() if descending else value.asc()).nulls_last())
        query = query.order_by(_results.c.ordinal).limit(limit).offset(offset)
        with read_connection(self._engine) as connection:
            return [
                JobResult(row.ordinal, row.params, row.metrics, bool(row.feasible),
                          row.daily if daily else None)
                for row in connection.execute(query)
            ]  # fmt: skip

    def count_results(self, job_id: int) -> int:
        query = select(func.count()).select_from(_results).where(_results.c.job_id == job_id)
        with read_connection(self._engine) as connection:
            return int(connection.execute(query).scalar_one())
