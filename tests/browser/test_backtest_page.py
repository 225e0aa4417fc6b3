"""The backtest page (/backtest-ui) in headless Chromium against the real web app."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

pytestmark = pytest.mark.browser

BAD_REQUEST = re.compile(r"status of 400")
INVALID = re.compile(r"status of 422")


def _fetch(stack, path):
    with urllib.request.urlopen(f"{stack.web_url}{path}") as reply:
        return json.load(reply)


def _form(page, stack, **fields):
    page.goto(f"{stack.web_url}/backtest-ui")
    page.wait_for_selector("#bt-strategy option[value=sma_cruce]", state="attached")
    page.select_option("#bt-interval", "1h")
    page.fill("#bt-start", "2026-10-01")
    page.fill("#bt-end", "2026-10-20")
    for selector, value in fields.items():
        page.fill(f"#{selector}", value)


def test_a_backtest_from_the_form_shows_metrics_equity_trades_and_markers(page, stack):
    _form(page, stack, **{"bt-param-rapida": "5", "bt-param-lenta": "20", "bt-slippage": "2"})
    # Submitting disables the button and shows progress before the request is even sent.
    disabled, progress = page.evaluate("""() => {
        document.getElementById('bt-run').click();
        return [document.getElementById('bt-run').disabled,
                document.getElementById('bt-progreso').textContent];
    }""")
    assert disabled and progress.startswith("Ejecutando")
    page.wait_for_url(re.compile(r"run=\d+"))
    page.locator("#bt-metricas tr[data-metrica=trades] td").wait_for()
    run_id = int(page.url.rsplit("=", 1)[1])
    run = _fetch(stack, f"/backtest/{run_id}")
    assert run["params"]["rapida"] == 5 and run["params"]["lenta"] == 20
    shown = page.locator("#bt-metricas tr[data-metrica=trades] td").inner_text()
    assert shown == str(run["metricas"]["trades"]) and run["metricas"]["trades"] > 3
    assert page.locator("#bt-trades tbody tr").count() == len(run["trades"])
    page.wait_for_function("() => window.kryptelion.charts.precio.velas.data().length > 400")
    markers = page.evaluate("() => window.kryptelion.charts.precio.marcadores.markers()")
    entries = [m for m in markers if m["text"] in ("L", "S")]
    assert len(entries) == len(run["trades"])
    assert {m["time"] for m in entries} == {t["entry_time"] // 1000 for t in run["trades"]}
    equity = page.evaluate("() => window.kryptelion.charts.curva.data().map(p => p.value)")
    assert equity[-1] == pytest.approx(run["equity"][-1][1])
    drawdown = page.evaluate("() => window.kryptelion.charts.drawdown.data().map(p => p.value)")
    assert min(drawdown) == pytest.approx(run["metricas"]["max_drawdown"] * 100, abs=1e-6)
    assert not page.locator("#bt-progreso").inner_text()


def test_errors_show_next_to_their_field(page, stack):
    _form(page, stack, **{"bt-sl": "abc", "bt-param-rapida": "0"})
    page.click("#bt-run")
    error = page.locator("[data-error-for='params.rapida']")
    error.wait_for()
    assert "rapida" in error.inner_text()
    assert page.get_attribute("#bt-param-rapida", "aria-invalid") == "true"
    page.fill("#bt-param-rapida", "5")
    page.click("#bt-run")
    page.locator("[data-error-for=stop_loss]", has_text="atr").wait_for()
    assert not page.locator("[data-error-for='params.rapida']").inner_text()
    assert page.locator("#bt-resultados").is_hidden()  # nothing ran
    # Chromium logs each 400 reply as a console error: expected here, and only those.
    page.console_errors[:] = [e for e in page.console_errors if not BAD_REQUEST.search(e)]


def test_past_runs_are_listed_and_reopen(page, stack):
    _form(page, stack)
    page.click("#bt-run")
    page.wait_for_url(re.compile(r"run=\d+"))
    first = int(page.url.rsplit("=", 1)[1])
    page.fill("#bt-param-lenta", "50")
    page.click("#bt-run")
    page.wait_for_url(re.compile(rf"run=(?!{first}\b)\d+"))
    page.locator("#bt-runs li button", has_text=f"#{first} ").click()
    page.locator("#bt-titulo", has_text=f"#{first} ").wait_for()
    assert page.url.endswith(f"run={first}")
    # A reload opens the run named in the address, with the form as it was last submitted.
    page.reload()
    page.locator("#bt-titulo", has_text=f"#{first} ").wait_for()
    assert page.input_value("#bt-param-lenta") == "50"


def test_the_trailing_stop_is_sent_when_filled_and_its_error_shown_next_to_it(page, stack):
    _form(page, stack, **{"bt-trailing": "0.5"})
    page.click("#bt-run")
    page.locator("[data-error-for=trailing]", has_text="0.1").wait_for()
    assert page.get_attribute("#bt-trailing", "aria-invalid") == "true"
    assert page.locator("#bt-resultados").is_hidden()
    page.fill("#bt-trailing", "0.01")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/backtest")) as sent:
        page.click("#bt-run")
    assert sent.value.post_data_json["trailing"] == 0.01
    page.wait_for_url(re.compile(r"run=\d+"))
    first = int(page.url.rsplit("=", 1)[1])
    assert not page.locator("[data-error-for=trailing]").inner_text()
    page.fill("#bt-trailing", "")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/backtest")) as sent:
        page.click("#bt-run")
    assert "trailing" not in sent.value.post_data_json
    page.wait_for_url(re.compile(rf"run=(?!{first}\b)\d+"))
    page.console_errors[:] = [e for e in page.console_errors if not INVALID.search(e)]
