"""/health, /estrategias, /openapi.json and the API docs page."""

from __future__ import annotations

from flask import Blueprint, render_template

from app.api import operation
from app.openapi import build_openapi
from app.services import services
from estrategias.factory import listar_estrategias

bp = Blueprint("health", __name__)
API_VERSION = "1.0.0"


@operation(bp, "/health", "GET", "Liveness and database check")
def health():  # type: ignore[no-untyped-def]
    svc = services()
    return {
        "estado": "ok",
        "mercado": svc.settings.market,
        "base_de_datos": svc.db.dialect,
        "revision": svc.db.revision(),
    }


@operation(bp, "/estrategias", "GET", "Strategies with their parameter schemas")
def strategies():  # type: ignore[no-untyped-def]
    return {"estrategias": listar_estrategias()}


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return build_openapi(API_VERSION)


@bp.get("/docs")
def docs():  # type: ignore[no-untyped-def]
    return render_template("docs.html", spec=build_openapi(API_VERSION))
