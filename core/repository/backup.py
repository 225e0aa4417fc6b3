"""Backups of a whole Kryptelion database to one file and back: SQLite's backup API, pg_dump."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, inspect, literal_column, select, table
from sqlalchemy.engine import make_url

from config.settings import redact_url
from core.errors import DatabaseError, DataError
from core.repository import Database
from core.repository.engine import BUSY_TIMEOUT_MS, CONNECT_TIMEOUT_S, database_url
from core.repository.migrate import MIGRATIONS_DIR, head_revision
from core.repository.tables import Base

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
PG_DUMP_HEADER = b"PGDMP"  # pg_dump --format=custom
PG_CLIENT_PACKAGE = "postgresql-client"
ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
VERSION_TABLE = "alembic_version"
# Where Debian and Ubuntu install each PostgreSQL version's programs (`/usr/bin` holds wrappers).
DEBIAN_PG_DIRS = Path("/usr/lib/postgresql")
# URL query parameters as libpq's environment variables: pg_dump and pg_restore get the whole
# connection through the environment, so no credential ever shows in `ps`.
_LIBPQ_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE",
    "user": "PGUSER", "password": "PGPASSWORD", "passfile": "PGPASSFILE", "service": "PGSERVICE",
    "options": "PGOPTIONS", "application_name": "PGAPPNAME", "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL", "sslcrldir": "PGSSLCRLDIR", "sslsni": "PGSSLSNI",
    "sslcompression": "PGSSLCOMPRESSION", "sslcertmode": "PGSSLCERTMODE",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION", "requirepeer": "PGREQUIREPEER",
    "require_auth": "PGREQUIREAUTH", "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE", "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB",
    "connect_timeout": "PGCONNECT_TIMEOUT", "client_encoding": "PGCLIENTENCODING",
    "target_session_attrs": "PGTARGETSESSIONATTRS", "load_balance_hosts": "PGLOADBALANCEHOSTS",
}  # fmt: skip
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE \S+ (\S+) ", re.MULTILINE)


class BackupFileError(DataError):
    """The backup FILE cannot be written, or is not a Kryptelion backup this code can restore."""

    field = "FILE"


@dataclass(frozen=True, slots=True)
class BackupReport:
    """A finished backup: where it is, the schema revision it holds and its size."""

    path: Path
    revision: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """A finished restore: the backup's schema revision and, if older than head, the head the
    schema was then migrated to."""

    path: Path
    revision: str
    migrated_to: str | None


def backup_database(target: str | Path, path: str | Path, force: bool = False) -> BackupReport:
    """Copy the database `target` names into `path`, consistent even while others write.

    `path` appears only once complete. Raises BackupFileError when `path` exists (unless
    `force`) or cannot be written, DatabaseError when the database cannot be read or dumped.
    """
    url, path = database_url(target), Path(path)
    _check_destination(path, force)
    source = _sqlite_file(url, must_exist=True) if _engine_of(url) == "sqlite" else None
    if source is not None and path.exists() and path.samefile(source):
        raise BackupFileError(f"{path} is the database itself; back it up to another file")
    env = None if source is not None else _libpq_env(url)  # a bad query parameter fails first
    database = Database(url, migrate=False)
    try:
        revision = database.revision()
    finally:
        database.close()
    if revision is None:
        raise DatabaseError(f"DATABASE_URL: {redact_url(url)} has no Kryptelion schema to back up")
    with _replacing(path) as partial:
        if source is not None:
            _sqlite_copy(source, partial, url)
        else:
            _run_pg("pg_dump", ["--format=custom", f"--file={partial}"], url, env)
    log.debug("backed up %s at revision %s to %s", redact_url(url), revision, path)
    return BackupReport(path, revision, path.stat().st_size)


def restore_database(target: str | Path, path: str | Path, force: bool = False) -> RestoreReport:
    """Replace the database `target` names by the backup in `path`, then migrate it to head.

    Raises BackupFileError when `path` is not a backup of the target's engine or holds a
    revision this code does not know; DatabaseError when the target holds rows (unless
    `force`), cannot be opened, or the restore fails.
    """
    url, path = database_url(target), Path(path)
    kind, engine = backup_kind(path), _engine_of(url)
    if kind != engine:
        raise BackupFileError(
            f"{path} is a {ENGINE_NAMES[kind]} backup but DATABASE_URL {redact_url(url)} is "
            f"{ENGINE_NAMES.get(engine, engine)}"
        )
    revision = _backup_revision(path, kind)
    env = _libpq_env(url) if kind == "postgresql" else None  # a bad query parameter fails first
    database = Database(url, migrate=False)  # creates a missing SQLite file and its folder
    try:
        filled = _filled_tables(database.engine)
        if filled and not force:
            raise DatabaseError(
                f"DATABASE_URL: {database.redacted_url()} holds rows in {', '.join(filled)}; "
                "--force replaces everything in it"
            )
        if env is None:
            _sqlite_restore(path, _sqlite_file(url, must_exist=True), url)
        else:
            _pg_restore(path, database.engine, url, env)
    finally:
        database.close()
    migrated_to = None
    if revision != head_revision():
        Database(url).close()  # opening migrates
        migrated_to = head_revision()
    log.debug("restored %s from %s at revision %s", redact_url(url), path, revision)
    return RestoreReport(path, revision, migrated_to)


def backup_kind(path: Path) -> str:
    """The backup's engine, "sqlite" or "postgresql", by its first bytes; raises BackupFileError."""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as error:
        raise BackupFileError(f"{path}: cannot read it ({error.strerror})") from None
    if header == SQLITE_HEADER:
        return "sqlite"
    if header.startswith(PG_DUMP_HEADER):
        return "postgresql"
    raise BackupFileError(f"{path} is neither a SQLite file nor a pg_dump custom-format backup")


