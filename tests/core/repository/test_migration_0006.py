"""Migration 0006: a database at 0005 keeps what it stored and gains the jobs tables, whose
columns are exactly the models'; the downgrade drops only them."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from core.models import Bot
from core.repository import Database
from core.repository.jobs import JobResult
from core.repository.migrate import _config
from core.repository.tables import Base
from tests.conftest import create_pg_database, drop_pg_database, postgres_url


def _at_0005_with_a_bot(target) -> None:
    database = Database(target, migrate=False)
    with database.engine.begin() as connection:
        command.upgrade(_config(connection), "0005")
    database.close()
    database = Database(target, migrate=False)
    database.bots.create(Bot("viejo", "sma_cruce", "BTCUSDT", "1h"))
    assert database.revision() == "0005"
    database.close()


def _check_upgrade(target) -> None:
    _at_0005_with_a_bot(target)
    database = Database(target)
    try:
        assert database.revision() == Database.head()  # 0006 and every later migration
        assert database.bots.get_by_name("viejo").symbol == "BTCUSDT"
        with database.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if "job" in repr(d)] == []
        job = database.jobs.create("optimizacion", {"symbol": "BTCUSDT"})
        assert database.jobs.start(job.id, "host:1") is not None
        database.jobs.progress(job.id, 1, 1, "busqueda", None, [JobResult(0, {"rapida": 5})])
        assert database.jobs.results(job.id) == [JobResult(0, {"rapida": 5})]
    finally:
        database.close()


def test_sqlite_at_0005_upgrades_with_the_jobs_tables(tmp_path):
    _check_upgrade(tmp_path / "old.db")


def test_postgresql_at_0005_upgrades_with_the_jobs_tables():
    url = create_pg_database(postgres_url())
    try:
        _check_upgrade(url)
    finally:
        drop_pg_database(url)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_downgrade_to_0005_drops_only_the_jobs_tables(tmp_path, dialect):
    target = tmp_path / "down.db" if dialect == "sqlite" else create_pg_database(postgres_url())
    try:
        _at_0005_with_a_bot(target)
        database = Database(target)
        database.jobs.create("optimizacion", {})
        with database.engine.begin() as connection:
            before = set(inspect(connection).get_table_names()) - {"jobs", "job_results"}
            command.downgrade(_config(connection), "0005")
        assert database.revision() == "0005"
        with database.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == before
            assert connection.execute(text("SELECT name FROM bots")).scalars().all() == ["viejo"]
        database.close()
    finally:
        if dialect == "postgresql":
            drop_pg_database(str(target))
