"""Jobs: long work stored with an id and run in its own process, at most JOBS_MAX at once.

A request only validates and stores the job (`pendiente`); the JobRunner of the web process
starts each pending job, oldest first, in a spawned process (numpy work in a thread would hold
the GIL the web app needs), claiming it `en_curso` for that process (`owner`, host:pid). The
process writes its progress and results and finishes the job; a process that dies first leaves
its job `interrumpida`, marked by the runner that watches it or, after a restart, by the next
app that finds the owner gone. A job process exits with the web process that started it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import psutil
from flask import Flask, current_app

from config.errors import KryptelionError
from config.settings import Settings
from core.repository import Database, Job
from core.repository.jobs import FAILED, INTERRUPTED, RUNNING

log = logging.getLogger(__name__)
WATCH_S = 1.0
# A process is a job's owner only if it started by the time it was recorded (the runner claims
# the job just before starting its process): a pid the system reused later is not the job's.
_PID_REUSE_SLACK_MS = 10_000


def host_name() -> str:
    return socket.gethostname()[:100]


def owner_of(pid: int) -> str:
    return f"{host_name()}:{pid}"


def owner_alive(owner: str | None, since_ms: int | None) -> bool | None:
    """Whether the process `owner` (host:pid) still runs; None when it is on another host (this
    one cannot tell)."""
    host, _, pid = (owner or "").rpartition(":")
    if host != host_name():
        return None
    if not pid.isdigit():
        return False
    try:
        started_ms = psutil.Process(int(pid)).create_time() * 1000
    except psutil.Error:  # NoSuchProcess, or a zombie nobody reaps
        return False
    return since_ms is None or started_ms <= since_ms + _PID_REUSE_SLACK_MS


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job's work function gets: the database, the settings and its stored job."""

    db: Database
    settings: Settings
    job: Job


# kind -> "module:function" run in the job process as function(context) -> finish kwargs.
WORK = {"optimizacion": "app.optimizaciones:run_job", "backtest": "app.backtests:run_backtest_job"}


class JobRunner:
    """Starts the pending jobs of one database in spawned processes, `slots` at a time, and
    watches them (a thread that lives while it has jobs to watch or start)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.slots = settings.jobs_max
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[int, BaseProcess] = {}
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def submit(self, kind: str, request: dict[str, Any]) -> Job:
        """Store a pending job of `kind` (validated already) and start it when a slot is free."""
        if kind not in WORK:
            raise ValueError(f"unknown job kind {kind!r}")
        job = self.db.jobs.create(kind, request)
        self.kick()
        return job

    def recover(self) -> list[int]:
        """Mark `interrumpida` the running jobs whose owner process on this host is gone (a
        killed app's); returns their ids. Then start what is pending."""
        lost = []
        for job in self.db.jobs.running():
            if job.id is None or job.id in self._processes:
                continue
            if owner_alive(job.owner, job.started_at) is False:
                reason = f"its process {job.owner} stopped before finishing it"
                if self.db.jobs.finish(job.id, INTERRUPTED, error=reason):
                    lost.append(job.id)
        if lost:
            log.warning("jobs %s were interrupted (their process is gone)", lost)
        if self.db.jobs.count(state="pendiente"):
            self.kick()
        return lost

    def kick(self) -> None:
        """Start pending jobs in the free slots, and the watcher if it is not running."""
        with self._lock:
            self._reap()
            self._launch()
            if self._processes and self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, daemon=True, name="jobs")
                self._watcher.start()

    def running_pids(self) -> dict[int, int]:
        """{job id: pid} of the job processes this runner started and that still run."""
        with self._lock:
            return {i: p.pid for i, p in self._processes.items() if p.pid and p.is_alive()}

    def close(self) -> None:
        """Stop this runner's job processes (their jobs become interrumpida)."""
        with self._lock:
            for process in self._processes.values():
                process.terminate()
            for process in self._processes.values():
                process.join(10)
            self._reap()

    def _launch(self) -> None:
        free = self.slots - len(self._processes)
        if free <= 0:
            return
        for job in self.db.jobs.pending(free):
            if job.id is None or self.db.jobs.start(job.id, owner_of(os.getpid())) is None:
                continue  # cancelled meanwhile, or another app took it
            process = self._context.Process(
                target=run_job, args=(self.settings, job.id), name=f"job-{job.id}"
            )
            try:
                process.start()
            except OSError as error:
                self.db.jobs.finish(job.id, FAILED, error=f"could not start its process: {error}")
                continue
            self.db.jobs.set_owner(job.id, owner_of(process.pid or 0))
            self._processes[job.id] = process
            free -= 1

    def _reap(self) -> None:
        for job_id, process in list(self._processes.items()):
            if process.is_alive():
                continue
            process.join()
            del self._processes[job_id]
            reason = f"its process stopped unexpectedly (exit code {process.exitcode})"
            if self.db.jobs.finish(job_id, INTERRUPTED, error=reason):
                log.error("job %s: %s", job_id, reason)

    def _watch(self) -> None:
        while True:
            with self._lock:
                try:
                    self._reap()
                    self._launch()
                except KryptelionError:  # the database is away: try again next round
                    log.exception("the job runner could not reach the database")
                if not self._processes:
                    self._watcher = None
                    return
                sentinels = [p.sentinel for p in self._processes.values()]
            wait(sentinels, timeout=WATCH_S)


def init_app(app: Flask, settings: Settings, db: Database) -> JobRunner:
    """The app's JobRunner, after marking the jobs a dead process left `interrumpida`."""
    runner = JobRunner(settings, db)
    app.extensions["kryptelion_jobs"] = runner
    runner.recover()
    return runner


def job_runner() -> JobRunner:
    """The JobRunner of the running app."""
    return current_app.extensions["kryptelion_jobs"]


def _work(kind: str) -> Callable[[JobContext], dict[str, Any]]:
    import importlib

    module, _, function = WORK[kind].partition(":")
    return getattr(importlib.import_module(module), function)


def run_job(settings: Settings, job_id: int) -> None:
    """In the job's process: run the claimed job and finish it in the state it ended in."""
    from app.backtest_pool import _start_worker

    _start_worker()  # below the web app's priority; exit with the web process
    logging.basicConfig(level=settings.log_level)
    db = Database(settings.database_url, migrate=False)
    try:
        job = db.jobs.get(job_id)
        if job.state != RUNNING:
            return
        try:
            outcome = _work(job.kind)(JobContext(db, settings, job))
        except KryptelionError as error:
            db.jobs.finish(job_id, FAILED, error=str(error))
            return
        except Exception as error:  # a bug: the message to the API, the traceback to the log
            log.exception("job %s failed", job_id)
            db.jobs.finish(job_id, FAILED, error=f"internal error: {type(error).__name__}: {error}")
            return
        state = outcome.pop("state")
        db.jobs.finish(job_id, state, **outcome)
    finally:
        db.close()
