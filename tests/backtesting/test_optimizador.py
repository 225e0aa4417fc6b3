"""optimizar: every row is ejecutar_backtest's, the search space is checked, the samplers are
reproducible, Pareto fronts and constraints hold, validation never sees the future, and the
overfitting measures, progress and cancellation behave as documented."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backtesting import validacion as val
from backtesting.optimizador import (
    DSR_LIMIT,
    PBO_LIMIT,
    Cancelled,
    optimizar,
    parse_space,
    random_combinations,
)
from backtesting.simulador import ejecutar_backtest, prepare
from backtesting.sweep import day_ends, evaluate
from core.errors import DataError
from estrategias.factory import crear_estrategia
from tests.estrategias.helpers import synthetic_velas

HOUR_MS = 3_600_000
SMA_GRID = {"rapida": [5, 10, 20, 40], "lenta": [10, 20, 40, 80]}
BOUNDS = {"rapida": (2, 30), "lenta": (31, 150)}
SAMPLERS = ("aleatorio", "tpe", "genetico", "cmaes")


def hourly(n: int, seed: int = 5, drift: float = 0.0) -> pd.DataFrame:
    """The shared synthetic candles, one an hour (so `n` of them span many days: PBO needs 16)
    and with a multiplicative trend of `drift` a bar."""
    velas = synthetic_velas(n, seed)
    velas["open_time"] = velas["open_time"].iloc[0] + np.arange(n, dtype=np.int64) * HOUR_MS
    trend = np.exp(drift * np.arange(n))
    for column in ("open", "high", "low", "close"):
        velas[column] = velas[column] * trend
    return velas


@pytest.fixture(scope="module")
def velas() -> pd.DataFrame:
    return hourly(2_000, seed=5, drift=2e-4)


def _assert_rows_are_backtests(
    result: Any, velas: pd.DataFrame, strategy: str, names: list[str], **backtest: Any
) -> None:
    table = result.resultados
    assert len(table) > 0
    for row in table.to_dict("records"):
        params = {name: row[name] for name in names}
        single = ejecutar_backtest(velas, crear_estrategia(strategy, **params), **backtest)
        for key, expected in single.metricas.items():
            got = row[key]
            if expected is None:
                assert isinstance(got, float) and math.isnan(got), (params, key, got)
            else:
                assert got == expected, (params, key, got, expected)
        assert row["trades"] == len(single.trades)


def test_every_grid_row_is_ejecutar_backtest_and_refused_ones_are_counted(velas) -> None:
    result = optimizar(velas, "sma_cruce", SMA_GRID)
    refused = sum(r >= s for r in SMA_GRID["rapida"] for s in SMA_GRID["lenta"])
    valid = {(r, s) for r in SMA_GRID["rapida"] for s in SMA_GRID["lenta"] if r < s}
    assert refused > 0 and result.omitidas == refused
    assert result.probadas == len(result.resultados) == len(valid)
    params = set(zip(result.resultados["rapida"], result.resultados["lenta"], strict=True))
    assert params == valid
    assert (result.resultados["trades"] > 0).all()
    _assert_rows_are_backtests(result, velas, "sma_cruce", ["rapida", "lenta"])


@pytest.mark.parametrize("desde", [None, 500])
def test_the_sweep_s_daily_equity_is_the_backtest_s_at_each_day_s_last_candle(velas, desde):
    """A sweep keeps only the equity PBO and the deflated Sharpe read, without building the
    curve; those values are the backtest's own, with funding (a per-bar term) included."""
    backtest = {"funding": 0.0001, "stop_loss": 0.02}
    if desde is not None:
        backtest["desde"] = int(velas["open_time"].iloc[desde])
    setup = prepare(velas, **backtest)
    ends = day_ends(setup)
    combos = [{"rapida": 3, "lenta": 20}, {"rapida": 9, "lenta": 40}, {"rapida": 5, "lenta": 4}]
    for item in evaluate(setup, "sma_cruce", combos, ends):
        if item.refused:
            assert item.daily_equity is None
            continue
        single = ejecutar_backtest(velas, crear_estrategia("sma_cruce", **item.params), **backtest)
        curve = single.equity.set_index("open_time")["equity"]
        times = velas["open_time"].to_numpy()[ends]
        assert np.array_equal(item.daily_equity, curve.loc[times].to_numpy())
        assert item.daily_equity[-1] == single.metricas["final_equity"]


