"""`python run.py db backup|restore FILE` on SQLite and PostgreSQL: every row of every table
comes back, nothing is overwritten or replaced without --force, engines never mix, an older
backup is migrated to head, and a URL's password never reaches the output or pg_dump's argv."""

from __future__ import annotations

import math
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy import inspect, text

from core.intervals import MINUTE_MS
from core.models import (
    BacktestRun,
    Bot,
    BotDecision,
    BotTrade,
    BotTrigger,
    Candle,
    CrossKind,
    Crossover,
    Order,
    Side,
    Trade,
)
from core.repository import Database
from core.repository.backup import _pg_program
from core.repository.jobs import JobResult
from core.repository.migrate import _config
from core.repository.tables import Base
from tests.conftest import create_pg_database, drop_pg_database, postgres_url

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
OLD_REVISION = "0005"  # before the jobs tables (0006), so restoring it must migrate


def _run(*args: str, url: str, path: str | None = None) -> subprocess.CompletedProcess:
    """The real CLI, as tests/test_cli.py runs it, on the database `url`."""
    env = {"PATH": path or os.environ["PATH"], "PYTHONPATH": str(ROOT), "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "run.py", "db", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def new_database(tmp_path) -> Iterator[Callable[[str], str]]:
    """Makes brand-new empty databases of an engine ("sqlite" or "postgresql"); returns URLs."""
    made: list[str] = []

    def make(engine: str) -> str:
        if engine == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        made.append(create_pg_database(postgres_url()))
        return made[-1]

    yield make
    for url in made:
        drop_pg_database(url)


ENGINES = pytest.mark.parametrize("engine", ["sqlite", "postgresql"])


def _fill(url: str) -> None:
    """A row or more in every Kryptelion table, through the repositories."""
    db = Database(url)
    db.candles.upsert_candles(
        Candle("BTCUSDT", "1m", T0 + i * MINUTE_MS, 100.0 + i, 101.5, 99.25, 100.5, 3.0, trades=i)
        for i in range(5)
    )
    bot = db.bots.create(Bot("cruce", "sma_cruce", "BTCUSDT", "1m"))
    db.bots.update_status(bot.id, BotTrigger.START, actor="test", reason="arranque")
    db.bots.add_decision(BotDecision(bot.id, 60_000, 1.0, 100.5, "cruce al alza"))
    db.bots.open_trade(BotTrade(bot.id, Side.BUY, 60_000, 100.5, 0.5, fees=0.02))
    db.bots.add_command(bot.id, "pausar")
    db.orders.create(Order("BTCUSDT", Side.BUY, 0.01, 100.0, bot_id=bot.id), actor="bot")
    db.crossovers.add(
        [Crossover("BTCUSDT", "1m", t, CrossKind.GOLDEN, 100.0 + t, 1.0, 2.0) for t in (1, 2)]
    )
    trade = Trade(Side.SELL, 1000, 101.0, 2000, 99.5, 0.5, pnl=0.75, fees=0.04, exit_reason="tp")
    db.backtests.save(
        BacktestRun("BTCUSDT", "1h", "sma_cruce", {"rapida": 10}, 0, 10_000, 1000.0,
                    {"sharpe": 1.25, "profit_factor": math.inf}, trades=(trade,),
                    equity=((0, 1000.0), (5000, 1010.5)))
    )  # fmt: skip
    job = db.jobs.create("optimizacion", {"symbol": "BTCUSDT"})
    db.jobs.start(job.id, "host:1")
    db.jobs.progress(job.id, 1, 2, "busqueda", None, [JobResult(0, {"rapida": 5}, {"sharpe": 1})])
    db.close()


def _tables(url: str) -> dict[str, list[tuple]]:
    """Every table's rows (alembic_version included), ordered by primary key."""
    db = Database(url, migrate=False)
    inspector = inspect(db.engine)
    rows = {}
    with db.engine.connect() as connection:
        for name in sorted(inspector.get_table_names()):
            key = ", ".join(inspector.get_pk_constraint(name)["constrained_columns"])
            query = f'SELECT * FROM "{name}" ORDER BY {key}'
            rows[name] = [tuple(row) for row in connection.execute(text(query))]
    db.close()
    return rows


def _at_old_revision(url: str) -> None:
    database = Database(url, migrate=False)
    with database.engine.begin() as connection:
        command.upgrade(_config(connection), OLD_REVISION)
    database.close()
    database = Database(url, migrate=False)
    database.bots.create(Bot("viejo", "sma_cruce", "BTCUSDT", "1h"))
    database.close()


@ENGINES
def test_a_backup_restored_into_a_fresh_database_holds_every_row(engine, new_database, tmp_path):
    source, target, backup = new_database(engine), new_database(engine), tmp_path / "k.backup"
    _fill(source)
    before = _tables(source)
    assert set(before) == set(Base.metadata.tables) | {"alembic_version"}
    assert [name for name, rows in before.items() if not rows] == []
    saved = _run("backup", str(backup), url=source)
    assert saved.returncode == 0, saved.stderr
    head = Database.head()
    assert f"backed up to {backup}, schema at revision {head}" in saved.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".k.backup")]  # no temp left
    restored = _run("restore", str(backup), url=target)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.splitlines() == [
        f"{Database(target, migrate=False).redacted_url()}: restored {backup}, "
        f"schema at revision {head}"
    ]
    assert _tables(target) == before


