"""Several processes on one SQLite file, and schema migrations on fresh databases."""

import subprocess
import sys
import textwrap
from pathlib import Path

from core.repository import Database
from tests.conftest import create_pg_database, drop_pg_database, postgres_url

ROOT = Path(__file__).resolve().parents[3]
WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from core.repository import Database

    path, symbol = sys.argv[1], sys.argv[2]
    db = Database(path)  # both processes migrate the same fresh file at once
    for chunk in range(60):
        t = 1_704_067_200_000 + (chunk * 500 + np.arange(500, dtype=np.int64)) * 60_000
        price = np.full(500, 100.0 + chunk)
        cols = dict(open_time=t, open=price, high=price, low=price, close=price, volume=price)
        db.candles.upsert(symbol, "1m", cols)
        db.candles.upsert("SHARED", "1m", cols)  # both write the very same rows too
        db.candles.read_arrays(symbol, "1m", limit=100)
    print("ok")
    """
)


def test_two_processes_write_one_sqlite_file_at_once(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "shared.db"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), symbol],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for symbol in ("BTCUSDT", "ETHUSDT")
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err and out.strip() == "ok"
    db = Database(path)
    assert db.candles.count("BTCUSDT", "1m") == 30_000
    assert db.candles.count("ETHUSDT", "1m") == 30_000
    assert db.candles.count("SHARED", "1m") == 30_000
    assert db.candles.find_gaps("SHARED", "1m") == []


def test_sqlite_file_is_in_wal_mode_with_a_busy_timeout(sqlite_db):
    with sqlite_db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_fresh_sqlite_is_migrated_to_head_and_reopening_is_a_no_op(tmp_path):
    path = tmp_path / "fresh.db"
    assert Database(path, migrate=False).revision() is None
    db = Database(path)
    assert db.revision() == Database.head()
    db.candles.upsert(
        "BTCUSDT",
        "1m",
        {"open_time": [0], "open": [1], "high": [1], "low": [1], "close": [1], "volume": [1]},
    )
    assert Database(path).candles.count("BTCUSDT", "1m") == 1


def test_fresh_postgresql_database_is_migrated_to_head():
    url = create_pg_database(postgres_url())
    try:
        assert Database(url, migrate=False).revision() is None
        db = Database(url)
        assert db.revision() == Database.head()
        assert db.size_bytes() > 0 and "postgresql" in db.redacted_url()
        db.close()
    finally:
        drop_pg_database(url)
