"""The dashboard's Bots panel in headless Chromium: paper bots hosted by the real bridge process
(DEMO_SPEED=60, a 1m candle a second), driven by the panel's buttons and followed live."""

from __future__ import annotations

import itertools
import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

FAST = {"rapida": 2, "lenta": 5}  # trades within a few candles
STOP, TARGET = 0.002, 0.004
LIVE_MS = 30_000  # a bot starts within ~2 s; generous for a loaded machine
_names = itertools.count(1)


def _post(stack, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{stack.web_url}{path}", data=data, method="POST",
        headers={"Content-Type": "application/json"} if data else {},
    )  # fmt: skip
    with urllib.request.urlopen(request) as reply:
        return json.load(reply)


def _bot(stack, **changes) -> dict:
    body = {
        "nombre": f"panel-{next(_names)}", "symbol": "BTCUSDT", "interval": "1m",
        "estrategia": "sma_cruce", "params": FAST, "modo": "paper", "capital": 1000.0,
        "stop_loss": STOP, "take_profit": TARGET, **changes,
    }  # fmt: skip
    return _post(stack, "/bots", body)


def _open(page, stack, bot: dict) -> None:
    """The dashboard with `bot` selected in the panel, live."""
    page.goto(f"{stack.web_url}/")
    page.wait_for_function("() => window.kryptelion && window.kryptelion.state.serie.length > 100")
    page.locator(f"#bots button[data-id='{bot['id']}']").click()
    expect(page.locator("#bot-nombre")).to_contain_text(bot["nombre"])


def _badge(page, text: str) -> None:
    expect(page.locator("#bot-estado")).to_have_text(text, timeout=LIVE_MS)


def test_the_panel_lists_a_created_bot_whose_badge_reaches_operando(page, stack):
    bot = _bot(stack, riesgo={"max_drawdown": 0.5, "max_posiciones": 1})
    _open(page, stack, bot)
    item = page.locator(f"#bots button[data-id='{bot['id']}']")
    expect(item).to_contain_text(bot["nombre"])
    expect(item).to_have_attribute("aria-pressed", "true")
    _badge(page, "operando")
    expect(item.locator(".estado")).to_have_text("operando")
    # The risk limits the bot was created with, and their use ("—" until the host measures it).
    drawdown = page.locator("#bot-riesgo tr[data-limite='max_drawdown'] td")
    expect(drawdown.nth(1)).to_have_text("50.00 %")
    expect(drawdown.nth(2)).to_have_text(re.compile(r"^(—|\d+\.\d{2} %)$"))
    expect(page.locator("#bot-riesgo tr[data-limite='max_posiciones'] td").nth(1)).to_have_text("1")
    expect(page.locator("#bot-riesgo tr[data-limite='max_exposicion'] td").nth(1)).to_have_text("—")


def test_pausing_and_resuming_from_the_buttons_changes_the_badge_live(page, stack):
    bot = _bot(stack)
    _open(page, stack, bot)
    _badge(page, "operando")
    page.click("#bot-pausar")
    expect(page.locator("#bot-aviso")).to_have_text("pausar: enviado")
    _badge(page, "pausado")  # only a bridge message changes it: the page does not poll
    page.click("#bot-reanudar")
    _badge(page, "operando")
    assert page.locator("#bot-error").inner_text() == ""


def test_a_refused_command_shows_the_409s_error(page, stack):
    bot = _bot(stack)
    _open(page, stack, bot)
    _badge(page, "operando")
    page.click("#bot-reanudar")  # an operating bot cannot be resumed
    expect(page.locator("#bot-error")).to_have_text(
        f"bot {bot['id']} is operando: reanudar is not allowed now (permitidos: parar, pausar)"
    )
    # Chromium logs the refused request itself: the one expected console error.
    page.console_errors[:] = [e for e in page.console_errors if "409" not in e]


# The open position with the entry marker of the latest trade (the open one's). A trade may close
# and the next open between two frames, and the marker arrives in its own message: the wait
# lasts until both sides agree, and a marker that never matches its side times out.
OPEN_TRADE = """(id) => {
    const k = window.kryptelion, stop = k.bots.lineas.stop, target = k.bots.lineas.objetivo;
    const entries = k.grafico.marcadores.markers()
        .filter(m => m.id?.startsWith(`bot-${id}-entrada-`));
    const entry = entries.reduce((a, m) => (a && a.time >= m.time ? a : m), null);
    const p = k.bots.posicion;
    if (!stop || !target || !entry || !p) return null;
    if (entry.text !== (p.lado === "compra" ? "L" : "S")) return null;
    return {stop: stop.options().price, target: target.options().price, lado: p.lado,
            entrada: p.entrada, marker: entry.text};
}"""


def test_an_open_trade_shows_its_entry_marker_and_its_stop_and_target_lines(page, stack):
    bot = _bot(stack)
    _open(page, stack, bot)
    handle = page.wait_for_function(OPEN_TRADE, arg=bot["id"], timeout=120_000, polling="raf")
    seen = handle.json_value()
    sign = 1 if seen["lado"] == "compra" else -1
    assert seen["marker"] == ("L" if sign == 1 else "S")
    assert seen["stop"] == pytest.approx(seen["entrada"] * (1 - sign * STOP), rel=1e-9)
    assert seen["target"] == pytest.approx(seen["entrada"] * (1 + sign * TARGET), rel=1e-9)
    # The trades the chart marks are the bot's stored ones.
    with urllib.request.urlopen(f"{stack.web_url}/bots/{bot['id']}/operaciones") as reply:
        stored = {t["entry_time"] // 1000 for t in json.load(reply)["operaciones"]}
    marked = page.evaluate(
        "(id) => window.kryptelion.grafico.marcadores.markers()"
        ".filter(m => m.id?.startsWith(`bot-${id}-entrada-`)).map(m => m.time)",
        bot["id"],
    )
    assert set(marked) <= stored and marked
    # A closed trade gets its exit marker, live (a stop this close is hit within a few candles).
    exited = (
        "(id) => window.kryptelion.grafico.marcadores.markers()"
        ".some(m => m.id?.startsWith(`bot-${id}-salida-`))"
    )
    page.wait_for_function(exited, arg=bot["id"], timeout=120_000)


def test_the_kill_switch_asks_first_then_stops_every_bot(page, stack):
    bot = _bot(stack)
    _open(page, stack, bot)
    _badge(page, "operando")
    kills = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/kill") and kills.append(r))
    dialog = page.locator("#kill-dialogo")
    page.click("#bot-kill")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancelar").click()
    expect(dialog).to_be_hidden()
    assert kills == [] and page.locator("#bot-estado").inner_text() == "operando"
    page.click("#bot-kill")
    with page.expect_response(lambda r: r.url.endswith("/kill")) as answer:
        dialog.get_by_role("button", name="Detener todo").click()
    assert answer.value.status == 202 and len(kills) == 1
    expect(page.locator("#bot-aviso")).to_contain_text("kill switch enviado")
    _badge(page, "detenido")
    # Every bot of the list, this test's and the earlier ones', ends stopped, live.
    badges = page.locator("#bots .estado")
    expect(badges).to_have_text(["detenido"] * badges.count(), timeout=LIVE_MS)
    with urllib.request.urlopen(f"{stack.web_url}/bots") as reply:
        assert {b["estado"] for b in json.load(reply)["bots"]} == {"detenido"}
