"""/metrics: process and machine load, database size and content, the bridge's status."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import psutil
from flask import Blueprint

from app.api import operation
from app.services import services
from config.settings import url_host
from core.intervals import ms_to_iso

bp = Blueprint("metrics", __name__)
_PROCESS = psutil.Process()
_PROCESS.cpu_percent(None)  # the first reading is always 0: prime it at import


def _bridge(host: str, port: int) -> dict[str, Any]:
    address = f"{url_host(host)}:{port}"
    try:
        with urllib.request.urlopen(f"http://{address}/health", timeout=0.5) as reply:
            return {"estado": "conectado", "salud": json.loads(reply.read())}
    except (OSError, ValueError):
        return {"estado": "no disponible", "url": f"ws://{address}/"}


@operation(bp, "/metrics", "GET", "System metrics: CPU, RAM, uptime, database, bridge")
def metrics():  # type: ignore[no-untyped-def]
    svc = services()
    memory = psutil.virtual_memory()
    now = time.time()
    return {
        "mercado": svc.settings.market,
        "proceso": {
            "cpu_percent": _PROCESS.cpu_percent(None),
            "rss_bytes": _PROCESS.memory_info().rss,
            "hilos": _PROCESS.num_threads(),
            "uptime_s": round(now - svc.started_at, 1),
        },
        "sistema": {
            "cpu_percent": psutil.cpu_percent(None),
            "cpus": psutil.cpu_count(),
            "ram_total_bytes": memory.total,
            "ram_usada_bytes": memory.total - memory.available,
            "ram_percent": memory.percent,
            "uptime_s": round(now - psutil.boot_time(), 1),
        },
        "base_de_datos": {
            "motor": svc.db.dialect,
            "url": svc.db.redacted_url(),
            "tamano_bytes": svc.db.size_bytes(),
            "revision": svc.db.revision(),
            "velas": [
                {
                    "symbol": s.symbol,
                    "interval": s.interval,
                    "cantidad": s.count,
                    "primera": ms_to_iso(s.first_open_time),
                    "ultima": ms_to_iso(s.last_open_time),
                }
                for s in svc.db.candles.streams()
            ],
        },  # fmt: skip
        "bridge": _bridge(svc.settings.bridge_host, svc.settings.bridge_port),
    }
