"""The dashboard's strategy selector: a strategy's signals over the loaded history (GET /senales)
become chart markers and Señales items, before any live crossover."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

HISTORY = """() => window.kryptelion.state.senales.map(m => [m.time, m.text])"""
ON_CHART = """() => window.kryptelion.grafico.marcadores.markers().map(m => m.id)"""
SIDE = {1.0: "largo", 0.0: "cierra", -1.0: "corto"}


def _signals(response) -> list:
    return [[s["open_time"] // 1000, SIDE[s["posicion"]]] for s in response.json()["senales"]]


def _shown(page, strategy: str, answer) -> None:
    """The page shows exactly the signals of its /senales `answer` for `strategy`."""
    expected = _signals(answer)
    assert expected, "the demo history has signals for every strategy"
    page.wait_for_function(f"() => ({HISTORY})().length === {len(expected)}")
    assert page.evaluate(HISTORY) == expected
    ids = set(page.evaluate(ON_CHART))
    assert {f"senal-{t * 1000}-{strategy}" for t, _ in expected} <= ids
    items = page.locator("#senales li[data-origen=historial]")
    expect(items).to_have_count(min(50, len(expected)))


def test_the_selected_strategys_history_signals_are_marked_and_listed(page, stack):
    with page.expect_response(lambda r: "/senales?" in r.url) as first:
        page.goto(f"{stack.web_url}/")
    assert "estrategia=sma_cruce" in first.value.url  # the default strategy
    page.wait_for_function("() => window.kryptelion.state.serie.length > 100")
    # As many candles as the chart loaded (live ones may have joined since).
    limit = int(parse_qs(urlsplit(first.value.url).query)["limit"][0])
    assert 100 < limit <= page.evaluate("() => window.kryptelion.state.serie.length")
    _shown(page, "sma_cruce", first.value)
    with page.expect_response(lambda r: "estrategia=rsi_reversion" in r.url) as other:
        page.select_option("#senal-estrategia", "rsi_reversion")
    _shown(page, "rsi_reversion", other.value)
    page.select_option("#senal-estrategia", "")
    page.wait_for_function(f"() => ({HISTORY})().length === 0")
    expect(page.locator("#senales li[data-origen=historial]")).to_have_count(0)
    # The choice is remembered across a reload.
    page.select_option("#senal-estrategia", "macd_tendencia")
    page.reload()
    expect(page.locator("#senal-estrategia")).to_have_value("macd_tendencia")
