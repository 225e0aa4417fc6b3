"""The optimisation page (/optimizar) in headless Chromium against the real web app and its real
job processes: the form, live progress, the verdict, the ECharts views, cancelling, and the
way from a result to the backtest page."""

from __future__ import annotations

import json
import math
import re
import urllib.request

import pytest

from tests.waiting import until

pytestmark = pytest.mark.browser

JOB_MS = 180_000  # a job waits for candles and a free slot, on a CPU other work shares
INVALID = re.compile(r"status of 422")
START, END = "2026-10-01", "2026-10-20"
GRID = {"rapida": (5, 20, 5), "lenta": (20, 60, 20)}
GRID_BODY = {
    "symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cruce", "start_date": START,
    "end_date": END, "metodo": "grid", "objetivo": "sharpe", "restricciones": {"trades": 1},
    "espacio": {name: {"desde": a, "hasta": b, "paso": s} for name, (a, b, s) in GRID.items()},
    "slippage": 1.0,
}  # fmt: skip
OPTION = "(id) => echarts.getInstanceByDom(document.getElementById(id)).getOption()"


def _fetch(stack, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(f"{stack.web_url}{path}", data=data, headers=headers)
    with urllib.request.urlopen(request) as reply:
        return json.load(reply)


def _rows(stack, job_id):
    return _fetch(stack, f"/optimizaciones/{job_id}/resultados?limit=1000")["resultados"]


def _finished(stack, job_id):
    def ended():
        job = _fetch(stack, f"/optimizaciones/{job_id}")
        return job if job["estado"] not in ("pendiente", "en_curso") else None

    return until(ended, JOB_MS / 1000, f"optimizacion {job_id} ended")


@pytest.fixture(scope="module")
def grid_job(stack):
    """GRID_BODY run through the API (for the tests that reopen a finished optimisation)."""
    job_id = _fetch(stack, "/optimizaciones", GRID_BODY)["id"]
    assert _finished(stack, job_id)["estado"] == "terminada"
    return job_id


def _form(page, stack, start=START, end=END, space=GRID):
    page.goto(f"{stack.web_url}/optimizar")
    page.wait_for_selector("#op-strategy option[value=sma_cruce]", state="attached")
    page.select_option("#op-strategy", "sma_cruce")
    page.select_option("#op-interval", "1h")
    page.fill("#op-start", start)
    page.fill("#op-end", end)
    for name, (low, high, step) in space.items():
        page.select_option(f"#op-p-{name}-modo", "rango")
        page.fill(f"#op-p-{name}-desde", str(low))
        page.fill(f"#op-p-{name}-hasta", str(high))
        page.fill(f"#op-p-{name}-paso", str(step))


def _submit(page):
    """Click Optimizar; the id the API gave the job."""
    posted = lambda r: r.request.method == "POST" and r.url.endswith("/optimizaciones")  # noqa: E731
    with page.expect_response(posted) as reply:
        page.click("#op-run")
    assert reply.value.status == 202, reply.value.text()
    return reply.value.json()["id"]


def _shown(page, job_id, state="terminada"):
    page.locator(f"#op-estado[data-estado={state}]").wait_for(timeout=JOB_MS)
    page.wait_for_function(
        "(id) => window.kryptelion?.optimizacion?.job.id === id", arg=job_id, timeout=60_000
    )


def _half_up(x):
    return math.floor(x + 0.5)


def test_a_grid_from_the_form_shows_progress_verdict_heatmap_and_the_best(page, stack):
    _form(page, stack)
    page.fill("#op-min-trades", "1")
    assert page.inner_text("#op-combinaciones") == "12 combinaciones"
    job_id = _submit(page)
    assert page.url.endswith(f"/optimizar?id={job_id}")
    _shown(page, job_id)
    job = _fetch(stack, f"/optimizaciones/{job_id}")
    rows = _rows(stack, job_id)
    assert job["solicitud"]["espacio"] == {**GRID_BODY["espacio"], "modo": "ambos"}
    assert job["solicitud"]["restricciones"] == {"trades": 1}
    total = job["progreso"]["total"]
    bar = page.evaluate(
        "() => { const b = document.getElementById('op-barra'); return [b.value, b.max]; }"
    )
    assert bar == [total, total]
    # The heatmap: a canvas, one cell per (rapida, lenta) pair tried, the best cell the best.
    box = page.locator("#op-heatmap canvas").first.bounding_box()
    assert box["width"] > 300 and box["height"] > 200
    option = page.evaluate(OPTION, "op-heatmap")
    series = option["series"][0]
    pairs = {(r["params"]["rapida"], r["params"]["lenta"]) for r in rows}
    assert series["type"] == "heatmap" and len(series["data"]) == len(pairs) == 11
    assert option["xAxis"][0]["data"] == ["5", "10", "15", "20"]
    assert option["yAxis"][0]["data"] == ["20", "40", "60"]
    best = next(r for r in rows if r["params"] == job["mejor"]["params"])
    cell = next(d for d in series["data"] if d["n"] == best["n"])
    assert cell["value"][2] == pytest.approx(job["mejor"]["valor"])
    # The verdict: the API's PBO and DSR in words, the warning style when either is bad.
    pbo, dsr = job["pbo"], job["dsr"]
    assert pbo is not None and dsr is not None
    assert f"Probabilidad de sobreajuste {_half_up(pbo * 100)} %" in page.inner_text("#op-pbo")
    assert f"Sharpe deflactado {dsr:.2f}" in page.inner_text("#op-dsr")
    risky = pbo > 0.5 or dsr < 0.95
    assert ("aviso" in page.get_attribute("#op-veredicto", "class")) == risky
    assert page.locator("#op-avisos li").all_inner_texts() == job["avisos"]
    # The table: best first, marked; no Pareto, parallel or validation views for this run.
    first = page.locator("#op-top tbody tr").first
    assert first.get_attribute("data-n") == str(best["n"])
    assert "mejor" in first.get_attribute("class")
    for panel in ("#op-pareto-panel", "#op-paralelo-panel", "#op-validacion-panel", "#op-ejes"):
        assert page.locator(panel).is_hidden()
    assert page.locator("#op-cancelar").is_hidden()


def test_the_best_row_opens_in_the_backtest_page_with_its_parameters(page, stack, grid_job):
    page.goto(f"{stack.web_url}/optimizar?id={grid_job}")
    _shown(page, grid_job)
    job = _fetch(stack, f"/optimizaciones/{grid_job}")
    best = job["mejor"]["params"]
    page.locator("#op-top tbody tr").first.click()
    page.wait_for_url(re.compile(r"/backtest-ui\?run=\d+"), timeout=60_000)
    assert page.input_value("#bt-strategy") == "sma_cruce"
    assert page.input_value("#bt-interval") == "1h"
    assert page.input_value("#bt-start") == START and page.input_value("#bt-end") == END
    assert page.input_value("#bt-slippage") == "1"
    assert page.input_value("#bt-param-rapida") == str(best["rapida"])
    assert page.input_value("#bt-param-lenta") == str(best["lenta"])
    run = _fetch(stack, f"/backtest/{int(page.url.rsplit('=', 1)[1])}")
    assert {k: run["params"][k] for k in best} == best
    assert run["metricas"]["sharpe"] == pytest.approx(job["mejor"]["valor"])


def test_a_heatmap_cell_opens_its_combination_and_past_runs_reopen(page, stack, grid_job):
    page.goto(f"{stack.web_url}/optimizar")
    page.locator(f"#op-lista button[data-id='{grid_job}']").click()
    _shown(page, grid_job)
    assert page.url.endswith(f"/optimizar?id={grid_job}")
    assert page.input_value("#op-p-rapida-desde") == "5"
    assert page.input_value("#op-p-lenta-paso") == "20"
    row = next(r for r in _rows(stack, grid_job) if r["params"] == {"rapida": 10, "lenta": 60})
    # The centre of the cell (rapida 10, lenta 60): category indices 1 and 2.
    x, y = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('op-heatmap'))"
        ".convertToPixel({seriesIndex: 0}, [1, 2])"
    )
    box = page.locator("#op-heatmap canvas").first.bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url(re.compile(r"/backtest-ui\?run=\d+"), timeout=60_000)
    assert page.input_value("#bt-param-rapida") == "10"
    assert page.input_value("#bt-param-lenta") == "60"
    run = _fetch(stack, f"/backtest/{int(page.url.rsplit('=', 1)[1])}")
    assert run["metricas"]["trades"] == row["metricas"]["trades"]


