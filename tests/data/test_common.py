"""The one rule that turns a `db` argument into a database: a bare file name lives in DATA_DIR."""

from pathlib import Path

import pytest

from config.settings import settings_from_mapping
from core.repository import Database
from data.common import database_for, database_target


@pytest.fixture
def settings(tmp_path):
    return settings_from_mapping({"DATA_DIR": str(tmp_path / "datos")})


def test_none_is_the_configured_database(settings, tmp_path):
    assert database_target(None, settings) == f"sqlite:///{tmp_path / 'datos/datos_historicos.db'}"


@pytest.mark.parametrize("name", ["datos_historicos.db", Path("datos_historicos.db")])
def test_a_bare_file_name_is_the_default_database_file_in_data_dir(settings, tmp_path, name):
    assert database_target(name, settings) == tmp_path / "datos" / "datos_historicos.db"
    assert f"sqlite:///{database_target(name, settings)}" == settings.database_url


@pytest.mark.parametrize(
    "given",
    [
        "./datos_historicos.db",
        "sub/datos.db",
        "/abs/datos.db",
        "~/datos.db",
        "sqlite:///datos.db",
        "postgresql+psycopg://u@h:5432/db",
        ":memory:",
    ],
)
def test_a_directory_part_an_absolute_path_or_a_url_is_taken_as_given(settings, given):
    assert database_target(given, settings) == given


def test_database_for_opens_the_bare_name_in_data_dir_creating_the_folder(settings, tmp_path):
    with database_for("x.db", settings) as database:
        assert isinstance(database, Database)
    assert (tmp_path / "datos" / "x.db").is_file()
    open_database = Database(tmp_path / "y.db")
    with database_for(open_database, settings) as database:
        assert database is open_database  # a Database passed in is used and left open
    assert open_database.candles.count("BTCUSDT", "1m") == 0
    open_database.close()
