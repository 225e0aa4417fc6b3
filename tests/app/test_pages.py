"""The page routes: rendered with the public settings only, and usable with the exchange down."""

from __future__ import annotations

import json
import re

from app import create_app
from config.settings import settings_from_mapping
from tests.conftest import free_port

CONFIG = re.compile(r'<script type="application/json" id="config">(.*?)</script>', re.S)


def _config(html: str) -> dict:
    return json.loads(CONFIG.search(html).group(1))


def test_pages_render_with_the_markets_symbols_and_the_demo_badge(client):
    for path in ("/", "/backtest-ui", "/backtest-ui?run=3", "/optimizar", "/optimizar?id=2"):
        reply = client.get(path)
        assert reply.status_code == 200 and reply.mimetype == "text/html"
        html = reply.get_data(as_text=True)
        config = _config(html)
        assert config["demo"] is True and "DEMO" in html
        assert "BTCUSDT" in config["symbols"] and "1m" in config["intervals"]
        assert "lightweight-charts.standalone.production.js" in html
    assert 'data-run="3"' in client.get("/backtest-ui?run=3").get_data(as_text=True)
    optimizar = client.get("/optimizar").get_data(as_text=True)
    assert "echarts.min.js" in optimizar and "echarts" not in client.get("/").get_data(as_text=True)
    assert _config(optimizar)["umbrales"] == {"pbo": 0.5, "dsr": 0.95}
    assert "volatility" in _config(optimizar)["menor_es_mejor"]
    assert client.get("/favicon.ico").mimetype == "image/svg+xml"


def test_pages_carry_no_secret(tmp_path, demo_exchange):
    secrets = {"BINANCE_API_KEY": "key-abc123", "BINANCE_API_SECRET": "secret-def456",
               "API_TOKEN": "token-ghi789"}  # fmt: skip
    settings = settings_from_mapping(
        {"DATA_DIR": str(tmp_path), "DEMO_PORT": str(demo_exchange.port), **secrets}
    )
    app = create_app(settings)
    try:
        for path in ("/", "/backtest-ui", "/optimizar"):
            html = app.test_client().get(path).get_data(as_text=True)
            assert not [value for value in secrets.values() if value in html]
    finally:
        app.extensions["kryptelion"].db.close()


def test_with_the_exchange_down_the_pickers_offer_the_stored_symbols(tmp_path):
    settings = settings_from_mapping({"DATA_DIR": str(tmp_path), "DEMO_PORT": str(free_port())})
    app = create_app(settings)
    db = app.extensions["kryptelion"].db
    try:
        prices = {name: [1.0] for name in ("open", "high", "low", "close", "volume")}
        db.candles.upsert("SOLUSDT", "1h", {"open_time": [0], **prices})
        reply = app.test_client().get("/")
        assert reply.status_code == 200
        assert _config(reply.get_data(as_text=True))["symbols"] == ["SOLUSDT"]
    finally:
        db.close()
