"""The dashboard (/) in headless Chromium against real demo exchange, web and bridge processes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

import indicadores
from core.models import CrossKind, Crossover
from core.repository import Database
from tests.browser.conftest import ARTIFACTS
from tests.conftest import ROOT, free_port, wait_for

pytestmark = pytest.mark.browser

LAST = "() => { const v = window.kryptelion.state.serie.ultima; return [v.open_time, v.close]; }"
BARS = "() => window.kryptelion.grafico.velas.data().length"
LIVE = "() => document.getElementById('conexion').dataset.estado === 'conectado'"
REFUSED = re.compile(r"WebSocket connection to .* failed|ERR_CONNECTION_REFUSED")


def _open(page, stack, query=""):
    page.goto(f"{stack.web_url}/{query}")
    page.wait_for_function("() => window.kryptelion && window.kryptelion.state.serie.length > 100")
    page.wait_for_function(LIVE)


def test_dashboard_shows_candles_volume_and_the_demo_badge(page, stack):
    _open(page, stack)
    assert page.locator("#badge-mercado").inner_text() == "DEMO"
    assert page.evaluate(BARS) >= 100
    # Both counts in one evaluation: a live candle may be appended between two.
    volume, candles = page.evaluate(
        "() => [window.kryptelion.grafico.volumen.data().length,"
        " window.kryptelion.grafico.velas.data().length]"
    )
    assert volume == candles
    # The chart's bars are the REST candles: same last closed close as /velas says.
    bars = page.evaluate("() => window.kryptelion.grafico.velas.data().map(b => [b.time, b.close])")
    with urllib.request.urlopen(
        f"{stack.web_url}/velas?symbol=BTCUSDT&interval=1m&limit=50"
    ) as reply:
        stored = {v["open_time"] // 1000: v["close"] for v in json.load(reply)["velas"]}
    shared = [(t, c) for t, c in bars if t in stored]
    assert len(shared) >= 40 and all(stored[t] == c for t, c in shared[:-2])
    assert page.locator("#grafico canvas").count() > 0


def test_a_live_update_moves_the_last_candle_and_a_new_one_is_appended(page, stack):
    _open(page, stack)
    first = page.evaluate(LAST)
    moved = f"([t, c]) => {{ const v = ({LAST})(); return v[0] !== t || v[1] !== c; }}"
    page.wait_for_function(moved, arg=first)
    # At 60x a candle closes every second: a new bar follows the last one on the chart.
    page.wait_for_function(f"([t]) => ({LAST})()[0] > t", arg=first)
    last_bar = page.evaluate("() => window.kryptelion.grafico.velas.data().at(-1)")
    open_time, close = page.evaluate(LAST)
    assert last_bar["time"] == open_time // 1000
    assert page.evaluate("() => window.kryptelion.stats.updates") > 0
    assert abs(last_bar["close"] - close) <= abs(close) * 0.01  # the bar follows the updates


def test_dragging_back_in_time_loads_older_history_without_gaps(page, stack):
    _open(page, stack)
    loaded = page.evaluate("() => window.kryptelion.state.serie.length")
    first = page.evaluate("() => window.kryptelion.state.serie.primera.open_time")
    box = page.locator("#grafico").bounding_box()
    y = box["y"] + box["height"] * 0.4
    for _ in range(15):  # drag the candles to the right, as a user scrolling back does
        page.mouse.move(box["x"] + 50, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] - 100, y, steps=8)
        page.mouse.up()
        if page.evaluate(f"() => window.kryptelion.state.serie.primera.open_time < {first}"):
            break
    page.wait_for_function(f"() => window.kryptelion.state.serie.primera.open_time < {first}")
    # Both read in one task of the page: a live candle may arrive between two evaluations.
    times, bars = page.evaluate(
        f"() => [window.kryptelion.state.serie.velas.map(v => v.open_time), ({BARS})()]"
    )
    steps = np.diff(times)
    assert len(times) > loaded and (steps == 60_000).all()  # older page joined, no gap, no dup
    assert bars == len(times)


def test_switching_symbol_reloads_and_is_remembered(page, stack):
    _open(page, stack)
    btc = page.evaluate(LAST)[1]
    page.select_option("#symbol", "ETHUSDT")
    page.wait_for_function(
        "() => window.kryptelion.state.serie.symbol === 'ETHUSDT' "
        "&& window.kryptelion.state.serie.length > 100"
    )
    eth = page.evaluate(LAST)[1]
    assert eth < btc / 5  # a different market's prices, not the old series
    assert "ETHUSDT" in page.locator("#leyenda").inner_text()
    page.reload()
    page.wait_for_function("() => window.kryptelion.state.serie.length > 100")
    assert page.locator("#symbol").input_value() == "ETHUSDT"


def test_an_indicator_toggles_on_in_its_own_pane_with_the_python_values(page, stack):
    _open(page, stack)
    panes = page.evaluate("() => window.kryptelion.grafico.chart.panes().length")
    page.check("#ind-rsi")
    page.wait_for_function("() => window.kryptelion.overlays.activas.has('rsi')")
    assert page.evaluate("() => window.kryptelion.grafico.chart.panes().length") == panes + 1
    closes, values = page.evaluate("""() => {
        const k = window.kryptelion;
        return [k.state.serie.velas.map(v => v.close),
                k.overlays.activas.get('rsi').lines.rsi.data().map(p => p.value ?? null)];
    }""")
    expected = indicadores.rsi(np.array(closes), 14)
    # The warm-up bars are whitespace on the chart, which data() leaves out.
    assert len(values) == len(closes) - 14 and np.isnan(expected[:14]).all()
    assert np.allclose(values, expected[14:], rtol=0, atol=1e-9)
    page.fill("#ind-rsi-period", "7")
    page.press("#ind-rsi-period", "Enter")
    rsi = "window.kryptelion.overlays.activas.get('rsi')"
    page.wait_for_function(f"() => {rsi}.params.period === 7")
    # The overlay and its parameter are remembered across a reload.
    page.reload()
    page.wait_for_function(f"() => {rsi} && {rsi}.params.period === 7")
    assert page.is_checked("#ind-rsi") and page.input_value("#ind-rsi-period") == "7"
    page.uncheck("#ind-rsi")
    page.wait_for_function(f"() => window.kryptelion.grafico.chart.panes().length === {panes}")


def test_an_order_is_created_and_cancelled_from_the_orders_panel(page, stack):
    _open(page, stack)
    page.fill("#orden-form [name=cantidad]", "0.01")
    page.fill("#orden-form [name=precio]", "50000")
    page.click("#orden-form button[type=submit]")
    row = page.locator("#ordenes tr").first
    row.locator("td", has_text="pendiente").wait_for()
    order_id = row.get_attribute("data-id")
    row.get_by_role("button", name=f"cancelar orden {order_id}").click()
    page.locator(f"#ordenes tr[data-id='{order_id}'] td", has_text="cancelada").wait_for()
    with urllib.request.urlopen(f"{stack.web_url}/ordenes/{order_id}") as reply:
        order = json.load(reply)
    assert (order["estado"], order["lado"], order["cantidad"]) == ("cancelada", "compra", 0.01)
    # The state filter asks /ordenes again: a cancelled order shows under "cancelada" only.
    page.select_option("#orden-filtro", "pendiente")
    page.locator(f"#ordenes tr[data-id='{order_id}']").wait_for(state="detached")
    page.select_option("#orden-filtro", "cancelada")
    page.locator(f"#ordenes tr[data-id='{order_id}']").wait_for()
    states = page.locator("#ordenes tr td:nth-child(5)").all_inner_texts()
    assert states and set(states) == {"cancelada"}


def test_the_page_recovers_after_the_bridge_restarts(page, stack):
    _open(page, stack)
    stack.restart_bridge()
    page.wait_for_function(f"() => ({LIVE})() && window.kryptelion.bridge.ws.readyState === 1")
    after_restart = page.evaluate(LAST)
    page.wait_for_function(f"([t]) => ({LAST})()[0] > t", arg=after_restart)
    # While the bridge was down, Chromium logs the refused reconnection attempts: expected here.
    page.console_errors[:] = [e for e in page.console_errors if not REFUSED.search(e)]


def test_the_page_shows_an_upstream_drop_and_recovers(page, stack):
    _open(page, stack)
    before = page.evaluate(LAST)
    demo = f"http://127.0.0.1:{stack.ports['DEMO_PORT']}"
    urllib.request.urlopen(urllib.request.Request(f"{demo}/_demo/fault/drop", method="POST"))
    # The bridge says upstream is reconnecting; the badge shows it, then goes live again.
    page.wait_for_function("() => window.kryptelion.stats.estados.includes('desconectado')")
    page.wait_for_function(LIVE)
    page.wait_for_function(f"([t]) => ({LAST})()[0] > t", arg=before)
    assert page.evaluate("() => window.kryptelion.stats.estados.at(-1)") == "conectado"


def test_the_metrics_panel_shows_the_system(page, stack):
    _open(page, stack)
    page.click("#panel-metricas summary")
    page.locator("#metricas dt", has_text="mercado").wait_for()
    assert page.locator("#metricas dd").first.inner_text() == "demo"


def test_phone_width_and_keyboard(browser, stack):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    try:
        _open(page, stack)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        assert page.locator("#grafico").bounding_box()["width"] > 300
        # Keyboard only: tab to the interval picker and change it.
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.id") == "interval":
                break
        assert page.evaluate("() => document.activeElement.id") == "interval"
        page.keyboard.press("ArrowDown")
        page.wait_for_function("() => window.kryptelion.state.serie.interval === '3m'")
        page.screenshot(path=str(ARTIFACTS / "phone_width.png"), full_page=True)
    finally:
        context.close()
    assert not errors


def test_stored_crossovers_and_live_signals_become_markers(page, stack):
    """Crossovers in the database (as the bridge stores them) show as markers and list items;
    then a live `senal` from the bridge's sma_cruce adds its own (at 60x one comes within
    a minute or so)."""
    _open(page, stack)
    times = page.evaluate("() => window.kryptelion.state.serie.velas.slice(-40, -30)"
                          ".map(v => [v.open_time, v.close])")  # fmt: skip
    db = Database(stack.data_dir / "datos_historicos.db")
    try:
        db.crossovers.add([
            Crossover("BTCUSDT", "1m", t, CrossKind.GOLDEN if i % 2 else CrossKind.DEATH, c, c, c)
            for i, (t, c) in enumerate(times[::3])
        ])  # fmt: skip
    finally:
        db.close()
    page.reload()
    page.wait_for_function("() => window.kryptelion.state.markers.length >= 4")
    markers = page.evaluate("() => window.kryptelion.grafico.marcadores.markers()")
    seeded = {t // 1000 for t, _ in times[::3]}
    assert seeded <= {m["time"] for m in markers if "cruce" in m["text"]}
    assert page.locator("#senales li.alcista", has_text="cruce alcista").count() >= 1
    live = "m => m.text.startsWith('sma_cruce')"
    page.wait_for_function(
        f"() => window.kryptelion.grafico.marcadores.markers().some({live})", timeout=150_000
    )
    assert page.locator("#senales li", has_text="sma_cruce").count() >= 1


def test_with_an_api_token_the_page_asks_for_it_once_and_keeps_it_for_the_tab(page, stack):
    port = free_port()
    env = {**stack.env, "WEB_PORT": str(port), "API_TOKEN": "s3cret-token"}
    web = subprocess.Popen([sys.executable, "run.py", "web"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    prompts = []

    def answer(dialog):
        prompts.append(dialog.message)
        dialog.accept("s3cret-token")

    page.on("dialog", answer)
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("() => window.kryptelion.state.serie.length > 100")
        for quantity in ("0.02", "0.03"):
            page.fill("#orden-form [name=cantidad]", quantity)
            page.fill("#orden-form [name=precio]", "40000")
            page.click("#orden-form button[type=submit]")
            page.locator("#ordenes td", has_text=quantity).first.wait_for()
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)
    assert len(prompts) == 1 and "API token" in prompts[0]
    assert page.evaluate("() => sessionStorage.getItem('kryptelion.token')") == "s3cret-token"
    assert page.evaluate("() => localStorage.getItem('kryptelion.token')") is None
    # The first refusal (401) is the expected console error; nothing else.
    page.console_errors[:] = [e for e in page.console_errors if "401" not in e]


def test_the_bridge_url_follows_the_page_behind_an_https_proxy(page, stack):
    """Over http the page opens the bridge's own port; a secure page (behind Caddy,
    deploy/gcp/Caddyfile) may only open wss on its own origin, under /ws."""
    url = f"{stack.web_url}/puente-js-test"
    html = '<!doctype html><link rel="icon" href="data:,">'
    page.route(url, lambda route: route.fulfill(content_type="text/html", body=html))
    page.goto(url)
    bases = page.evaluate(
        """async (cases) => {
        const { basePuente } = await import('/static/js/ws-handler.js');
        return cases.map(([protocol, host, hostname]) =>
            basePuente({protocol, host, hostname}, 8765));
    }""",
        [
            ["http:", "localhost:5000", "localhost"],
            ["https:", "trade.example.com", "trade.example.com"],
            ["https:", "example.org:8443", "example.org"],
        ],
    )
    assert bases == [
        "ws://localhost:8765",
        "wss://trade.example.com/ws",
        "wss://example.org:8443/ws",
    ]
