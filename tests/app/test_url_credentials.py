"""Credentials in BINANCE_REST_URL never reach a response body or a log record."""

import logging

import pytest

from app import create_app
from config.settings import settings_from_mapping
from tests.conftest import free_port

PASSWORD = "PW-s3cr3t-rest"


@pytest.fixture
def unreachable_client(tmp_path):
    """The app with a real market whose URL carries user:password and points at a closed port."""
    settings = settings_from_mapping(
        {
            "DATA_DIR": str(tmp_path),
            "MARKET": "binance",
            "BINANCE_REST_URL": f"http://trader:{PASSWORD}@127.0.0.1:{free_port()}",
        }
    )
    app = create_app(settings)
    yield app.test_client()
    app.extensions["kryptelion"].db.close()


def test_market_url_password_is_never_in_a_body_or_a_log(unreachable_client, caplog):
    with caplog.at_level(logging.DEBUG):
        velas = unreachable_client.get("/velas?symbol=BTCUSDT&interval=1h&limit=5")
        order = unreachable_client.post(
            "/ordenes", json={"symbol": "BTCUSDT", "lado": "compra", "cantidad": 0.01,
                              "precio": 29500.5},
        )  # fmt: skip
    assert velas.status_code == 200 and velas.json["velas"] == []
    assert velas.json["aviso"].startswith("exchange unreachable, stored candles only: ")
    assert "trader:***@127.0.0.1" in velas.json["aviso"]
    assert order.status_code == 502 and "trader:***@127.0.0.1" in order.json["error"]
    for text in (velas.get_data(as_text=True), order.get_data(as_text=True)):
        assert PASSWORD not in text
    assert caplog.records, "the retries should have been logged"
    leaked = [r.getMessage() for r in caplog.records if PASSWORD in r.getMessage()]
    assert leaked == []
