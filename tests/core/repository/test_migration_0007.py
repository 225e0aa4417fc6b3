"""Migration 0007: a database at 0006 keeps its job rows (with no daily equity) and gains
job_results.daily, exactly the model's column; the downgrade drops only that column."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from core.repository import Database
from core.repository.jobs import JobResult
from core.repository.migrate import _config
from core.repository.tables import Base
from tests.conftest import create_pg_database, drop_pg_database, postgres_url

OLD = JobResult(0, {"rapida": 5}, {"sharpe": 1.5}, True)


def _at_0006_with_a_result(target) -> int:
    database = Database(target, migrate=False)
    with database.engine.begin() as connection:
        command.upgrade(_config(connection), "0006")
    database.close()
    database = Database(target, migrate=False)
    with database.engine.begin() as connection:
        job = connection.exec_driver_sql(
            "INSERT INTO jobs (kind, state, request, done, total, phase, cancel_requested, "
            "created_at, updated_at) VALUES ('optimizacion', 'en_curso', '{}', 1, 2, "
            "'busqueda', false, 1, 1) RETURNING id"
        ).scalar_one()
        connection.exec_driver_sql(
            "INSERT INTO job_results (job_id, ordinal, params, metrics, feasible) VALUES "
            f"({job}, 0, '{{\"rapida\": 5}}', '{{\"sharpe\": 1.5}}', true)"
        )
    database.close()
    return int(job)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_upgrade_keeps_old_rows_and_stores_daily_equity(tmp_path, dialect):
    target = tmp_path / "old.db" if dialect == "sqlite" else create_pg_database(postgres_url())
    try:
        job = _at_0006_with_a_result(target)
        database = Database(target)
        assert database.revision() == Database.head()
        with database.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if "job" in repr(d)] == []
        assert database.jobs.results(job, daily=True) == [OLD]  # daily None: run again
        new = JobResult(1, {"rapida": 10}, {"sharpe": 0.5}, False, [1000.0, 1001.5])
        database.jobs.progress(job, 2, 2, "busqueda", None, [new])
        assert database.jobs.results(job, daily=True) == [OLD, new]
        assert database.jobs.results(job)[1].daily is None  # pages leave it out
        with database.engine.begin() as connection:
            command.downgrade(_config(connection), "0006")
        with database.engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("job_results")}
        assert "daily" not in columns and {"params", "metrics", "feasible"} <= columns
        database.close()
    finally:
        if dialect == "postgresql":
            drop_pg_database(str(target))