def test_backup_never_overwrites_a_file_without_force(new_database, tmp_path):
    source, backup = new_database("sqlite"), tmp_path / "k.backup"
    _fill(source)
    backup.write_text("an older backup")
    refused = _run("backup", str(backup), url=source)
    assert (refused.returncode, refused.stderr) == (
        1,
        f"error: {backup} exists; --force overwrites it\n",
    )
    assert backup.read_text() == "an older backup"
    forced = _run("backup", str(backup), "--force", url=source)
    assert forced.returncode == 0, forced.stderr
    assert backup.read_bytes().startswith(b"SQLite format 3\x00")


@ENGINES
def test_restore_replaces_a_database_holding_rows_only_with_force(engine, new_database, tmp_path):
    source, target, backup = new_database(engine), new_database(engine), tmp_path / "k.backup"
    _fill(source)
    assert _run("backup", str(backup), url=source).returncode == 0
    other = Database(target)
    other.bots.create(Bot("otro", "sma_cruce", "ETHUSDT", "1h"))
    other.close()
    kept = _tables(target)
    refused = _run("restore", str(backup), url=target)
    assert refused.returncode == 1
    assert (
        refused.stderr.startswith("error: DATABASE_URL: ")
        and "holds rows in bots" in refused.stderr
    )
    assert "--force replaces everything" in refused.stderr
    assert _tables(target) == kept
    forced = _run("restore", str(backup), "--force", url=target)
    assert forced.returncode == 0, forced.stderr
    assert _tables(target) == _tables(source)


@ENGINES
def test_an_older_backup_is_restored_then_migrated_to_head(engine, new_database, tmp_path):
    source, target, backup = new_database(engine), new_database(engine), tmp_path / "old.backup"
    _at_old_revision(source)
    Database(target).close()  # a target already at head, empty: its jobs tables must go first
    assert _run("backup", str(backup), url=source).returncode == 0
    restored = _run("restore", str(backup), url=target)
    assert restored.returncode == 0, restored.stderr
    where = Database(target, migrate=False).redacted_url()
    head = Database.head()
    assert restored.stdout.splitlines() == [
        f"{where}: restored {backup}, schema at revision {OLD_REVISION}",
        f"{where}: migrated from {OLD_REVISION} to head {head}",
    ]
    database = Database(target, migrate=False)
    assert database.revision() == head
    assert [bot.name for bot in database.bots.list()] == ["viejo"]
    database.close()