def _engine_of(url: str) -> str:
    return make_url(url).get_backend_name()


def _sqlite_file(url: str, must_exist: bool) -> Path:
    name = make_url(url).database
    if not name or name == ":memory:":
        raise DatabaseError(
            "DATABASE_URL: an in-memory SQLite database has no file to back up or restore"
        )
    path = Path(name)
    if must_exist and not path.is_file():
        raise DatabaseError(f"DATABASE_URL: no SQLite file at {path}")
    return path


def _check_destination(path: Path, force: bool) -> None:
    if path.is_dir():
        raise BackupFileError(f"{path} is a folder; name the backup file inside it")
    if path.exists() and not force:
        raise BackupFileError(f"{path} exists; --force overwrites it")
    if not path.parent.is_dir():
        raise BackupFileError(f"{path}: folder {path.parent} does not exist")


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` that becomes `path` only when the block succeeds, so a
    failed backup never leaves a partial file under the real name (nor replaces an old one)."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(descriptor)
    partial = Path(name)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _sqlite_copy(source: Path, destination: Path, url: str) -> None:
    try:
        with (
            closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_MS / 1000)) as src,
            closing(sqlite3.connect(destination)) as dst,
        ):
            # One step (pages=-1, the default) copies a single snapshot, even under WAL writers.
            src.backup(dst)
            # A self-contained file: no -wal beside it is needed to read it.
            dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as error:
        raise DatabaseError(f"DATABASE_URL: backup of {redact_url(url)} failed: {error}") from None


def _sqlite_restore(backup: Path, target: Path, url: str) -> None:
    if backup.samefile(target):
        raise BackupFileError(f"{backup} is the database itself; nothing to restore")
    try:
        with (
            closing(sqlite3.connect(_read_only_uri(backup), uri=True)) as src,
            closing(sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000)) as dst,
        ):
            src.backup(dst)  # through SQLite's pager: the target's WAL stays consistent
    except sqlite3.Error as error:
        raise DatabaseError(
            f"DATABASE_URL: restore into {redact_url(url)} failed: {error}"
        ) from None


def _read_only_uri(path: Path) -> str:
    # immutable: a backup file has no writer, so SQLite needs no lock nor -wal/-shm beside it.
    return f"{path.resolve().as_uri()}?mode=ro&immutable=1"


def _backup_revision(path: Path, kind: str) -> str:
    """The schema revision stored in the backup; raises BackupFileError if it has none or one
    this code does not know (a backup made by a newer Kryptelion)."""
    if kind == "sqlite":
        try:
            with closing(sqlite3.connect(_read_only_uri(path), uri=True)) as connection:
                row = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
        except sqlite3.Error:
            row = None
        revision = row[0] if row else None
    else:
        script = _run_pg(
            "pg_restore",
            ["--data-only", f"--table={VERSION_TABLE}", "--file=-", str(path)],
            str(path),
        )
        revision = _copied_value(script, VERSION_TABLE)
    if revision is None:
        raise BackupFileError(f"{path} holds no Kryptelion schema revision ({VERSION_TABLE})")
    try:
        ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(revision)
    except CommandError:
        raise BackupFileError(
            f"{path} is at schema revision {revision}, which this Kryptelion (head "
            f"{head_revision()}) does not know: restore it with the version that made it"
        ) from None
    return revision


def _copied_value(script: str, table_name: str) -> str | None:
    """The first value of a one-column table's COPY block in a pg_restore SQL script."""
    lines = script.splitlines()
    for number, line in enumerate(lines[:-1]):
        if line.startswith("COPY ") and f"{table_name} " in line and lines[number + 1] != "\\.":
            return lines[number + 1]
    return None


def _filled_tables(engine: Engine) -> list[str]:
    """The Kryptelion tables of the database that hold at least one row."""
    present = set(inspect(engine).get_table_names()) & set(Base.metadata.tables)
    with engine.connect() as connection:
        return [
            name
            for name in sorted(present)
            if connection.execute(
                select(literal_column("1")).select_from(table(name)).limit(1)
            ).first()
        ]


def _pg_restore(path: Path, engine: Engine, url: str, env: dict[str, str]) -> None:
    # --clean only drops what the dump holds: a table of a newer revision than the backup's
    # (say a target migrated to head) would stay and break the migration after the restore.
    dumped = set(_TOC_TABLE.findall(_run_pg("pg_restore", ["--list", str(path)], str(path))))
    ours = set(Base.metadata.tables) | {VERSION_TABLE}
    extra = sorted((set(inspect(engine).get_table_names()) & ours) - dumped)
    if extra:
        log.info("dropping %s, absent from %s", ", ".join(extra), path)
        with engine.begin() as connection:
            for name in extra:
                connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}" CASCADE')
    engine.dispose()  # no connection of ours left open while pg_restore drops tables
    # Owners and grants name roles a new server may lack. An empty connection URI: libpq takes
    # every part, the password too, from the environment.
    options = ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction"]
    options += ["--dbname=postgresql://", str(path)]
    _run_pg("pg_restore", options, url, env)


def _libpq_env(url: str) -> dict[str, str]:
    """The environment that makes libpq programs connect where `url` points (credentials
    included), on top of ours as psycopg would see it."""
    parsed = make_url(url)
    env = {**os.environ, "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S)}
    for key, value in parsed.query.items():
        if key not in _LIBPQ_ENV:
            raise DatabaseError(
                f"DATABASE_URL: query parameter {key!r} has no libpq environment variable "
                "for pg_dump and pg_restore"
            )
        env[_LIBPQ_ENV[key]] = value if isinstance(value, str) else value[-1]
    parts = {
        "PGHOST": parsed.host, "PGPORT": parsed.port, "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password, "PGDATABASE": parsed.database,
    }  # fmt: skip
    env.update({name: str(value) for name, value in parts.items() if value is not None})
    return env


def _run_pg(program: str, args: list[str], about: str, env: dict[str, str] | None = None) -> str:
    """`program`'s standard output; raises DatabaseError naming `about` (redacted) and its
    first error line when it fails."""
    command = [_pg_program(program), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        cause = next((line for line in lines if "error:" in line), lines[0] if lines else "")
        raise DatabaseError(f"{program} failed for {redact_url(about)}: {redact_url(cause)}")
    return result.stdout


def _pg_program(name: str) -> str:
    """The path of a PostgreSQL client program: on PATH, else Debian's newest version."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(DEBIAN_PG_DIRS.glob(f"*/bin/{name}"), key=lambda p: _version(p.parts[-3]))
    if versions:
        return str(versions[-1])
    raise DatabaseError(f"{name} not found: install the {PG_CLIENT_PACKAGE} package")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))
