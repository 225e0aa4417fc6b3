"""exportar_datos: stored candles to CSV (Binance's archive format) or JSON, streamed in chunks."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pandas as pd

from core.errors import DataError
from core.exchange.klines import KLINE_FIELDS, frame_to_klines
from core.intervals import check_interval, to_ms
from core.repository import Database
from data.common import database_for

log = logging.getLogger(__name__)
FORMATS = ("csv", "json")
CHUNK_ROWS = 100_000


def _default_name(
    symbol: str, interval: str, formato: str, start: int | None, end: int | None
) -> Path:
    def day(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%d")

    span = (
        f"_{day(start) if start is not None else 'inicio'}-{day(end) if end is not None else 'fin'}"
    )
    return Path(
        f"{symbol}_{interval}{span if start is not None or end is not None else ''}.{formato}"
    )


def _write_csv(handle: IO[str], chunk: pd.DataFrame, interval: str, first: bool) -> None:
    frame_to_klines(chunk, interval).to_csv(handle, header=first, index=False, lineterminator="\n")


def _write_json(handle: IO[str], chunk: pd.DataFrame, first: bool) -> None:
    # One object per candle, in the wire format of ARCHITECTURE.md plus the stored extra columns.
    records = chunk.to_dict(orient="records")
    text = ",\n".join(json.dumps(record, separators=(",", ":")) for record in records)
    handle.write(("" if first else ",\n") + text)


def _write(
    database: Database,
    path: Path,
    symbol: str,
    interval: str,
    formato: str,
    start: int | None,
    end: int | None,
) -> int:
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        if formato == "json":
            handle.write("[\n")
        for chunk in database.candles.iter_frames(symbol, interval, start, end, CHUNK_ROWS):
            if formato == "csv":
                _write_csv(handle, chunk, interval, first=rows == 0)
            else:
                _write_json(handle, chunk, first=rows == 0)
            rows += len(chunk)
        if formato == "json":
            handle.write("\n]\n")
        elif rows == 0:
            handle.write(",".join(KLINE_FIELDS) + "\n")
    return rows


def exportar_datos(
    symbol: str,
    interval: str,
    formato: str = "csv",
    salida: str | Path | None = None,
    start: object = None,
    end: object = None,
    db: str | Path | Database | None = None,
) -> Path:
    """Write the stored candles of (symbol, interval) in [start, end) to `salida`; return its path.

    `formato` is `csv` (Binance's 12-column kline layout with a header row, which
    `data.vision.importar_archivo` reads back identically) or `json` (an array of candle objects).
    Without `salida` the file is named after the stream and range in the current folder. `db` is a
    SQLite path, a SQLAlchemy URL, a `Database`, or None for DATABASE_URL; a bare file name such as
    "datos_historicos.db" is that file in DATA_DIR, i.e. the default database
    (`data.common.database_target`). Memory stays flat: rows are read and written in chunks of
    100,000. Raises DataError for a bad format, an unknown interval, or a stream with no stored
    candles (naming the database it looked in).
    """
    if formato not in FORMATS:
        raise DataError(f"formato {formato!r} is not one of {', '.join(FORMATS)}")
    check_interval(interval)
    start_ms = None if start is None else to_ms(start)  # type: ignore[arg-type]
    end_ms = None if end is None else to_ms(end)  # type: ignore[arg-type]
    with database_for(db) as database:
        if database.candles.count(symbol, interval) == 0:
            raise DataError(
                f"no stored candles for {symbol} {interval} in {database.redacted_url()}: "
                "download them first"
            )
        path = (
            Path(salida) if salida else _default_name(symbol, interval, formato, start_ms, end_ms)
        )
        rows = _write(database, path, symbol, interval, formato, start_ms, end_ms)
    log.info("exported %d %s %s candles to %s", rows, symbol, interval, path)
    return path