def test_costs_and_risk_arguments_reach_every_row(velas) -> None:
    costs = {"slippage": 5.0, "apalancamiento": 3, "stop_loss": 0.02, "take_profit": "2atr",
             "trailing": 0.01, "funding": 0.0001}  # fmt: skip
    result = optimizar(velas, "sma_cruce", SMA_GRID, capital=5_000, comision=0.0005, **costs)
    plain = optimizar(velas, "sma_cruce", SMA_GRID)
    assert not result.resultados["final_equity"].equals(plain.resultados["final_equity"])
    _assert_rows_are_backtests(
        result, velas, "sma_cruce", ["rapida", "lenta"], capital=5_000, comision=0.0005, **costs
    )


def test_rsi_reversion_rows_are_ejecutar_backtest(velas) -> None:
    space = {"periodo": [7, 14], "sobreventa": [30.0, 45.0], "sobrecompra": [65.0, 75.0],
             "salida": [40.0, 50.0]}  # fmt: skip
    result = optimizar(velas, "rsi_reversion", space)
    assert result.omitidas == 2 * 2  # sobreventa 45 > salida 40, for each periodo and sobrecompra
    assert len(result.resultados) == 16 - 4
    _assert_rows_are_backtests(result, velas, "rsi_reversion", list(space))


# --- the search space ------------------------------------------------------------------------


def test_unknown_parameter_is_named_with_a_suggestion(velas) -> None:
    with pytest.raises(DataError, match=r"'rapdia'.*did you mean 'rapida'"):
        optimizar(velas, "sma_cruce", {"rapdia": [5, 10], "lenta": [20]})


@pytest.mark.parametrize(
    ("espacio", "options", "pattern"),
    [
        ({"rapida": (5, 10), "lenta": [20, 30]}, {}, "grid takes ranges or lists"),
        ({"rapida": range(5, 5), "lenta": [20]}, {}, "rapida has no values"),
        ({"rapida": (10, 5), "lenta": [20]}, {"metodo": "aleatorio"}, "rapida needs low < high"),
        ({"rapida": (0.5, 5, "log")}, {"metodo": "aleatorio"}, "rapida"),
        ({"rapida": (5, 10, "cubic")}, {"metodo": "aleatorio"}, "rapida bounds"),
        ({"rapida": [5, 10]}, {"metodo": "gradiente"}, "^metodo:"),
        ({"rapida": [5, 10]}, {"objetivo": "sharp"}, "^objetivo:.*did you mean 'sharpe'"),
        ({"rapida": [5, 10]}, {"objetivo": []}, "^objetivo:"),
        ({"rapida": [5, 10]}, {"validacion": "holdout"}, "^validacion:"),
        ({"rapida": [5, 10]}, {"workers": 0}, "^workers:"),
        ({"rapida": [5, 10]}, {"workers": True}, "^workers:"),
        ({"rapida": [5, 10]}, {"workers": "2"}, "^workers:"),
        ({"rapida": [5, 10]}, {"intentos": 0}, "^intentos:"),
        ({"rapida": [5, 10]}, {"restricciones": {"trade": 3}}, "did you mean 'trades'"),
        (
            {"rapida": [5, 10]},
            {"validacion": "walk_forward", "opciones_validacion": {"ventanas": 0}},
            "^opciones_validacion:",
        ),
        (
            {"rapida": [5, 10]},
            {"validacion": "kfold_purgado", "opciones_validacion": {"folds": 1}},
            "^opciones_validacion:.*folds",
        ),
        (
            {"rapida": [5, 10]},
            {"validacion": "walk_forward", "opciones_validacion": {"ventana": 3}},
            "did you mean 'ventanas'",
        ),
        ({"rapida": 5, "lenta": 20}, {}, "nothing to search"),
    ],
)
def test_bad_arguments_raise_data_error_naming_them(velas, espacio, options, pattern) -> None:
    with pytest.raises(DataError, match=pattern):
        optimizar(velas, "sma_cruce", espacio, **options)


