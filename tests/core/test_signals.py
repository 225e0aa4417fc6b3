"""core.signals: live decisions equal the batch ones, see no future, refuse bad candles."""

import dataclasses
import math

import numpy as np
import pytest

from core.errors import StrategyError
from core.models import Candle, CrossKind, Crossover
from core.signals import Decisions, LiveSignals
from estrategias.factory import REGISTRY, crear_estrategia
from tests.estrategias.helpers import FAST_PARAMS, as_candles, synthetic_velas

SYMBOL, INTERVAL = "BTCUSDT", "1m"


def _strategy(name, **extra):
    return crear_estrategia(name, **{**FAST_PARAMS.get(name, {}), **extra})


def _replay(signals: LiveSignals, candles: list[Candle]) -> list[Decisions]:
    return [signals.on_closed(candle) for candle in candles]


def _held(decisions: list[Decisions], name: str, start: float = 0.0) -> list[float]:
    """The position of `name` after each candle, rebuilt from the signals alone."""
    held, position = [], start
    for decision in decisions:
        for change in decision.changes:
            if change.signal.strategy == name:
                assert change.previous == position, change
                position = change.signal.position
        held.append(position)
    return held


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_live_signals_rebuild_the_batch_positions_of_every_strategy(name):
    velas = synthetic_velas(400)
    candles = as_candles(velas)
    batch = _strategy(name).target_positions(velas)
    decisions = _replay(LiveSignals(SYMBOL, INTERVAL, [_strategy(name)]), candles)
    assert _held(decisions, name) == batch.tolist()
    changes = [change for decision in decisions for change in decision.changes]
    assert len(changes) == np.count_nonzero(np.diff(batch, prepend=0.0)) > 0
    for decision in decisions:
        for change in decision.changes:
            assert change.signal.open_time == decision.candle.open_time
            assert change.signal.price == decision.candle.close
            assert (change.signal.symbol, change.signal.interval) == (SYMBOL, INTERVAL)
            assert change.signal.reason.endswith(" -> ".join(
                {1.0: "largo", 0.0: "plano", -1.0: "corto"}[p]
                for p in (change.previous, change.signal.position)
            ))  # fmt: skip


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_priming_emits_nothing_and_leaves_the_batch_position(name):
    velas = synthetic_velas(400)
    candles = as_candles(velas)
    batch = _strategy(name).target_positions(velas)
    signals = LiveSignals(SYMBOL, INTERVAL, [_strategy(name)])
    assert signals.prime(candles[:200]) is None
    assert signals.positions == {name: batch[199]}
    assert signals.last_open_time == candles[199].open_time
    decisions = _replay(signals, candles[200:])
    assert _held(decisions, name, start=batch[199]) == batch[200:].tolist()


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize(("seed", "k"), [(1, 270), (2, 340)])
def test_changing_candles_after_bar_k_never_changes_what_was_emitted_up_to_k(name, seed, k):
    velas = synthetic_velas(k + 40, seed)
    changed = velas.copy()
    rng = np.random.default_rng(seed + 1)
    changed.loc[k + 1 :, ["open", "high", "low", "close"]] *= rng.uniform(0.7, 1.3, (39, 1))
    changed.loc[k + 1 :, "volume"] *= 3
    strategies = [_strategy(name)]
    if name != "sma_cruce":  # crossovers too
        strategies.append(_strategy("sma_cruce", rapida=3, lenta=8))
    first, second = (
        _replay(LiveSignals(SYMBOL, INTERVAL, strategies), as_candles(frame))
        for frame in (velas, changed)
    )
    assert first[: k + 1] == second[: k + 1]
    assert first[k + 1 :] != second[k + 1 :]  # the change did reach the later candles


