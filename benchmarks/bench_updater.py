"""Download and import speed: one year of 1m BTCUSDT from the demo exchange, and archive imports.

Targets (issue #5): one year of 1m candles (351 pages of 1,500) from the demo exchange into
SQLite in under 20 s. The exchange runs in its own process, as `run.py demo-exchange` does.

    python benchmarks/bench_updater.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.demo_process import demo_exchange_process  # noqa: E402
from core.repository import Database  # noqa: E402
from data.exporter import exportar_datos  # noqa: E402
from data.updater import obtener_datos_historicos  # noqa: E402
from data.vision import importar_archivo  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as folder, demo_exchange_process() as (rest_url, _, _):
        path = Path(folder) / "year.db"
        start = time.perf_counter()
        result = obtener_datos_historicos(
            ["BTCUSDT"], ["1m"], path, "2024-01-01", "2025-01-01", rest_url=rest_url
        )
        elapsed = time.perf_counter() - start
        summary = result["BTCUSDT", "1m"]
        print(
            f"update: {summary.written:,} 1m candles in {summary.pages} pages, "
            f"{elapsed:.2f} s ({summary.written / elapsed:,.0f} candles/s), gaps {summary.gaps}"
        )
        start = time.perf_counter()
        again = obtener_datos_historicos(
            ["BTCUSDT"], ["1m"], path, "2024-01-01", "2025-01-01", rest_url=rest_url
        )["BTCUSDT", "1m"]
        print(f"rerun:  {again.written} written, {time.perf_counter() - start:.2f} s")
        csv_path = Path(folder) / "year.csv"
        start = time.perf_counter()
        exportar_datos("BTCUSDT", "1m", "csv", csv_path, db=path)
        print(f"export: {summary.written:,} rows to CSV in {time.perf_counter() - start:.2f} s")
        archive = Path(folder) / "BTCUSDT-1m-2024.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            bundle.write(csv_path, "BTCUSDT-1m-2024.csv")
        start = time.perf_counter()
        rows = importar_archivo(archive, "BTCUSDT", "1m", db=Path(folder) / "import.db")
        seconds = time.perf_counter() - start
        print(
            f"archive import: {rows:,} rows from a zip in {seconds:.2f} s "
            f"({rows / seconds:,.0f} rows/s)"
        )
        assert Database(Path(folder) / "import.db").candles.count("BTCUSDT", "1m") == rows
    return 0 if elapsed < 20 else 1


if __name__ == "__main__":
    sys.exit(main())