@ENGINES
def test_a_backup_restores_only_into_its_own_engine(engine, new_database, tmp_path):
    source, backup = new_database(engine), tmp_path / "k.backup"
    _fill(source)
    assert _run("backup", str(backup), url=source).returncode == 0
    if engine == "sqlite":
        # No server listens on port 1: the engines are compared before anything is opened.
        target = "postgresql://kryptelion@127.0.0.1:1/otra"
        expected = "SQLite backup but DATABASE_URL postgresql+psycopg://kryptelion@127.0.0.1:1/otra"
        expected += " is PostgreSQL"
    else:
        target = new_database("sqlite")
        expected = f"PostgreSQL backup but DATABASE_URL {target} is SQLite"
    refused = _run("restore", str(backup), url=target)
    assert (refused.returncode, refused.stderr) == (1, f"error: {backup} is a {expected}\n")


def test_backup_and_restore_need_a_file_and_the_others_take_none(new_database):
    url = new_database("sqlite")
    for action in ("backup", "restore"):
        result = _run(action, url=url)
        assert result.returncode == 1
        assert result.stderr == f"error: FILE: db {action} needs the backup file to write or read\n"
    result = _run("current", "k.backup", url=url)
    assert result.stderr == "error: FILE: db current takes no file, got 'k.backup'\n"


PASSWORD = "Sx9-p@ss/w0rd?"  # its @, / and ? are percent-encoded in the URL


@pytest.fixture
def pg_role() -> Iterator[tuple[str, str, str]]:
    """A login role with PASSWORD and a fresh database owned by the server's superuser:
    (the role, its URL with the password, the superuser's libpq URL of that database).
    The test server trusts every login, but the password still travels in the URL."""
    url = create_pg_database(postgres_url())
    role = f"kryptelion_{uuid.uuid4().hex[:8]}"
    admin = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    yield role, f"postgresql://{role}:{PASSWORD}@{url.split('@', 1)[1]}", admin
    drop_pg_database(url)
    with psycopg.connect(admin.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f"DROP ROLE {role}")


def _recording_pg_dump(folder: Path) -> str:
    """A `pg_dump` first on PATH that writes down its argv and PGPASSWORD, then runs the real
    one (the very arguments the backup passes, seen from the child's side); returns PATH."""
    folder.mkdir()
    script = folder / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{folder}/argv"\n'
        f'printf "%s" "$PGPASSWORD" > "{folder}/password"\n'
        f'exec "{_pg_program("pg_dump")}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def test_a_password_in_the_url_never_shows_and_reaches_pg_dump_only_by_environment(
    pg_role, tmp_path
):
    role, url, admin = pg_role
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{admin.rsplit("/", 1)[1]}" OWNER TO {role}')
    _fill(url)  # the role migrates and fills its own database
    shim, backup = tmp_path / "bin", tmp_path / "k.backup"
    saved = _run("backup", str(backup), url=url, path=_recording_pg_dump(shim))
    assert saved.returncode == 0, saved.stderr
    argv = (shim / "argv").read_text()
    assert argv.splitlines()[0] == "--format=custom"
    assert (shim / "password").read_text() == PASSWORD
    for secret in (PASSWORD, "p@ss", "p%40ss"):
        assert secret not in saved.stdout + saved.stderr and secret not in argv
    assert f"{role}:***@" in saved.stdout


def test_a_failed_pg_dump_leaves_no_file_and_shows_no_password(pg_role, tmp_path):
    role, url, admin = pg_role
    _fill(admin)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"GRANT SELECT ON alembic_version TO {role}")  # but no other table
    backup = tmp_path / "k.backup"
    failed = _run("backup", str(backup), url=url)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"error: pg_dump failed for postgresql+psycopg://{role}:***@")
    assert "permission denied" in failed.stderr and PASSWORD not in failed.stderr
    assert list(tmp_path.iterdir()) == []  # neither FILE nor its temporary file