def test_lists_ranges_arrays_and_fixed_values_are_accepted() -> None:
    dims, fixed = parse_space(
        "rsi_reversion",
        {"periodo": range(5, 20, 5), "sobreventa": [20, 30], "sobrecompra": np.array([70, 80]),
         "salida": 50},
    )  # fmt: skip
    assert [(d.name, d.values) for d in dims] == [
        ("periodo", (5, 10, 15)), ("sobreventa", (20.0, 30.0)), ("sobrecompra", (70.0, 80.0)),
    ]  # fmt: skip
    assert all(type(v) is float for d in dims[1:] for v in d.values or ())
    assert fixed == {"salida": 50.0}


def test_fixed_parameters_reach_every_row(velas) -> None:
    space = {"rapida": [5, 10], "lenta": 40, "modo": "solo_largo"}
    result = optimizar(velas, "sma_cruce", space)
    table = result.resultados
    assert set(table["lenta"]) == {40} and set(table["modo"]) == {"solo_largo"}
    single = ejecutar_backtest(velas, crear_estrategia("sma_cruce", **{**space, "rapida": 5}))
    row = table[table["rapida"] == 5].iloc[0]
    assert row["final_equity"] == single.metricas["final_equity"]


@pytest.mark.parametrize("metodo", SAMPLERS)
def test_log_bounds_are_respected_by_every_sampler(velas, metodo) -> None:
    space = {"periodo": (3, 60, "log"), "sobreventa": (10.0, 40.0, "log"), "salida": 50.0}
    result = optimizar(velas[:600], "rsi_reversion", space, metodo=metodo, intentos=16, lote=8)
    table = result.resultados
    assert len(table) == 16
    assert table["periodo"].between(3, 60).all() and table["sobreventa"].between(10, 40).all()
    assert pd.api.types.is_integer_dtype(table["periodo"])
    assert pd.api.types.is_float_dtype(table["sobreventa"])
    assert all(type(p) is int for p in table["periodo"].tolist())


def test_aleatorio_samples_on_the_log_scale() -> None:
    # A second (float) dimension keeps the 60 combinations distinct however periodo repeats.
    space = {"periodo": (2, 200, "log"), "sobreventa": (10.0, 40.0)}
    dims, fixed = parse_space("rsi_reversion", space)
    combos = random_combinations(dims, fixed, 60, seed=1)
    values = [c["periodo"] for c in combos]
    assert len(combos) == 60 and all(type(v) is int and 2 <= v <= 200 for v in values)
    # Half of a log-uniform sample lies below the geometric midpoint, 20; a uniform one ~9 %.
    assert sum(v < 20 for v in values) >= 20


# --- the methods -----------------------------------------------------------------------------


def _best_row(table: pd.DataFrame, objective: str, lower_is_better: bool = False) -> dict:
    feasible = table[table["cumple"]].dropna(subset=[objective])
    index = feasible[objective].idxmin() if lower_is_better else feasible[objective].idxmax()
    return feasible.loc[index].to_dict()


