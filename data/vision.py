"""Import Binance's public kline archives (data.binance.vision), checksum-verified."""

from __future__ import annotations

import hashlib
import io
import logging
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from config.settings import redact_url
from core.errors import DataError
from core.exchange.klines import klines_to_frame
from core.intervals import check_interval, to_ms
from core.repository import Database
from data.common import database_for

log = logging.getLogger(__name__)
VISION_URL = "https://data.binance.vision"
PERIODS = ("monthly", "daily")
# Some archives (spot since 2025) count microseconds; futures ones count milliseconds.
_MICROSECONDS = 10**14


@dataclass
class ImportSummary:
    """What an archive import did: files imported, missing on the server, rows written."""

    files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    rows: int = 0


def read_kline_csv(data: bytes | str | Path) -> pd.DataFrame:
    """Candle columns from a kline CSV, with or without the header row (older files lack it)."""
    raw = Path(data).read_bytes() if isinstance(data, str | Path) else data
    first_field = raw[: raw.find(b",")].strip().lstrip(b"\xef\xbb\xbf")
    header = 0 if first_field and not first_field.isdigit() else None
    # pandas 3 parses floats exactly (round trip), so no string detour is needed.
    frame = pd.read_csv(io.BytesIO(raw), header=header)
    candles = klines_to_frame(frame)
    if len(candles) and int(candles["open_time"].iloc[0]) >= _MICROSECONDS:
        candles["open_time"] //= 1000
        candles["close_time"] //= 1000
    return candles


def _csv_bytes(archive: bytes | Path) -> bytes:
    source = io.BytesIO(archive) if isinstance(archive, bytes) else archive
    with zipfile.ZipFile(source) as bundle:
        names = [n for n in bundle.namelist() if n.lower().endswith(".csv")]
        if len(names) != 1:
            raise DataError(f"expected one CSV inside the archive, found {names}")
        return bundle.read(names[0])


def _store(database: Database, symbol: str, interval: str, candles: pd.DataFrame) -> int:
    if candles["open_time"].duplicated().any():
        raise DataError(f"{symbol} {interval}: the file repeats candle open times")
    return database.candles.upsert(symbol, interval, candles)


def importar_archivo(
    archivo: str | Path, symbol: str, interval: str, db: str | Path | Database | None = None
) -> int:
    """Import one local kline file (`.zip` archive or `.csv`, e.g. from `exportar_datos`).

    Returns the rows inserted or changed (0 when everything was already stored).
    """
    check_interval(interval)
    path = Path(archivo)
    raw = _csv_bytes(path) if path.suffix.lower() == ".zip" else path.read_bytes()
    with database_for(db) as database:
        return _store(database, symbol, interval, read_kline_csv(raw))


def archive_names(symbol: str, interval: str, start: int, end: int, period: str) -> list[str]:
    """Archive file names (without folder) covering [start, end) by month or by day."""
    day = datetime.fromtimestamp(start / 1000, UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    last = datetime.fromtimestamp((end - 1) / 1000, UTC)
    names = []
    while day <= last:
        stamp = day.strftime("%Y-%m") if period == "monthly" else day.strftime("%Y-%m-%d")
        name = f"{symbol}-{interval}-{stamp}.zip"
        if not names or names[-1] != name:
            names.append(name)
        day += timedelta(days=1)
    return names


def _fetch(url: str, timeout: float = 60.0) -> bytes | None:
    """The body at `url`, or None when the server has no such file (404)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise DataError(f"{redact_url(url)}: HTTP {error.code}") from None
    except urllib.error.URLError as error:
        raise DataError(f"{redact_url(url)}: {error.reason}") from None


def _verified(url: str) -> bytes | None:
    """The archive at `url` after checking it against its `.CHECKSUM` (sha256) file."""
    archive = _fetch(url)
    if archive is None:
        return None
    checksum = _fetch(url + ".CHECKSUM")
    if checksum is None:
        raise DataError(f"{redact_url(url)}: no .CHECKSUM file to verify it against")
    expected = checksum.split()[0].decode().lower()
    actual = hashlib.sha256(archive).hexdigest()
    if actual != expected:
        raise DataError(f"{redact_url(url)}: sha256 {actual} does not match .CHECKSUM {expected}")
    return archive


def importar_vision(
    symbol: str,
    interval: str,
    start: object,
    end: object,
    db: str | Path | Database | None = None,
    base_url: str = VISION_URL,
    periodo: str = "monthly",
) -> ImportSummary:
    """Download, verify and import the futures (USDT-M) archives covering [start, end).

    Files the server does not have yet (the current month, say) are listed in `missing`. A checksum
    mismatch raises DataError before anything of that file is stored.
    """
    check_interval(interval)
    if periodo not in PERIODS:
        raise DataError(f"periodo {periodo!r} is not one of {', '.join(PERIODS)}")
    start_ms, end_ms = to_ms(start), to_ms(end)  # type: ignore[arg-type]
    if start_ms >= end_ms:
        raise DataError("start must be before end")
    folder = f"{base_url.rstrip('/')}/data/futures/um/{periodo}/klines/{symbol}/{interval}"
    summary = ImportSummary()
    with database_for(db) as database:
        for name in tqdm(
            archive_names(symbol, interval, start_ms, end_ms, periodo),
            unit="file",
            desc=f"{symbol} {interval}",
            disable=None,
        ):
            archive = _verified(f"{folder}/{name}")
            if archive is None:
                summary.missing.append(name)
                continue
            candles = read_kline_csv(_csv_bytes(archive))
            inside = candles[(candles["open_time"] >= start_ms) & (candles["open_time"] < end_ms)]
            summary.rows += _store(database, symbol, interval, inside)
            summary.files.append(name)
    log.info(
        "imported %d rows from %d archives (%d missing)",
        summary.rows,
        len(summary.files),
        len(summary.missing),
    )
    return summary
