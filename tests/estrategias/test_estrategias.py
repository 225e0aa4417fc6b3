"""Strategies: factory validation, batch == live decisions, no look-ahead, crossovers, ML report."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import StrategyError
from core.models import CrossKind
from estrategias.factory import REGISTRY, crear_estrategia, listar_estrategias
from estrategias.sma_cruce import _cross, cross_state, crossings
from tests.estrategias.helpers import FAST_PARAMS, as_candles, synthetic_velas


def test_factory_builds_every_registered_strategy_with_defaults():
    assert set(REGISTRY) == {"sma_cruce", "rsi_reversion", "macd_tendencia", "ml_predictor"}
    listed = {s["nombre"]: s for s in listar_estrategias()}
    assert set(listed) == set(REGISTRY)
    rapida = next(p for p in listed["sma_cruce"]["parametros"] if p["nombre"] == "rapida")
    assert rapida == {
        "nombre": "rapida",
        "tipo": "int",
        "defecto": 10,
        "minimo": 1,
        "maximo": 500,
        "opciones": None,
        "descripcion": "periodo de la media rápida",
    }
    assert crear_estrategia("sma_cruce", rapida=9, lenta=21).p["lenta"] == 21


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        (
            "sma_cruze",
            {},
            "unknown strategy 'sma_cruze' \\(did you mean 'sma_cruce'\\?\\); available",
        ),
        ("sma_cruce", {"rapid": 3}, "no parameter 'rapid' \\(did you mean 'rapida'\\?\\)"),
        ("sma_cruce", {"rapida": 0}, "rapida must be >= 1"),
        ("sma_cruce", {"rapida": 30, "lenta": 10}, "must be smaller than lenta"),
        ("sma_cruce", {"rapida": 2.5}, "rapida must be int"),
        ("sma_cruce", {"modo": "largo"}, "modo must be one of ambos, solo_largo, solo_corto"),
        ("rsi_reversion", {"sobreventa": 45, "salida": 40}, "sobreventa <= salida"),
    ],
)
def test_bad_names_and_parameters_say_what_is_allowed(name, params, message):
    with pytest.raises(StrategyError, match=message):
        crear_estrategia(name, **params)


@pytest.mark.parametrize("name", sorted(FAST_PARAMS))
def test_live_decisions_equal_batch_decisions(name):
    velas = synthetic_velas(600)
    batch = crear_estrategia(name, **FAST_PARAMS[name]).target_positions(velas)
    live = crear_estrategia(name, **FAST_PARAMS[name]).live()
    decided = [live.update(candle) for candle in as_candles(velas)]
    np.testing.assert_array_equal(np.array(decided), batch)
    assert np.count_nonzero(batch) > 0, "the strategy never traded: the test proves nothing"


@pytest.mark.parametrize("name", sorted(FAST_PARAMS))
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), cut=st.integers(250, 550))
def test_changing_future_candles_never_changes_past_decisions(name, seed, cut):
    velas = synthetic_velas(600, seed)
    changed = velas.copy()
    rng = np.random.default_rng(seed + 1)
    changed.loc[cut:, ["open", "high", "low", "close"]] *= rng.uniform(0.7, 1.3, (600 - cut, 1))
    changed.loc[cut:, "volume"] *= 3
    strategy = crear_estrategia(name, **FAST_PARAMS[name])
    before = strategy.target_positions(velas)
    after = strategy.target_positions(changed)
    np.testing.assert_array_equal(before[:cut], after[:cut])


def test_cross_state_keeps_the_side_through_ties_and_waits_for_both_averages():
    fast = np.array([np.nan, 1.0, 2.0, 2.0, 1.0, 1.0 + 1e-15, 3.0])
    slow = np.array([np.nan, np.nan, 1.0, 2.0, 2.0, 1.0, 1.0])
    np.testing.assert_array_equal(cross_state(fast, slow), [0, 0, 1, 1, -1, -1, 1])


def test_sma_crossovers_are_the_bars_where_the_position_changes():
    velas = synthetic_velas(400)
    strategy = crear_estrategia("sma_cruce", rapida=5, lenta=20)
    crosses = strategy.cruces(velas, "BTCUSDT", "1m")
    positions = strategy.target_positions(velas)
    # Flat until the first cross, so every change, the first one from flat included, is a cross.
    flips = np.flatnonzero(positions[1:] != positions[:-1]) + 1
    assert [c.open_time for c in crosses] == velas["open_time"].to_numpy()[flips].tolist()
    assert all((c.kind is CrossKind.GOLDEN) == (c.fast > c.slow) for c in crosses)
    assert len(crosses) > 5


def test_modes_restrict_the_sides():
    velas = synthetic_velas(400)
    longs = crear_estrategia("sma_cruce", rapida=5, lenta=20, modo="solo_largo")
    shorts = crear_estrategia("sma_cruce", rapida=5, lenta=20, modo="solo_corto")
    assert set(np.unique(longs.target_positions(velas))) == {0.0, 1.0}
    assert set(np.unique(shorts.target_positions(velas))) == {-1.0, 0.0}


def test_ml_predictor_reports_out_of_sample_accuracy_against_a_baseline():
    strategy = crear_estrategia("ml_predictor", ventana=300, reentreno=100)
    velas = synthetic_velas(1500)
    strategy.target_positions(velas)
    report = strategy.report
    assert report["out_of_sample"] > 1000
    assert 0.3 < report["accuracy"] < 0.7 and 0.3 < report["baseline_accuracy"] < 0.7
    again = crear_estrategia("ml_predictor", ventana=300, reentreno=100)
    np.testing.assert_array_equal(again.target_positions(velas), strategy.target_positions(velas))


def _plain_cross(fast: np.ndarray, slow: np.ndarray) -> tuple[list[int], int]:
    """cross_state and the first crossing, bar by bar, as the docstrings define them."""
    body = slow[~np.isnan(slow)]
    tie = 1e-12 * max(abs(body.max()), abs(body.min())) if len(body) else 0.0
    sides, side, first = [], 0, len(fast)
    for i, (f, s) in enumerate(zip(fast, slow, strict=True)):
        now = 1 if f > s + tie else (-1 if f < s - tie else side)
        if first == len(fast) and side != 0 and now != side:
            first = i
        side = now
        sides.append(side)
    return sides, first


@pytest.mark.parametrize("seed", range(6))
def test_cross_state_and_the_first_cross_match_a_bar_by_bar_reading(seed):
    """Ties (equal lines, and lines within the tie band) keep the side, NaN warm-ups stay flat,
    and sma_cruce is flat until the first cross, on lines that touch often."""
    rng = np.random.default_rng(seed)
    n = 3_000
    slow = np.round(100 + np.cumsum(rng.normal(0, 0.3, n)), 1)
    fast = np.where(rng.random(n) < 0.2, slow, np.round(slow + rng.normal(0, 0.3, n), 1))
    fast[rng.random(n) < 0.05] += 1e-13  # inside the tie band
    slow[: 1 + seed * 40], fast[: 1 + seed * 7] = np.nan, np.nan
    sides, first = _plain_cross(fast, slow)
    np.testing.assert_array_equal(cross_state(fast, slow), sides)
    crosses = crossings(np.array(sides, dtype=float))
    assert first == (crosses[0] if len(crosses) else n) == _cross(fast, slow)[1]