@pytest.mark.parametrize("metodo", SAMPLERS)
def test_samplers_are_reproducible_and_pick_the_best_row(velas, metodo) -> None:
    space = {"rapida": (2, 60), "lenta": (10, 150)}  # some combinations are refused
    runs = [optimizar(velas, "sma_cruce", space, metodo=metodo, intentos=24, lote=8, semilla=3)
            for _ in range(2)]  # fmt: skip
    first, second = runs
    pd.testing.assert_frame_equal(first.resultados, second.resultados, check_exact=True)
    assert first.mejor == second.mejor and first.omitidas == second.omitidas
    assert len(first.resultados) + first.omitidas == 24
    params = list(zip(first.resultados["rapida"], first.resultados["lenta"], strict=True))
    assert len(set(params)) == len(params)
    best = _best_row(first.resultados, "sharpe")
    assert first.mejor == {"rapida": best["rapida"], "lenta": best["lenta"]}
    other = optimizar(velas, "sma_cruce", space, metodo=metodo, intentos=24, lote=8, semilla=4)
    assert not other.resultados[["rapida", "lenta"]].equals(first.resultados[["rapida", "lenta"]])


@pytest.mark.parametrize("metodo", ["grid", "tpe"])
def test_a_lower_is_better_objective_is_minimised(velas, metodo) -> None:
    space = {"rapida": [5, 10, 20], "lenta": [30, 60, 120]}
    result = optimizar(velas, "sma_cruce", space, metodo=metodo, objetivo="volatility",
                       intentos=9, lote=3)  # fmt: skip
    best = _best_row(result.resultados, "volatility", lower_is_better=True)
    assert result.mejor == {"rapida": best["rapida"], "lenta": best["lenta"]}
    assert best["volatility"] < result.resultados["volatility"].max()


def test_cmaes_refuses_two_objectives(velas) -> None:
    with pytest.raises(DataError, match="cmaes"):
        optimizar(velas, "sma_cruce", BOUNDS, metodo="cmaes", objetivo=["sharpe", "max_drawdown"],
                  intentos=8)  # fmt: skip


# --- several objectives, constraints -----------------------------------------------------------


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and a != b


# Each objective with the sign that makes higher better, written here independently of the
# optimiser: max_drawdown is a negative fraction (nearer zero is better), volatility is a cost.
PAIRS = {("sharpe", "max_drawdown"): (1, 1), ("total_return", "volatility"): (1, -1)}


@pytest.mark.parametrize("objectives", list(PAIRS))
@pytest.mark.parametrize("metodo", ["grid", "genetico"])
def test_the_pareto_front_is_exactly_the_non_dominated_rows(velas, metodo, objectives) -> None:
    space = {"rapida": list(range(3, 40, 4)), "lenta": [30, 50, 80, 130]}
    result = optimizar(
        velas, "sma_cruce", space, metodo=metodo, objetivo=list(objectives),
        intentos=30, lote=10, semilla=2,
    )  # fmt: skip
    assert result.pareto is not None and len(result.pareto) >= 1
    signs = PAIRS[objectives]

    def points(frame: pd.DataFrame) -> dict[tuple[int, int], tuple[float, ...]]:
        ok = frame[frame["cumple"]].dropna(subset=list(objectives))
        return {
            (r["rapida"], r["lenta"]): tuple(
                s * r[o] for s, o in zip(signs, objectives, strict=True)
            )
            for r in ok.to_dict("records")
        }

    feasible, front = points(result.resultados), points(result.pareto)
    assert len(front) == len(result.pareto) and set(front) <= set(feasible)
    assert len(front) < len(feasible)
    for key, point in front.items():
        assert not any(_dominates(other, point) for other in feasible.values()), key
    for key, point in feasible.items():
        if key not in front:
            assert any(_dominates(f, point) for f in front.values()), key
    assert (result.mejor["rapida"], result.mejor["lenta"]) in front


