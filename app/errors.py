"""Every error becomes JSON {"error": ..., "detalle": {...}} with its status, in one place."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from app.api import RequestError
from core.errors import (
    BotStateError,
    ConfigError,
    DatabaseError,
    DataError,
    ExchangeError,
    InvalidOrderError,
    KryptelionError,
    NotFoundError,
    OrderStateError,
    StrategyError,
)

log = logging.getLogger(__name__)
STATUS: dict[type[KryptelionError], int] = {
    NotFoundError: 404,
    InvalidOrderError: 422,
    OrderStateError: 409,
    BotStateError: 409,
    DataError: 400,
    StrategyError: 400,
    ExchangeError: 502,
    DatabaseError: 503,
    ConfigError: 500,
}


def error_response(status: int, message: str, detail: dict | None = None) -> Response:
    response = jsonify({"error": message, "detalle": detail or {}})
    response.status_code = status
    return response


def status_of(error: KryptelionError) -> int:
    if isinstance(error, RequestError):
        return error.status
    return next((code for cls, code in STATUS.items() if isinstance(error, cls)), 500)


def register(app: Flask) -> None:
    @app.errorhandler(KryptelionError)
    def kryptelion(error: KryptelionError) -> Response:
        detail = getattr(error, "detail", None)
        response = error_response(status_of(error), str(error), detail)
        response.headers.update(getattr(error, "headers", {}))
        return response

    @app.errorhandler(HTTPException)
    def http(error: HTTPException) -> Response:
        response = error_response(error.code or 500, error.description or error.name)
        for name, value in error.get_headers():
            if name.lower() != "content-type":  # keep Allow (405), Retry-After, ...
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # The traceback goes to the log, never to the client.
        log.exception("unhandled error")
        return error_response(500, "internal error; see the server log")
