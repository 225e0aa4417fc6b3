"""Opening a database that cannot be reached or created raises one redacted, one-line error."""

import pytest
from sqlalchemy.engine import make_url

from config.settings import settings_from_mapping
from core.errors import KryptelionError
from core.repository import Database, database_url
from tests.conftest import free_port


def test_unreachable_postgresql_names_database_url_without_the_password():
    # A password with @, : and / (as the user writes it in DATABASE_URL).
    settings = settings_from_mapping(
        {"DATABASE_URL": f"postgresql://trader:p@ss:w/rd@127.0.0.1:{free_port()}/k"}
    )
    with pytest.raises(KryptelionError) as error:
        Database(settings.database_url)
    message = str(error.value)
    assert message.startswith(
        "DATABASE_URL: cannot open postgresql+psycopg://trader:***@127.0.0.1:"
    )
    assert "Connection refused" in message and "\n" not in message
    for piece in ("p@ss", "ss:w", "w/rd"):
        assert piece not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_sqlite_file_in_a_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(KryptelionError) as error:
        Database(blocker / "sub" / "k.db", migrate=False)
    message = str(error.value)
    assert message.startswith(f"DATABASE_URL: cannot open sqlite:///{blocker / 'sub' / 'k.db'}: ")
    assert "Not a directory" in message and "\n" not in message


def test_a_password_holding_at_colon_and_slash_is_read_whole_and_never_shown(tmp_path):
    url = database_url("postgresql://trader:RET@99:9/x@db.local:5432/k")
    parsed = make_url(url)
    assert (parsed.password, parsed.host, parsed.port) == ("RET@99:9/x", "db.local", 5432)
    db = Database(tmp_path / "k.db")
    try:
        db.url = url  # redacted_url only formats the URL: no PostgreSQL server needed
        assert db.redacted_url() == "postgresql+psycopg://trader:***@db.local:5432/k"
    finally:
        db.close()


def test_an_unknown_option_in_a_postgresql_url_is_a_one_line_error():
    """libpq refuses the option before connecting (psycopg's ProgrammingError), not a traceback."""
    url = f"postgresql://trader:hunter2@127.0.0.1:{free_port()}/k?fooo=1"
    with pytest.raises(KryptelionError) as error:
        Database(url)
    message = str(error.value)
    assert message.startswith("DATABASE_URL: cannot open postgresql+psycopg://trader:***@")
    assert 'invalid connection option "fooo"' in message and "\n" not in message
    assert "hunter2" not in message