def test_constraints_flag_every_row_and_bind_the_best(velas) -> None:
    space = {"rapida": [3, 5, 10, 20], "lenta": [30, 60, 120, 240]}
    plain = optimizar(velas, "sma_cruce", space)
    trades = plain.resultados["trades"]
    limit = int(trades.median())
    result = optimizar(velas, "sma_cruce", space, restricciones={"trades": limit})
    table = result.resultados
    assert (table["cumple"] == (table["trades"] >= limit)).all()
    assert 0 < table["cumple"].sum() < len(table)
    best = _best_row(table, "sharpe")
    assert result.mejor == {"rapida": best["rapida"], "lenta": best["lenta"]}
    assert best["trades"] >= limit

    cap = float(table["volatility"].median())
    lower = optimizar(velas, "sma_cruce", space, restricciones={"volatility": cap})
    assert (lower.resultados["cumple"] == (lower.resultados["volatility"] <= cap)).all()


def test_a_constraint_no_row_meets_gives_no_best(velas) -> None:
    result = optimizar(velas, "sma_cruce", SMA_GRID, restricciones={"trades": 10**9},
                       objetivo=["sharpe", "max_drawdown"])  # fmt: skip
    assert result.mejor is None and not result.resultados["cumple"].any()
    assert result.pareto is not None and len(result.pareto) == 0
    assert result.dsr is None and result.pbo is None


def test_undefined_metrics_never_meet_a_constraint() -> None:
    # On 300 candles a 150/299 cross barely trades: its sharpe may be undefined (None).
    velas = hourly(300, seed=2)
    result = optimizar(velas, "sma_cruce", {"rapida": [5, 150], "lenta": [20, 299]},
                       restricciones={"sharpe": -100.0})  # fmt: skip
    table = result.resultados
    assert table["sharpe"].isna().any()
    assert (table["cumple"] == table["sharpe"].notna()).all()


# --- validation --------------------------------------------------------------------------------


def _shaken(velas: pd.DataFrame, rows: slice, seed: int = 9) -> pd.DataFrame:
    """`velas` with the candles in `rows` scaled by a random factor each (a bar's prices
    together, so highs stay highs)."""
    out = velas.copy()
    index = np.arange(len(velas))[rows]
    factor = np.random.default_rng(seed).uniform(0.9, 1.1, len(index))
    for column in ("open", "high", "low", "close"):
        out.loc[index, column] = out.loc[index, column].to_numpy() * factor
    return out


WF = {"ventanas": 3, "in_sample": 0.7}
WF_SPACE = {"rapida": [3, 5, 10, 20], "lenta": [30, 60, 120]}


def test_walk_forward_never_looks_past_an_in_sample_window(velas) -> None:
    n = len(velas)
    first_train = val.walk_forward_windows(n, WF["ventanas"], WF["in_sample"])[0].train[0]
    args = {"validacion": "walk_forward", "opciones_validacion": WF}
    result = optimizar(velas, "sma_cruce", WF_SPACE, **args)
    shaken = optimizar(_shaken(velas, slice(first_train.stop, None)), "sma_cruce", WF_SPACE,
                       **args)  # fmt: skip
    windows, shaken_windows = result.validacion["ventanas"], shaken.validacion["ventanas"]
    assert len(windows) == WF["ventanas"]
    assert windows[0]["mejor"] is not None
    assert windows[0]["mejor"] == shaken_windows[0]["mejor"]
    assert windows[0]["objetivo_is"] == shaken_windows[0]["objetivo_is"]
    assert windows[0]["objetivo_oos"] != shaken_windows[0]["objetivo_oos"]  # the shake bites
    # Nor does a window's out-of-sample judgement look past its own end.
    first_test = val.walk_forward_windows(n, WF["ventanas"], WF["in_sample"])[0].test[0]
    later = optimizar(_shaken(velas, slice(first_test.stop, None)), "sma_cruce", WF_SPACE, **args)
    later_windows = later.validacion["ventanas"]
    assert later_windows[0]["objetivo_oos"] == windows[0]["objetivo_oos"]
    assert later_windows[0]["metricas_oos"] == windows[0]["metricas_oos"]
    assert later_windows[1]["objetivo_oos"] != windows[1]["objetivo_oos"]
    for window in windows:
        assert window["is"][0] <= window["is"][1] < window["oos"][0] <= window["oos"][1]