def test_two_objectives_show_the_pareto_front(page, stack):
    _form(page, stack)
    page.select_option("#op-objetivo-2", "max_drawdown")
    job_id = _submit(page)
    _shown(page, job_id)
    job = _fetch(stack, f"/optimizaciones/{job_id}")
    assert job["objetivo"] == ["sharpe", "max_drawdown"] and job["pareto"]
    assert page.locator("#op-pareto-panel").is_visible()
    cloud, front = page.evaluate(OPTION, "op-pareto")["series"]
    assert len(cloud["data"]) == len(_rows(stack, job_id))
    assert all(set(r) == {"params", "metricas", "cumple"} for r in job["pareto"])
    front_metrics = [r["metricas"] for r in job["pareto"]]
    expected = sorted((m["sharpe"], m["max_drawdown"]) for m in front_metrics)
    shown = [tuple(d["value"]) for d in front["data"]]
    assert len(shown) == len(expected)
    for point, wanted in zip(shown, expected, strict=True):
        assert point == pytest.approx(wanted)


def test_walk_forward_shows_in_and_out_of_sample_per_window(page, stack):
    _form(page, stack, start="2026-09-01")
    page.select_option("#op-validacion", "walk_forward")
    page.fill("#op-ventanas", "3")
    job_id = _submit(page)
    _shown(page, job_id)
    validation = _fetch(stack, f"/optimizaciones/{job_id}")["validacion"]
    assert validation["tipo"] == "walk_forward" and len(validation["ventanas"]) == 3
    assert page.locator("#op-validacion-panel").is_visible()
    assert "3 ventanas" in page.inner_text("#op-validacion-resumen")
    option = page.evaluate(OPTION, "op-is-oos")
    assert option["xAxis"][0]["data"] == ["V1", "V2", "V3"]
    in_sample, out_of_sample = option["series"]
    for series, key in ((in_sample, "objetivo_is"), (out_of_sample, "objetivo_oos")):
        expected = [w[key] for w in validation["ventanas"]]
        assert [None if v == "-" else v for v in series["data"]] == pytest.approx(expected)
    curve = page.evaluate(OPTION, "op-equity-oos")["series"][0]["data"]
    assert len(curve) == len(validation["equity_oos"])
    assert curve[-1] == pytest.approx(validation["equity_oos"][-1])


