"""create_app: the Flask app with its blueprints, JSON errors, auth and shared services."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from app import errors, jobs
from app.api import RequestError
from app.routes import (
    backtest,
    bots,
    cruces,
    health,
    metrics,
    optimizaciones,
    ordenes,
    pages,
    senales,
    trabajos,
    velas,
)
from app.services import Services
from config.settings import Settings, load_settings
from core.repository import Database

MAX_BODY_BYTES = 64 * 1024
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


class FiniteJSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that NaN or Infinity raise instead of becoming invalid JSON."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


def create_app(settings: Settings | None = None, db: Database | None = None) -> Flask:
    """Build the app for `settings` (default: config/.env + environment) and its database."""
    settings = settings or load_settings()
    if db is None:
        db = Database(settings.database_url)  # a SQLite file's folder is created on opening
    app = Flask(__name__)
    app.json = FiniteJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["kryptelion"] = Services(settings=settings, db=db)
    errors.register(app)
    blueprints = (
        health, ordenes, backtest, optimizaciones, trabajos, bots, velas, cruces, senales, metrics,
    )  # fmt: skip
    for module in (*blueprints, pages):
        app.register_blueprint(module.bp)
    jobs.init_app(app, settings, db)  # marks the jobs a killed app left interrumpida

    @app.before_request
    def require_token() -> None:
        """With API_TOKEN set, changing anything needs `Authorization: Bearer <token>`."""
        token = settings.api_token.reveal()
        if not token or request.method not in MUTATING:
            return
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise RequestError(401, "missing or wrong Authorization: Bearer token")

    return app
