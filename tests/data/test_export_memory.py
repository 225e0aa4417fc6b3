"""Exporting 2 million candles keeps memory flat (issue #5: RSS growth under 200 MB)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.repository import Database

ROOT = Path(__file__).resolve().parents[2]
ROWS = 2_000_000
CHILD = """
import json, sys
import psutil
from data.exporter import exportar_datos

def high_water() -> int:
    # VmHWM belongs to this process image; ru_maxrss would include the forking parent's peak.
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024

before = psutil.Process().memory_info().rss
path = exportar_datos("BTCUSDT", "1m", formato=sys.argv[2], salida=sys.argv[3], db=sys.argv[1])
print(json.dumps({"growth": high_water() - before}))
"""


def test_exporting_two_million_rows_keeps_rss_growth_under_200_mb(tmp_path):
    db = Database(tmp_path / "big.db")
    t = 1_577_836_800_000 + np.arange(ROWS, dtype=np.int64) * 60_000
    price = 10_000 + np.arange(ROWS) % 1000 * 0.5
    db.candles.upsert(
        "BTCUSDT",
        "1m",
        {
            "open_time": t,
            "open": price,
            "high": price + 1,
            "low": price - 1,
            "close": price,
            "volume": price / 7,
        },
    )
    db.close()
    out = tmp_path / "big.csv"
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "big.db"), "csv", str(out)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    growth = json.loads(result.stdout)["growth"]
    with out.open() as handle:
        lines = sum(1 for _ in handle)
    assert lines == ROWS + 1
    assert growth < 200 * 1024 * 1024, f"RSS grew {growth / 2**20:.0f} MB"
