"""app/static/js/indicadores.js in headless Chromium against the Python package `indicadores`:
same warm-up NaNs and the same values (within 1e-9 of each line's scale) on real demo candles."""

from __future__ import annotations

import inspect
import json
import urllib.request

import numpy as np
import pytest

import indicadores

pytestmark = pytest.mark.browser

# name, positional arguments after the series
CASES = [
    ("sma", [1]), ("sma", [20]), ("sma", [200]),
    ("ema", [1]), ("ema", [9]), ("ema", [50]),
    ("wma", [1]), ("wma", [10]), ("wma", [100]),
    ("bollinger", []), ("bollinger", [50, 2.5]), ("bollinger", [5, 0]),
    ("rsi", []), ("rsi", [1]), ("rsi", [7]), ("rsi", [30]),
    ("macd", []), ("macd", [5, 35, 5]), ("macd", [1, 2, 1]),
]  # fmt: skip
# Lines come back as {line name: list with null for NaN}, a single line named after the function.
RUN = """async ([name, args, inputs]) => {
    const m = await import('/static/js/indicadores.js');
    const plain = (line) => Array.from(line, (v) => (Number.isNaN(v) ? null : v));
    return inputs.map((values, index) => {
        const series = values.map((v) => v ?? NaN);
        const out = m[name](index ? series : Float64Array.from(series), ...args);
        const lines = out instanceof Float64Array ? {[name]: out} : out;
        return Object.fromEntries(Object.entries(lines).map(
            ([line, v]) => [line, v instanceof Float64Array ? plain(v) : 'not a Float64Array']));
    });
}"""


def _klines(port: int, query: str) -> list[list]:
    url = f"http://127.0.0.1:{port}/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1500{query}"
    with urllib.request.urlopen(url) as reply:
        return json.load(reply)


@pytest.fixture(scope="module")
def inputs(stack) -> list[np.ndarray]:
    """3,000 consecutive 1m BTCUSDT closes, and a copy with 7 leading NaNs and 2 inside."""
    port = stack.ports["DEMO_PORT"]
    latest = _klines(port, "")
    earlier = _klines(port, f"&endTime={latest[0][0] - 1}")
    closes = np.array([float(row[4]) for row in earlier + latest])
    assert len(closes) == 3000 and np.all(np.diff([row[0] for row in earlier + latest]) == 60_000)
    gappy = closes.copy()
    gappy[:7] = gappy[1500] = gappy[2200] = np.nan
    return [closes, gappy]


@pytest.fixture
def blank(page, stack):
    """A blank page on the web app's origin (for the module import). Its data: icon spares the
    favicon.ico request, whose 404 (a console error) arrives at random times after /health."""
    url = f"{stack.web_url}/indicadores-js-test"
    html = '<!doctype html><link rel="icon" href="data:,">'
    page.route(url, lambda route: route.fulfill(content_type="text/html", body=html))
    page.goto(url)
    return page


def _nulls(x: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in x]


def _lines(name: str, result) -> dict[str, np.ndarray]:
    return {name: result} if isinstance(result, np.ndarray) else result._asdict()


@pytest.mark.parametrize(("name", "args"), CASES, ids=[f"{n}{a}" for n, a in CASES])
def test_matches_python(blank, inputs, name, args) -> None:
    results = blank.evaluate(RUN, [name, args, [_nulls(x) for x in inputs]])
    for x, got in zip(inputs, results, strict=True):
        want = _lines(name, getattr(indicadores, name)(x, *args))
        assert list(got) == list(want), "line names differ from the Python NamedTuple's"
        for line, expected in want.items():
            assert isinstance(got[line], list), f"{line}: {got[line]}"
            actual = np.array([np.nan if v is None else v for v in got[line]], dtype=float)
            assert len(actual) == len(x), line
            nan = np.isnan(expected)
            np.testing.assert_array_equal(np.isnan(actual), nan, err_msg=f"NaN of {line}")
            assert not nan.all(), f"{line} is all NaN: a useless comparison"
            scale = np.abs(expected[~nan]).max()
            np.testing.assert_allclose(actual[~nan], expected[~nan], rtol=0, atol=1e-9 * scale)


BAD = [
    ("sma", [0], "period"), ("ema", [2.5], "period"), ("wma", ["5"], "period"),
    ("rsi", [-3], "period"), ("bollinger", [True], "period"), ("bollinger", [20, -1], "k"),
    ("macd", [0, 26, 9], "fast"), ("macd", [12, 26.5, 9], "slow"), ("macd", [12, 26, 0], "signal"),
    ("macd", [26, 12, 9], "fast"),
]  # fmt: skip


def test_bad_parameters_throw_range_error_like_python_value_error(blank) -> None:
    errors = blank.evaluate(
        """async (cases) => {
            const m = await import('/static/js/indicadores.js');
            return cases.map(([name, args]) => {
                try { m[name]([1, 2, 3], ...args); return 'no error'; }
                catch (error) { return `${error.name}: ${error.message}`; }
            });
        }""",
        [[name, args] for name, args, _ in BAD],
    )
    for (name, args, param), error in zip(BAD, errors, strict=True):
        assert error.startswith(f"RangeError: {param} "), (name, args, error)
        with pytest.raises(ValueError, match=param):
            getattr(indicadores, name)([1.0, 2.0, 3.0], *args)


def test_registry_defaults_compute(blank, inputs) -> None:
    registry = blank.evaluate(
        """async ([closes]) => {
            const {INDICADORES} = await import('/static/js/indicadores.js');
            return Object.entries(INDICADORES).map(([key, spec]) => {
                const params = Object.fromEntries(spec.params.map((p) => [p.name, p.default]));
                const out = spec.compute(closes, params);
                const lines = Object.entries(out).map(([line, v]) => [line, v instanceof
                    Float64Array && v.length === closes.length && Number.isFinite(v.at(-1))]);
                return {key, pane: spec.pane, lines: spec.lines, params, computed: lines};
            });
        }""",
        [_nulls(inputs[0])],
    )
    assert [spec["key"] for spec in registry] == ["sma", "ema", "bollinger", "rsi", "macd"]
    for spec in registry:
        assert spec["computed"] == [[line, True] for line in spec["lines"]], spec
        python = inspect.signature(getattr(indicadores, spec["key"])).parameters
        for param, default in spec["params"].items():
            assert python[param].default in (default, inspect.Parameter.empty), (spec, param)
    assert {spec["key"]: spec["pane"] for spec in registry} == {
        "sma": "price", "ema": "price", "bollinger": "price", "rsi": "rsi", "macd": "macd"
    }  # fmt: skip