def test_three_parameters_add_parallel_coordinates_and_axis_choices(page, stack):
    _form(page, stack)
    page.select_option("#op-p-modo-modo", "valores")  # every option of modo checked
    assert page.inner_text("#op-combinaciones") == "36 combinaciones"
    job_id = _submit(page)
    _shown(page, job_id)
    rows = _rows(stack, job_id)
    option = page.evaluate(OPTION, "op-paralelo")
    assert [a["name"] for a in option["parallelAxis"]] == ["rapida", "lenta", "modo", "sharpe"]
    assert len(option["series"][0]["data"]) == len(rows) == 33
    assert page.locator("#op-ejes").is_visible()
    page.select_option("#op-eje-x", "modo")
    page.wait_for_function(
        "(id) => echarts.getInstanceByDom(document.getElementById(id)).getOption()"
        ".xAxis[0].name === 'modo'",
        arg="op-heatmap",
    )
    heatmap = page.evaluate(OPTION, "op-heatmap")
    assert heatmap["xAxis"][0]["data"] == ["ambos", "solo_corto", "solo_largo"]
    assert heatmap["yAxis"][0]["name"] == "lenta"
    pairs = {(r["params"]["modo"], r["params"]["lenta"]) for r in rows}
    assert len(heatmap["series"][0]["data"]) == len(pairs) == 9


