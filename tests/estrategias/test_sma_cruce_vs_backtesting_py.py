"""sma_cruce through ejecutar_backtest, trade for trade against backtesting.py's SmaCross.

Real market data shipped with backtesting.py (GOOG daily 2004-2013, EURUSD hourly 2017-2018),
SMA 10/20 as in its tutorial, no commission, spread or slippage, market orders filled at the
next bar's open in both engines. Quantities differ (backtesting.py buys whole units) and are not
compared. One documented difference: a position still open after the last bar is closed by
backtesting.py (`finalize_trades=True`) at that bar's open, time stamped with the bar's open
time, and by us at its close, time stamped with its close time (`exit_reason = "fin"`).

Our package `backtesting` shadows backtesting.py's, so the reference runs in a child
interpreter in isolated mode (`-I`: neither this checkout nor PYTHONPATH on its path).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from backtesting.simulador import ejecutar_backtest
from estrategias.factory import crear_estrategia

RAPIDA, LENTA = 10, 20
DATASETS = ("GOOG", "EURUSD")
MODES = ("ambos", "solo_largo", "solo_corto")

# backtesting.py's SmaCross as in its README/tutorial (reversals), plus the one-sided variants:
# solo_largo buys on a golden cross and only closes on a death cross; solo_corto the mirror.
REFERENCE = """
import json, sys, warnings
import backtesting.test
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import SMA


class SmaCross(Strategy):
    n1 = 10
    n2 = 20
    modo = "ambos"

    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            if self.modo != "solo_corto":
                self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            if self.modo != "solo_largo":
                self.sell()


def ms(stamp):
    return int(stamp.value // 1_000_000)


n1, n2, names, modes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
for name in names.split(","):
    for modo in modes.split(","):
        backtest = Backtest(getattr(backtesting.test, name), SmaCross, cash=10_000_000,
                            commission=0, spread=0, trade_on_close=False, exclusive_orders=True,
                            finalize_trades=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = backtest.run(n1=n1, n2=n2, modo=modo)
        trades = stats["_trades"]
        out[f"{name} {modo}"] = {
            "entry_time": [ms(t) for t in trades["EntryTime"]],
            "exit_time": [ms(t) for t in trades["ExitTime"]],
            "entry_price": trades["EntryPrice"].tolist(),
            "exit_price": trades["ExitPrice"].tolist(),
            "side": ["long" if size > 0 else "short" for size in trades["Size"]],
            "still_open": len(stats["_strategy"].trades),
        }
print(json.dumps(out))
"""


def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution("backtesting")
    except importlib.metadata.PackageNotFoundError:
        if os.environ.get("CI") == "true":
            pytest.fail("backtesting.py is not installed under CI=true (requirements-dev.txt)")
        pytest.skip("backtesting.py is not installed: no reference to compare sma_cruce with")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, dict[str, list]]:
    """backtesting.py's trades for every dataset and mode, from one child interpreter."""
    _distribution()
    args = [str(RAPIDA), str(LENTA), ",".join(DATASETS), ",".join(MODES)]
    child = subprocess.run(
        [sys.executable, "-I", "-c", REFERENCE, *args],
        cwd=tmp_path_factory.mktemp("backtesting_py"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout)


def _velas(name: str) -> pd.DataFrame:
    """The CSV behind `backtesting.test.<name>` as our candle columns (open_time in epoch ms)."""
    path = _distribution().locate_file(f"backtesting/test/{name}.csv")
    frame = pd.read_csv(str(path), index_col=0, parse_dates=True)
    velas = frame.rename(columns=str.lower).reset_index(drop=True)
    velas.insert(0, "open_time", frame.index.as_unit("ms").asi8)
    return velas


def _rows(trades: pd.DataFrame | dict[str, list], columns: tuple[str, ...]) -> list[tuple]:
    """One plain tuple per trade (pytest then shows the first trade that differs)."""
    return list(zip(*(list(trades[column]) for column in columns), strict=True))


@pytest.mark.parametrize("modo", MODES)
@pytest.mark.parametrize("name", DATASETS)
def test_trades_match_backtesting_py_sma_cross(reference, name, modo):
    velas = _velas(name)
    strategy = crear_estrategia("sma_cruce", rapida=RAPIDA, lenta=LENTA, modo=modo)
    ours = ejecutar_backtest(velas, strategy, capital=10_000_000, comision=0, slippage=0).trades
    theirs = reference[f"{name} {modo}"]
    assert theirs["still_open"] == 0
    entries = ("entry_time", "side", "entry_price")
    assert _rows(ours, entries) == _rows(theirs, entries)
    assert len(ours) > 20
    # Every exit but the last one is a signal exit at the next open, in both engines.
    assert ours["exit_reason"].iloc[:-1].eq("senal").all()
    exits = ("exit_time", "exit_price")
    assert _rows(ours, exits)[:-1] == _rows(theirs, exits)[:-1]
    # The position still open at the end: their last open (at that bar's time), our last close.
    last_time = int(velas["open_time"].iloc[-1])
    last_open, last_close = float(velas["open"].iloc[-1]), float(velas["close"].iloc[-1])
    bar_ms = int(np.median(np.diff(velas["open_time"])))
    theirs_last = (theirs["exit_time"][-1], theirs["exit_price"][-1])
    ours_last = (ours["exit_time"].iloc[-1], ours["exit_price"].iloc[-1])
    if ours["exit_reason"].iloc[-1] == "fin":
        assert theirs_last == (last_time, last_open)
        assert ours_last == (last_time + bar_ms, last_close)
    else:
        assert ours["exit_reason"].iloc[-1] == "senal"
        assert ours_last == theirs_last
