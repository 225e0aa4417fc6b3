"""Binds and URL credentials: what counts as loopback, who needs API_TOKEN, what is shown."""

import pytest
from sqlalchemy.engine import make_url

from config.errors import ConfigError
from config.settings import Secret, is_loopback, redact_url, settings_from_mapping

LOOPBACK = ["127.0.0.1", "127.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "localhost"]
PUBLIC = ["0.0.0.0", "::", "[::]", "0", "192.168.1.5", "example.com", "127.0.0.1.nip.io"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_every_loopback_form_is_accepted_without_a_token(host):
    assert is_loopback(host)
    env = {"WEB_HOST": host, "BRIDGE_HOST": host, "DEMO_HOST": host}
    settings = settings_from_mapping(env)
    plain = host.strip("[]")  # the settings keep the form a socket can bind
    assert (settings.web_host, settings.bridge_host, settings.demo_host) == (plain, plain, plain)
    from config.settings import check_bind

    assert check_bind(host, Secret(""), "the web app") == plain


@pytest.mark.parametrize("host", PUBLIC)
@pytest.mark.parametrize("key", ["WEB_HOST", "BRIDGE_HOST", "DEMO_HOST"])
def test_a_public_bind_needs_api_token(host, key):
    from config.settings import check_bind

    assert not is_loopback(host)
    with pytest.raises(ConfigError) as error:
        settings_from_mapping({key: host})
    assert str(error.value).startswith("API_TOKEN:") and key in str(error.value)
    settings = settings_from_mapping({key: host, "API_TOKEN": "t0ken"})
    assert getattr(settings, key.lower()) == host.strip("[]")
    with pytest.raises(ConfigError, match="^API_TOKEN: required to serve the bridge on "):
        check_bind(host, Secret(""), "the bridge")


def test_an_ipv6_demo_host_gives_bracketed_market_urls():
    settings = settings_from_mapping({"DEMO_HOST": "[::1]", "DEMO_PORT": "9200"})
    assert settings.binance_rest_url == "http://[::1]:9200"
    assert settings.binance_ws_url == "ws://[::1]:9200"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:RET@999@h/db", "postgresql+psycopg://u:***@h/db"),
        ("postgresql+psycopg://u:p@ss:w/rd@db.local:5432/k", "postgresql+psycopg://u:***@db.local:5432/k"),
        ("postgresql+psycopg://u:a%40b@h:5/k", "postgresql+psycopg://u:***@h:5/k"),
        ("postgresql+psycopg://:only-pw@h/k", "postgresql+psycopg://:***@h/k"),
        ("postgresql+psycopg://h/k?user=u&password=PW-x&sslmode=require",
         "postgresql+psycopg://h/k?user=u&password=***&sslmode=require"),
        ("http://user:PASSWORD@exchange:8080", "http://user:***@exchange:8080"),
        ("postgresql+psycopg://u@h:5432/k", "postgresql+psycopg://u@h:5432/k"),
        ("sqlite:////data/a:b@c/k.db", "sqlite:////data/a:b@c/k.db"),
        ("https://fapi.binance.com", "https://fapi.binance.com"),
    ],
)  # fmt: skip
def test_redact_url_hides_the_whole_password(url, shown):
    assert redact_url(url) == shown


def test_redact_url_hides_passwords_inside_a_message():
    text = "http://user:PW@x@127.0.0.1:1 down; retry ws://a:b/c@h:2/ws later"
    assert redact_url(text) == "http://user:***@127.0.0.1:1 down; retry ws://a:***@h:2/ws later"


def test_a_database_password_with_at_colon_and_slash_is_understood_and_never_shown():
    env = {"DATABASE_URL": "postgresql://trader:p@ss:w/rd@db.local:5433/k"}
    settings = settings_from_mapping(env)
    url = make_url(settings.database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "trader",
        "p@ss:w/rd",
        "db.local",
        5433,
        "k",
    )
    shown = repr(settings) + redact_url(settings.database_url)
    for piece in ("p@ss", "ss:w", "w/rd"):
        assert piece not in shown
    assert "trader:***@db.local:5433/k" in shown


def test_market_urls_with_credentials_are_redacted_in_repr_and_errors():
    settings = settings_from_mapping(
        {
            "MARKET": "binance",
            "BINANCE_REST_URL": "http://user:PW-rest@127.0.0.1:1",
            "BINANCE_WS_URL": "ws://user:PW-ws@127.0.0.1:1",
        }
    )
    assert settings.binance_rest_url == "http://user:PW-rest@127.0.0.1:1"  # still usable
    assert "PW-rest" not in repr(settings) and "PW-ws" not in repr(settings)
    with pytest.raises(ConfigError) as error:
        settings_from_mapping({"MARKET": "binance", "BINANCE_WS_URL": "https://u:PW-bad@x"})
    assert "PW-bad" not in str(error.value)