def test_walk_forward_stitches_the_out_of_sample_equity(velas) -> None:
    result = optimizar(velas, "sma_cruce", WF_SPACE, validacion="walk_forward",
                       opciones_validacion=WF)  # fmt: skip
    report = result.validacion
    times = np.array([t for t, _ in report["equity_oos"]])
    assert (np.diff(times) > 0).all()
    open_time = velas["open_time"].to_numpy()
    expected = np.concatenate([
        open_time[(open_time >= w["oos"][0]) & (open_time <= w["oos"][1])]
        for w in report["ventanas"]
    ])  # fmt: skip
    np.testing.assert_array_equal(times, expected)
    equity = report["equity_oos"]
    assert report["rentabilidad_oos"] == pytest.approx(equity[-1][1] / 10_000 - 1, abs=0)


def test_purged_kfold_never_trains_on_a_test_fold_or_its_embargo(velas) -> None:
    options = {"folds": 4, "embargo": 40}
    args = {"validacion": "kfold_purgado", "opciones_validacion": options}
    split = 1  # a middle fold: train ranges on both sides of it
    test = val.purged_kfold_windows(len(velas), 4, 40)[split].test[0]
    result = optimizar(velas, "sma_cruce", WF_SPACE, **args)
    shaken = optimizar(_shaken(velas, slice(test.start, test.stop + 40)), "sma_cruce", WF_SPACE,
                       **args)  # fmt: skip
    ours, theirs = result.validacion["ventanas"][split], shaken.validacion["ventanas"][split]
    assert ours["mejor"] is not None
    assert (ours["mejor"], ours["objetivo_is"]) == (theirs["mejor"], theirs["objetivo_is"])
    assert ours["objetivo_oos"] != theirs["objetivo_oos"]
    assert len(ours["train"]) == 2
    for train in ours["train"]:
        assert train[1] < ours["test"][0][0] or train[0] > ours["test"][0][1] + 40 * HOUR_MS - 1


@pytest.mark.parametrize("validacion", ["walk_forward", "kfold_purgado"])
def test_validation_honours_the_constraints(velas, validacion) -> None:
    space = {"rapida": [3, 5, 10, 20], "lenta": [30, 60, 120]}
    result = optimizar(velas, "sma_cruce", space, validacion=validacion,
                       restricciones={"trades": 10**9})  # fmt: skip
    assert result.mejor is None
    windows = result.validacion["ventanas"]
    assert len(windows) == 5 and all(w["mejor"] is None for w in windows)
    assert result.validacion["objetivo_is_medio"] is None


# --- overfitting measures ----------------------------------------------------------------------


def _warnings(result: Any) -> tuple[bool, bool]:
    return (any("sobreajuste" in a for a in result.avisos),
            any("Sharpe deflactado" in a for a in result.avisos))  # fmt: skip


NOISE_RSI = {"periodo": [3, 5, 8, 13, 21], "sobreventa": [20.0, 30.0, 40.0],
             "sobrecompra": [60.0, 70.0, 80.0]}  # fmt: skip
NOISE_SMA = {"rapida": [2, 3, 5, 8], "lenta": [13, 21, 34, 55]}


@pytest.mark.parametrize(
    ("velas_args", "strategy", "space", "expect_pbo", "expect_dsr"),
    [
        ((2_000, 4), "rsi_reversion", NOISE_RSI, True, True),  # noise, many trials
        ((2_000, 17), "sma_cruce", NOISE_SMA, True, False),
        ((2_000, 10), "rsi_reversion", NOISE_RSI, False, True),
        ((3_000, 1, 1e-3), "sma_cruce", {"rapida": [5, 10], "lenta": [50, 100]}, False, False),
    ],
)
def test_overfitting_warnings_follow_pbo_and_dsr(
    velas_args, strategy, space, expect_pbo, expect_dsr
) -> None:
    result = optimizar(hourly(*velas_args), strategy, space, comision=0.0)
    assert isinstance(result.dsr, float) and 0 <= result.dsr <= 1
    assert isinstance(result.pbo, float) and 0 <= result.pbo <= 1
    assert (result.pbo > PBO_LIMIT, result.dsr < DSR_LIMIT) == (expect_pbo, expect_dsr)
    assert _warnings(result) == (expect_pbo, expect_dsr)
    assert len(result.avisos) == expect_pbo + expect_dsr