@pytest.mark.parametrize("modo", ["ambos", "solo_largo", "solo_corto"])
def test_crossovers_equal_the_batch_cruces(modo):
    velas = synthetic_velas(500)
    candles = as_candles(velas)
    sma = _strategy("sma_cruce", modo=modo)
    batch = sma.cruces(velas, SYMBOL, INTERVAL)
    assert len(batch) > 5 and {c.kind for c in batch} == set(CrossKind)
    signals = LiveSignals(SYMBOL, INTERVAL, [_strategy("rsi_reversion"), sma])
    signals.prime(candles[:100])
    live = [c for decision in _replay(signals, candles[100:]) for c in decision.crossovers]
    assert live == [c for c in batch if c.open_time >= candles[100].open_time]


def test_a_crossover_is_the_reason_of_its_signal():
    candles = as_candles(synthetic_velas(400))
    decisions = _replay(LiveSignals(SYMBOL, INTERVAL, [_strategy("sma_cruce")]), candles)
    changes = [(d, c) for d in decisions for c in d.changes]
    assert changes
    for decision, change in changes:
        (crossover,) = decision.crossovers
        assert change.signal.reason.startswith(f"cruce {crossover.kind.value}; ")


class _Follower:
    """Not an estrategias strategy: long after a rising candle, short after a falling one."""

    name = "seguidor"
    warmup = 1

    def live(self) -> "_Follower":
        return self

    def update(self, candle: Candle) -> float:
        return float(np.sign(candle.close - candle.open))

    def events(self) -> list[Crossover]:
        return []


def test_any_decider_of_the_protocol_works_and_warmup_is_the_slowest():
    candles = as_candles(synthetic_velas(50))
    signals = LiveSignals(SYMBOL, INTERVAL, [_Follower(), _strategy("sma_cruce")])
    assert signals.warmup == FAST_PARAMS["sma_cruce"]["lenta"]
    decisions = _replay(signals, candles)
    expected = [float(np.sign(c.close - c.open)) for c in candles]
    assert _held(decisions, "seguidor") == expected
    assert LiveSignals(SYMBOL, INTERVAL, []).warmup == 0


def test_the_same_candles_give_the_same_decisions():
    candles = as_candles(synthetic_velas(300))
    runs = [
        _replay(LiveSignals(SYMBOL, INTERVAL, [_strategy(n) for n in sorted(REGISTRY)]), candles)
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


LAST = as_candles(synthetic_velas(30))[-1]


@pytest.mark.parametrize(
    ("candle", "message"),
    [
        (dataclasses.replace(LAST, closed=False), "is not closed"),
        (LAST, "is a duplicate of the last one"),
        (dataclasses.replace(LAST, open_time=LAST.open_time - 60_000), "is older than the last"),
        (dataclasses.replace(LAST, symbol="ETHUSDT"), "candle of ETHUSDT 1m fed to the BTCUSDT 1m"),
        (dataclasses.replace(LAST, interval="5m"), "candle of BTCUSDT 5m fed to the BTCUSDT 1m"),
        (dataclasses.replace(LAST, open_time=LAST.open_time + 60_000, close=math.nan), "NaN"),
        (dataclasses.replace(LAST, open_time=LAST.open_time + 60_000, high=math.inf), "infinite"),
    ],
)
def test_bad_candles_are_refused_and_change_nothing(candle, message):
    candles = as_candles(synthetic_velas(31))
    signals = LiveSignals(SYMBOL, INTERVAL, [_strategy("sma_cruce"), _Follower()])
    signals.prime(candles[:30])
    before = signals.positions
    with pytest.raises(StrategyError, match=message):
        signals.on_closed(candle)
    assert (signals.positions, signals.last_open_time) == (before, LAST.open_time)
    assert signals.on_closed(candles[30]).candle == candles[30]  # still usable
    with pytest.raises(StrategyError, match="is not closed"):
        signals.prime([dataclasses.replace(candles[30], open_time=0, closed=False)])


def test_strategy_names_must_be_unique():
    with pytest.raises(StrategyError, match="unique, got sma_cruce, sma_cruce"):
        LiveSignals(SYMBOL, INTERVAL, [_strategy("sma_cruce"), _strategy("sma_cruce")])
