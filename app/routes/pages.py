"""The browser pages: the live dashboard (/), the backtest page (/backtest-ui) and the
optimisation page (/optimizar)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, render_template, request

from app.services import services
from backtesting.optimizador import DSR_LIMIT, LOWER_IS_BETTER, PBO_LIMIT
from core.errors import KryptelionError
from core.intervals import INTERVALS

bp = Blueprint("pages", __name__)
log = logging.getLogger(__name__)
FALLBACK_SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def _page_config() -> dict[str, Any]:
    """What the page scripts need: never a secret, only public settings."""
    settings = services().settings
    try:
        symbols = services().symbols()
    except KryptelionError as error:
        log.warning("symbol list unavailable (%s); the pickers offer stored symbols", error)
        stored = sorted({stream.symbol for stream in services().db.candles.streams()})
        symbols = stored or FALLBACK_SYMBOLS
    return {
        "mercado": settings.market,
        "demo": settings.is_demo,
        "symbols": symbols,
        "intervals": list(INTERVALS),
        # The bridge on the host the browser already reached, so a LAN or tunnel setup works.
        "bridge_port": settings.bridge_port,
    }


@bp.get("/")
def dashboard():  # type: ignore[no-untyped-def]
    return render_template("dashboard.html", config=_page_config(), page="dashboard")


@bp.get("/backtest-ui")
def backtest_page():  # type: ignore[no-untyped-def]
    return render_template("backtest.html", config=_page_config(), page="backtest",
                           run_id=request.args.get("run", type=int))  # fmt: skip


@bp.get("/optimizar")
def optimizar_page():  # type: ignore[no-untyped-def]
    # The optimiser's own facts, so the page never keeps a copy of them.
    config = {**_page_config(), "menor_es_mejor": sorted(LOWER_IS_BETTER),
              "umbrales": {"pbo": PBO_LIMIT, "dsr": DSR_LIMIT}}  # fmt: skip
    return render_template("optimizar.html", config=config, page="optimizar",
                           job_id=request.args.get("id", type=int))  # fmt: skip


@bp.get("/favicon.ico")
def favicon():  # type: ignore[no-untyped-def]
    return current_app.send_static_file("favicon.svg")