def test_a_sampler_searches_bounds_and_one_parameter_gets_a_bar_chart(page, stack):
    _form(page, stack, space={})
    page.select_option("#op-metodo", "tpe")
    page.fill("#op-intentos", "15")
    page.select_option("#op-p-rapida-modo", "limites")
    page.fill("#op-p-rapida-min", "2")
    page.fill("#op-p-rapida-max", "19")
    page.check("#op-p-rapida-log")
    page.select_option("#op-p-lenta-modo", "fijo")  # lenta keeps its default, 30
    assert page.inner_text("#op-combinaciones") == "15 intentos de un espacio continuo"
    with page.expect_request(lambda r: r.method == "POST" and "/optimizaciones" in r.url) as sent:
        job_id = _submit(page)
    body = sent.value.post_data_json
    assert body["metodo"] == "tpe" and body["intentos"] == 15
    assert body["espacio"] == {"rapida": {"min": 2, "max": 19, "log": True}, "lenta": 30,
                               "modo": "ambos"}  # fmt: skip
    _shown(page, job_id)
    rows = _rows(stack, job_id)
    assert 0 < len(rows) <= 15 and all(2 <= r["params"]["rapida"] <= 19 for r in rows)
    option = page.evaluate(OPTION, "op-heatmap")
    values = {str(r["params"]["rapida"]) for r in rows}
    assert option["series"][0]["type"] == "bar" and len(option["series"][0]["data"]) == len(values)
    assert sorted(option["xAxis"][0]["data"], key=int) == sorted(values, key=int)
    # Grid takes no bounds: choosing it turns them back into a range.
    page.select_option("#op-metodo", "grid")
    assert page.input_value("#op-p-rapida-modo") == "rango"
    assert page.locator("#op-intentos").is_disabled()


def test_a_long_run_shows_live_progress_and_can_be_cancelled(page, stack):
    space = {"rapida": (2, 60, 1), "lenta": (10, 300, 2)}
    _form(page, stack, start="2026-01-01", end="2026-10-30", space=space)
    job_id = _submit(page)
    page.wait_for_function(
        "() => document.getElementById('op-barra').value > 0", timeout=JOB_MS, polling=100
    )
    assert page.evaluate("() => document.getElementById('op-barra').max") == 59 * 146
    assert page.locator("#op-estado[data-estado=en_curso]").is_visible()
    page.locator("#op-mejor", has_text="Mejor hasta ahora: rapida=").wait_for(timeout=60_000)
    page.locator("#op-cuenta", has_text=re.compile(r"combinaciones · quedan ~\d+")).wait_for()
    page.click("#op-cancelar")
    page.locator("#op-estado[data-estado=cancelada]").wait_for(timeout=60_000)
    assert page.inner_text("#op-estado") == "cancelada"
    job = _fetch(stack, f"/optimizaciones/{job_id}")
    assert job["estado"] == "cancelada" and job["progreso"]["hechas"] < 59 * 146
    assert page.locator("#op-cancelar").is_hidden()
    assert page.locator("#op-veredicto").is_hidden()  # nothing measured on a cancelled run
    page.locator(f"#op-lista button[data-id='{job_id}']", has_text="cancelada").wait_for()


def test_errors_show_next_to_their_field(page, stack):
    _form(page, stack, space={"rapida": (20, 5, 5), "lenta": (20, 60, 20)})
    page.click("#op-run")
    error = page.locator("[data-error-for='espacio.rapida']")
    error.wait_for()
    assert "hasta" in error.inner_text()
    assert page.get_attribute(".op-param[data-param=rapida]", "aria-invalid") == "true"
    assert page.locator("#op-resultados").is_hidden()
    page.console_errors[:] = [e for e in page.console_errors if not INVALID.search(e)]
