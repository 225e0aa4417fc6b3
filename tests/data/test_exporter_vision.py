"""exportar_datos and archive imports against real SQLite files and a real local HTTP server."""

import hashlib
import http.server
import io
import json
import threading
import zipfile
from functools import partial

import numpy as np
import pytest

from core.errors import DataError
from core.exchange.klines import KLINE_FIELDS
from data.exporter import exportar_datos
from data.vision import archive_names, importar_archivo, importar_vision, read_kline_csv

T0 = 1_704_067_200_000  # 2024-01-01
MIN = 60_000


def _candles(n: int, start: int = T0, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    close = 42_000 + np.cumsum(rng.normal(0, 3, n)).round(1)
    return {
        "open_time": start + np.arange(n, dtype=np.int64) * MIN,
        "open": close + 0.1, "high": close + 9.7, "low": close - 8.3, "close": close,
        "volume": rng.uniform(0, 50, n).round(3),
        "quote_volume": rng.uniform(0, 1e6, n), "trades": rng.integers(0, 900, n),
        "taker_buy_base": rng.uniform(0, 25, n).round(3), "taker_buy_quote": rng.uniform(0, 5e5, n),
    }  # fmt: skip


def test_csv_export_uses_binance_layout_and_imports_back_identically(sqlite_db, tmp_path):
    sqlite_db.candles.upsert("BTCUSDT", "1m", _candles(3000))
    path = exportar_datos("BTCUSDT", "1m", formato="csv", salida=tmp_path / "btc.csv", db=sqlite_db)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(KLINE_FIELDS) and len(lines) == 3001
    first = lines[1].split(",")
    assert int(first[0]) == T0 and int(first[6]) == T0 + MIN - 1 and first[-1] == "0"
    target = tmp_path / "back.db"
    assert importar_archivo(path, "BTCUSDT", "1m", db=target) == 3000
    from core.repository import Database

    back = Database(target).candles.read_frame("BTCUSDT", "1m")
    original = sqlite_db.candles.read_frame("BTCUSDT", "1m")
    assert back.equals(original)
    assert importar_archivo(path, "BTCUSDT", "1m", db=target) == 0


def test_json_export_is_an_array_of_candle_objects(sqlite_db, tmp_path):
    cols = _candles(1234)
    sqlite_db.candles.upsert("ETHUSDT", "1m", cols)
    path = exportar_datos(
        "ETHUSDT",
        "1m",
        formato="json",
        salida=tmp_path / "eth.json",
        start=T0 + 10 * MIN,
        end="2024-01-01T00:20:00Z",
        db=sqlite_db,
    )
    data = json.loads(path.read_text())
    assert [c["open_time"] for c in data] == list(range(T0 + 10 * MIN, T0 + 20 * MIN, MIN))
    assert data[0]["close"] == cols["close"][10] and isinstance(data[0]["trades"], int)
    assert set(data[0]) >= {"open_time", "open", "high", "low", "close", "volume"}


def test_export_defaults_to_a_descriptive_name_in_the_current_folder(
    sqlite_db, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    sqlite_db.candles.upsert("BTCUSDT", "1m", _candles(10))
    assert exportar_datos("BTCUSDT", "1m", db=sqlite_db).name == "BTCUSDT_1m.csv"
    ranged = exportar_datos(
        "BTCUSDT", "1m", "json", start="2024-01-01", end="2024-01-02", db=sqlite_db
    )
    assert ranged.name == "BTCUSDT_1m_20240101-20240102.json" and ranged.exists()


def test_export_errors_name_the_problem(sqlite_db, tmp_path):
    sqlite_db.candles.upsert("BTCUSDT", "1m", _candles(10))
    with pytest.raises(DataError, match="formato 'xml'"):
        exportar_datos("BTCUSDT", "1m", formato="xml", db=sqlite_db)
    with pytest.raises(DataError, match="no stored candles for SOLUSDT 1m"):
        exportar_datos("SOLUSDT", "1m", salida=tmp_path / "x.csv", db=sqlite_db)
    with pytest.raises(DataError, match="invalid interval"):
        exportar_datos("BTCUSDT", "2m", db=sqlite_db)


def _zip(csv_text: str, name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(name.replace(".zip", ".csv"), csv_text)
    return buffer.getvalue()


def _csv(cols: dict, header: bool, scale: int = 1) -> str:
    rows = []
    if header:
        rows.append(",".join(KLINE_FIELDS))
    for i in range(len(cols["open_time"])):
        t = int(cols["open_time"][i])
        rows.append(",".join(str(v) for v in (
            t * scale, cols["open"][i], cols["high"][i], cols["low"][i], cols["close"][i],
            cols["volume"][i], (t + MIN - 1) * scale, cols["quote_volume"][i], cols["trades"][i],
            cols["taker_buy_base"][i], cols["taker_buy_quote"][i], 0)))  # fmt: skip
    return "\n".join(rows) + "\n"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def archive_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving a folder laid out like data.binance.vision."""
    root = tmp_path / "vision"
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _publish(root, symbol, interval, name, payload: bytes, checksum: str | None = None):
    folder = root / "data/futures/um/monthly/klines" / symbol / interval
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(payload)
    digest = checksum or hashlib.sha256(payload).hexdigest()
    (folder / f"{name}.CHECKSUM").write_text(f"{digest}  {name}\n")


def test_archive_import_verifies_checksums_and_detects_the_header(archive_server, sqlite_db):
    root, url = archive_server
    jan = _candles(60)
    feb = _candles(60, start=1_706_745_600_000, seed=4)
    _publish(
        root,
        "BTCUSDT",
        "1m",
        "BTCUSDT-1m-2024-01.zip",
        _zip(_csv(jan, header=False), "BTCUSDT-1m-2024-01.zip"),
    )
    _publish(
        root,
        "BTCUSDT",
        "1m",
        "BTCUSDT-1m-2024-02.zip",
        _zip(_csv(feb, header=True), "BTCUSDT-1m-2024-02.zip"),
    )
    summary = importar_vision(
        "BTCUSDT", "1m", "2024-01-01", "2024-04-01", db=sqlite_db, base_url=url
    )
    assert summary.files == ["BTCUSDT-1m-2024-01.zip", "BTCUSDT-1m-2024-02.zip"]
    assert summary.missing == ["BTCUSDT-1m-2024-03.zip"] and summary.rows == 120
    frame = sqlite_db.candles.read_frame("BTCUSDT", "1m")
    np.testing.assert_array_equal(frame["close"].to_numpy()[:60], jan["close"])
    np.testing.assert_array_equal(frame["trades"].to_numpy()[60:], feb["trades"])
    again = importar_vision("BTCUSDT", "1m", "2024-01-01", "2024-03-01", db=sqlite_db, base_url=url)
    assert again.rows == 0


def test_archive_with_a_bad_checksum_stores_nothing(archive_server, sqlite_db):
    root, url = archive_server
    _publish(
        root,
        "ETHUSDT",
        "1m",
        "ETHUSDT-1m-2024-01.zip",
        _zip(_csv(_candles(5), True), "ETHUSDT-1m-2024-01.zip"),
        checksum="0" * 64,
    )
    with pytest.raises(DataError, match="does not match .CHECKSUM"):
        importar_vision("ETHUSDT", "1m", "2024-01-01", "2024-02-01", db=sqlite_db, base_url=url)
    assert sqlite_db.candles.count("ETHUSDT", "1m") == 0


def test_microsecond_archives_are_converted_to_milliseconds():
    frame = read_kline_csv(_csv(_candles(3), header=True, scale=1000).encode())
    assert frame["open_time"].tolist() == [T0, T0 + MIN, T0 + 2 * MIN]


def test_archive_names_cover_the_range_by_month_or_day():
    assert archive_names("BTCUSDT", "1h", T0, T0 + 40 * 86_400_000, "monthly") == [
        "BTCUSDT-1h-2024-01.zip",
        "BTCUSDT-1h-2024-02.zip",
    ]
    assert archive_names("BTCUSDT", "1h", T0, T0 + 2 * 86_400_000, "daily") == [
        "BTCUSDT-1h-2024-01-01.zip",
        "BTCUSDT-1h-2024-01-02.zip",
    ]
