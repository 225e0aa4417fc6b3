"""Shared fixtures: settings, databases (SQLite, PostgreSQL when available), demo exchange."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from config.settings import Settings, settings_from_mapping
from core.repository import Database

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"  # the browser tests' screenshots
POSTGRES_ENV = "TEST_DATABASE_URL"
_TABLES = (
    "candles, order_events, orders, crossovers, backtest_trades, backtest_runs, "
    "bot_commands, bot_events, bot_decisions, bot_trades, bots, job_results, jobs"
)


def pytest_configure(config: pytest.Config) -> None:
    """Once per run, before any parallel worker starts: the last run's screenshots go."""
    if not hasattr(config, "workerinput"):
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True)


def postgres_url() -> str:
    """The PostgreSQL server URL for tests; skip without one, except in CI where it must exist."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{POSTGRES_ENV} is not set under CI=true: .ci/run must start PostgreSQL")
        pytest.skip(f"{POSTGRES_ENV} not set: no PostgreSQL server to test against")
    return url


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_pg_database(server_url: str) -> str:
    """A brand-new empty database on the test server; returns its SQLAlchemy URL."""
    name = f"kryptelion_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    server, name = url.rsplit("/", 1)
    with psycopg.connect(_libpq(server + "/postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[Database]:
    url = create_pg_database(postgres_url())
    database = Database(url)
    yield database
    database.close()
    drop_pg_database(url)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Offline demo settings whose data folder and SQLite file live in a per-test temporary dir."""
    return settings_from_mapping({"DATA_DIR": str(tmp_path)})


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[Database]:
    """A migrated SQLite file of its own for each test."""
    database = Database(tmp_path / "test.db")
    yield database
    database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> Iterator[Database]:
    """The same test against a fresh SQLite file and against the real PostgreSQL server."""
    if request.param == "sqlite":
        database = Database(tmp_path / "test.db")
        yield database
        database.close()
        return
    database = request.getfixturevalue("_pg_database")
    with psycopg.connect(_libpq(database.url), autocommit=True) as connection:
        connection.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY")
    yield database


@pytest.fixture
def demo_exchange() -> Iterator:
    """A DemoExchangeThread at 60x speed with the fault routes, on a free 127.0.0.1 port."""
    from core.exchange.demo import DemoExchangeThread, DemoOptions

    exchange = DemoExchangeThread(DemoOptions(speed=60, faults=True)).start()
    yield exchange
    exchange.stop()


@pytest.fixture
def app(demo_exchange, tmp_path):
    """The Flask app on a fresh SQLite file, its market the demo exchange fixture."""
    from app import create_app

    settings = settings_from_mapping(
        {"DATA_DIR": str(tmp_path), "DEMO_PORT": str(demo_exchange.port)}
    )
    application = create_app(settings)
    yield application
    application.extensions["kryptelion"].db.close()


@pytest.fixture
def client(app):
    return app.test_client()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 20) -> bytes:
    """The body at `url` once something answers there."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url) as reply:
                return reply.read()
        except OSError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.1)


@dataclass
class RunningKryptelion:
    """A real `python run.py` (demo market, bridge, web) on free ports; output after exit."""

    ports: dict[str, int]
    pid: int
    out: str = ""
    err: str = ""


@contextmanager
def running_kryptelion(
    data_dir: Path, settings: dict[str, str] | None = None
) -> Iterator[RunningKryptelion]:
    ports = {name: free_port() for name in ("DEMO_PORT", "WEB_PORT", "BRIDGE_PORT")}
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "DATA_DIR": str(data_dir),
        **{name: str(port) for name, port in ports.items()},
        **(settings or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "run.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = RunningKryptelion(ports, process.pid)
    try:
        wait_for(f"http://127.0.0.1:{ports['WEB_PORT']}/health")
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        running.out, running.err = process.communicate(timeout=30)
