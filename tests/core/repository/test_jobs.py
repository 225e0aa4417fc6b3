"""db.jobs on SQLite and PostgreSQL: a job's states change once each, progress appends result
rows, finishing replaces them, non-finite numbers are stored as null, metrics order the rows."""

import math

import pytest
from sqlalchemy import text

from core.errors import NotFoundError
from core.repository.jobs import JobResult

REQUEST = {"symbol": "BTCUSDT", "espacio": {"rapida": [5, 10]}}


@pytest.fixture
def jobs(db):
    """db.jobs on an empty jobs table (the shared PostgreSQL database outlives one test)."""
    if db.dialect == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("TRUNCATE job_results, jobs RESTART IDENTITY"))
    return db.jobs


def _row(ordinal: int, sharpe: float) -> JobResult:
    return JobResult(ordinal, {"rapida": ordinal}, {"sharpe": sharpe, "trades": ordinal}, True)


def test_a_job_is_created_claimed_once_and_finished_once(jobs):
    job = jobs.create("optimizacion", REQUEST)
    assert (job.id, job.state, job.request, job.done, job.cancel_requested) == (
        1, "pendiente", REQUEST, 0, False,
    )  # fmt: skip
    assert jobs.get(1) == job
    assert [j.id for j in jobs.pending(5)] == [1]
    started = jobs.start(1, "host:1")
    assert started is not None and (started.state, started.owner) == ("en_curso", "host:1")
    assert started.started_at is not None
    assert jobs.start(1, "host:2") is None  # a second process cannot run it too
    assert jobs.pending(5) == [] and [j.id for j in jobs.running()] == [1]
    assert jobs.finish(1, "terminada", summary={"dsr": 0.5}, done=2, total=2)
    assert not jobs.finish(1, "error", error="late")  # finished once
    final = jobs.get(1)
    assert (final.state, final.summary, final.error, final.done) == ("terminada", {"dsr": 0.5},
                                                                     None, 2)  # fmt: skip
    assert final.finished and final.finished_at is not None


def test_progress_appends_rows_and_finish_replaces_them(jobs):
    job_id = jobs.create("optimizacion", REQUEST).id
    jobs.progress(job_id, 1, 3, "busqueda", results=[_row(0, 1.0)])  # not running: ignored
    assert jobs.count_results(job_id) == 0 and jobs.get(job_id).done == 0
    jobs.start(job_id, "host:1")
    jobs.progress(job_id, 1, 3, "busqueda", {"params": {"rapida": 0}}, [_row(0, 1.0)])
    jobs.progress(job_id, 3, 3, "busqueda", None, [_row(1, 3.0), _row(2, 2.0)])
    job = jobs.get(job_id)
    assert (job.done, job.total, job.phase) == (3, 3, "busqueda")
    assert job.best == {"params": {"rapida": 0}}
    assert [r.ordinal for r in jobs.results(job_id)] == [0, 1, 2]
    assert [r.ordinal for r in jobs.results(job_id, order_by="sharpe")] == [1, 2, 0]
    assert [r.ordinal for r in jobs.results(job_id, order_by="sharpe", descending=False)] == [
        0, 2, 1,
    ]  # fmt: skip
    assert [r.ordinal for r in jobs.results(job_id, limit=1, offset=1)] == [1]
    assert jobs.finish(job_id, "terminada", results=[_row(0, 9.0)])
    assert jobs.results(job_id) == [_row(0, 9.0)]


def test_non_finite_numbers_are_stored_as_null_and_sort_last(jobs):
    job_id = jobs.create("optimizacion", {"x": math.nan}).id
    assert jobs.get(job_id).request == {"x": None}
    jobs.start(job_id, "host:1")
    rows = [_row(0, math.inf), _row(1, 1.0), _row(2, math.nan)]
    jobs.progress(job_id, 3, 3, "busqueda", {"valor": -math.inf}, rows)
    assert jobs.get(job_id).best == {"valor": None}
    stored = jobs.results(job_id, order_by="sharpe")
    assert [(r.ordinal, r.metrics["sharpe"]) for r in stored] == [(1, 1.0), (0, None), (2, None)]
    jobs.finish(job_id, "terminada", summary={"pbo": math.nan, "avisos": [math.inf]})
    assert jobs.get(job_id).summary == {"pbo": None, "avisos": [None]}


def test_cancel_a_pending_job_at_once_and_flag_a_running_one(jobs):
    pending = jobs.create("optimizacion", REQUEST).id
    job, changed = jobs.request_cancel(pending)
    assert changed and (job.state, job.cancel_requested) == ("cancelada", True)
    assert jobs.start(pending, "host:1") is None
    running = jobs.create("optimizacion", REQUEST).id
    jobs.start(running, "host:1")
    assert not jobs.cancel_requested(running)
    job, changed = jobs.request_cancel(running)
    assert changed and (job.state, job.cancel_requested) == ("en_curso", True)
    assert jobs.cancel_requested(running)
    jobs.finish(running, "cancelada")
    job, changed = jobs.request_cancel(running)
    assert not changed and job.state == "cancelada"
    with pytest.raises(NotFoundError):
        jobs.request_cancel(99)


def test_listing_newest_first_with_filters(jobs):
    for _ in range(3):
        jobs.create("optimizacion", REQUEST)
    jobs.create("backtest", REQUEST)
    jobs.start(1, "host:1")
    assert [j.id for j in jobs.find()] == [4, 3, 2, 1]
    assert [j.id for j in jobs.find(kind="optimizacion", limit=2, offset=1)] == [2, 1]
    assert [j.id for j in jobs.find(state="en_curso")] == [1]
    assert (jobs.count(), jobs.count("optimizacion"), jobs.count(state="pendiente")) == (4, 3, 3)
    with pytest.raises(NotFoundError):
        jobs.get(42)
    with pytest.raises(ValueError):
        jobs.finish(1, "en_curso")