# --- progress and cancellation -----------------------------------------------------------------


def test_progress_counts_up_to_the_total(velas) -> None:
    calls: list[tuple[int, int, Any]] = []
    result = optimizar(velas, "sma_cruce", SMA_GRID, progreso=lambda *a: calls.append(a))
    total = 16
    assert len(calls) > 1
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and done[-1] == total
    assert {t for _, t, _ in calls} == {total}
    assert calls[-1][2] == result.mejor


def test_progress_ends_at_what_was_tried_when_a_sampler_runs_out(velas) -> None:
    calls: list[tuple[int, int]] = []
    space = {"rapida": [5, 10], "lenta": [40, 80]}
    result = optimizar(velas, "sma_cruce", space, metodo="tpe", intentos=10, lote=4,
                       progreso=lambda d, t, _: calls.append((d, t)))  # fmt: skip
    assert len(result.resultados) + result.omitidas == 4
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 4 and all(d <= t for d, t in calls)


def _searches(calls: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """The calls split where the done count starts again: one run per search."""
    runs: list[list[tuple[int, int]]] = []
    for call in calls:
        if not runs or call[0] <= runs[-1][-1][0]:
            runs.append([])
        runs[-1].append(call)
    return runs


def test_progress_counts_each_validation_search_up_to_its_total(velas) -> None:
    """Validation repeats the search on each window; each search reports from its start to its
    own total (the job runner adds them up)."""
    calls: list[tuple[int, int]] = []
    optimizar(velas, "sma_cruce", WF_SPACE, validacion="walk_forward", opciones_validacion=WF,
              progreso=lambda d, t, _: calls.append((d, t)))  # fmt: skip
    runs = _searches(calls)
    assert len(runs) == 1 + WF["ventanas"]
    total = len(WF_SPACE["rapida"]) * len(WF_SPACE["lenta"])
    for run in runs:
        assert {t for _, t in run} == {total} and run[-1][0] == total


def test_cancelled_after_the_first_batch_raises(velas) -> None:
    asked: list[int] = []
    reported: list[int] = []

    def cancelado() -> bool:
        asked.append(1)
        return True

    with pytest.raises(Cancelled):
        optimizar(velas, "sma_cruce", SMA_GRID, cancelado=cancelado,
                  progreso=lambda d, t, b: reported.append(d))  # fmt: skip
    assert asked == [1] and reported == []


# --- the sweep engine on threads ----------------------------------------------------------------


def test_threads_sweeping_one_setup_get_the_sequential_results(velas) -> None:
    """A Dask worker's threads (`dask worker --nthreads 4`) evaluate chunks of one Setup at once;
    the indicator memo must not be shared between them."""
    combos = [{"rapida": r, "lenta": s} for r in range(2, 40, 4) for s in (41, 81, 121, 161)]
    setup = prepare(velas)
    ends = day_ends(setup)
    sequential = evaluate(setup, "sma_cruce", combos, ends)
    expected = {tuple(e.params.values()): e.metrics for e in sequential}
    for _ in range(3):
        fresh = prepare(velas)  # a new Setup: a new memo, entered by the four threads at once
        with ThreadPoolExecutor(4) as pool:
            parts = [pool.submit(evaluate, fresh, "sma_cruce", combos[i::4], ends)
                     for i in range(4)]  # fmt: skip
            got = {tuple(e.params.values()): e.metrics for part in parts for e in part.result()}
        assert got == expected
