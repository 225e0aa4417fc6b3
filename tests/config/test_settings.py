"""Settings: demo defaults, one-line errors naming the key, secrets never shown."""

import logging

import pytest

from config.errors import ConfigError
from config.settings import Secret, load_settings, normalize_ws_url, settings_from_mapping


def test_no_env_file_gives_offline_demo_defaults(tmp_path):
    settings = load_settings(tmp_path / "missing.env", environ={})
    assert settings.market == "demo"
    assert settings.trading_mode == "paper"
    assert settings.binance_rest_url == "http://127.0.0.1:9100"
    assert settings.binance_ws_url == "ws://127.0.0.1:9100"
    assert settings.web_host == "127.0.0.1" and settings.web_port == 5000
    assert settings.bridge_host == "127.0.0.1" and settings.bridge_port == 8765
    assert settings.database_url.endswith("/data/datos_historicos.db")
    assert settings.database_url.startswith("sqlite:////")


def test_environment_overrides_the_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("WEB_PORT=5001\nLOG_LEVEL=debug\n")
    settings = load_settings(env_file, environ={"WEB_PORT": "5002"})
    assert settings.web_port == 5002
    assert settings.log_level == "DEBUG"


def test_real_market_urls_and_legacy_ws_form():
    settings = settings_from_mapping(
        {"MARKET": "binance", "BINANCE_WS_URL": "wss://fstream.binance.com/ws"}
    )
    assert settings.binance_rest_url == "https://fapi.binance.com"
    assert settings.binance_ws_url == "wss://fstream.binance.com"
    testnet = settings_from_mapping({"MARKET": "testnet"})
    assert testnet.binance_rest_url == "https://testnet.binancefuture.com"
    assert normalize_ws_url("wss://stream.binancefuture.com/ws") == "wss://stream.binancefuture.com"
    assert (
        normalize_ws_url("wss://fstream.binance.com/market/stream") == "wss://fstream.binance.com"
    )


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"MARKET": "kraken"}, "MARKET"),
        ({"WEB_PORT": "99999"}, "WEB_PORT"),
        ({"BRIDGE_PORT": "0"}, "BRIDGE_PORT"),
        ({"DEMO_PORT": "http"}, "DEMO_PORT"),
        ({"DATABASE_URL": "mysql://u:p@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql+psycopg://u:p@host:notaport/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u:p@host:5432"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL"),
        ({"TRADING_MODE": "yolo"}, "TRADING_MODE"),
        ({"TRADING_MODE": "live", "MARKET": "binance"}, "LIVE_TRADING_CONFIRM"),
        ({"TRADING_MODE": "live", "LIVE_TRADING_CONFIRM": "yes"}, "MARKET"),
        (
            {"TRADING_MODE": "live", "LIVE_TRADING_CONFIRM": "yes", "MARKET": "binance"},
            "BINANCE_API_KEY",
        ),
        ({"TRADING_MODE": "testnet", "MARKET": "binance"}, "MARKET"),
        ({"TRADING_MODE": "testnet", "MARKET": "testnet"}, "BINANCE_API_KEY"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"DEMO_SPEED": "-3"}, "DEMO_SPEED"),
        ({"DEMO_SEED": "abc"}, "DEMO_SEED"),
        ({"MARKET": "binance", "BINANCE_WS_URL": "https://x"}, "BINANCE_WS_URL"),
        ({"WEB_HOST": "0.0.0.0"}, "API_TOKEN"),
        ({"BRIDGE_HOST": "192.168.1.5"}, "API_TOKEN"),
        ({"WEB_HOST": "bad host!"}, "WEB_HOST"),
    ],
)
def test_bad_value_gives_one_line_naming_the_key(env, key):
    with pytest.raises(ConfigError) as error:
        settings_from_mapping(env)
    message = str(error.value)
    assert message.startswith(f"{key}:")
    assert "\n" not in message


def test_non_loopback_binding_is_allowed_with_a_token():
    settings = settings_from_mapping({"WEB_HOST": "0.0.0.0", "API_TOKEN": "t0ken-value"})
    assert settings.web_host == "0.0.0.0"


def test_postgres_url_forms_are_normalised_to_psycopg():
    settings = settings_from_mapping({"DATABASE_URL": "postgres://u:pw@db.local:5433/k"})
    assert settings.database_url == "postgresql+psycopg://u:pw@db.local:5433/k"


def test_secrets_never_appear_in_repr_str_logs_or_errors(caplog):
    env = {
        "MARKET": "binance",
        "TRADING_MODE": "live",
        "LIVE_TRADING_CONFIRM": "yes",
        "BINANCE_API_KEY": "KEY-abcdef123456",
        "BINANCE_API_SECRET": "SECRET-987654zyx",
        "API_TOKEN": "TOKEN-5555",
        "DATABASE_URL": "postgresql+psycopg://trader:PW-hunter2@db:5432/k",
    }
    settings = settings_from_mapping(env)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s / %r", settings, settings)
    shown = repr(settings) + str(settings) + caplog.text
    for secret in ("KEY-abcdef123456", "SECRET-987654zyx", "TOKEN-5555", "PW-hunter2"):
        assert secret not in shown
    assert settings.binance_api_key.reveal() == "KEY-abcdef123456"
    assert "trader:***@db" in repr(settings)
    with pytest.raises(ConfigError) as error:
        settings_from_mapping({**env, "DATABASE_URL": "mysql://trader:PW-hunter2@db/k"})
    assert "PW-hunter2" not in str(error.value)


def test_secret_compares_by_value_but_hides_it():
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert "a" not in repr(Secret("a")) and not Secret("")


def test_testnet_mode_on_the_demo_market_needs_no_binance_keys():
    settings = settings_from_mapping({"TRADING_MODE": "testnet"})
    assert (settings.trading_mode, settings.market) == ("testnet", "demo")
    assert not settings.binance_api_key
