"""One schema source for the REST API: pydantic models validate requests and build OpenAPI 3."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, request
from pydantic import BaseModel, ValidationError

from core.errors import DataError, KryptelionError
from core.intervals import to_ms


class RequestError(KryptelionError):
    """A request the API cannot accept; carries its HTTP status and field details."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or {}
        self.headers = headers or {}


@dataclass
class Operation:
    path: str
    method: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    statuses: tuple[int, ...]


@dataclass
class Registry:
    """Every documented operation, in registration order."""

    operations: list[Operation] = field(default_factory=list)


REGISTRY = Registry()


# The tags pydantic adds to an error's location for each member of a union (`float | str`).
_UNION_TAGS = frozenset({"float", "int", "str", "bool", "constrained-str", "constrained-float"})


def _errors(error: ValidationError) -> dict[str, Any]:
    """{field path: message}, one per field (the first), union tags left out of the path."""
    out: dict[str, Any] = {}
    for item in error.errors():
        parts = [str(p) for p in item["loc"] if p not in _UNION_TAGS and "[" not in str(p)]
        out.setdefault(".".join(parts) or "body", item["msg"])
    return out


def _first_non_finite(payload: Any) -> str | None:
    """The dotted path of the first NaN or infinite number in a parsed JSON document."""
    stack: list[tuple[str, Any]] = [("", payload)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path or "body"
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None


def read_json(raw: bytes) -> Any:
    """A request body parsed as JSON: 400 when it is not JSON or nests deeper than Python can
    parse, 422 naming the first field whose number is not finite (NaN, Infinity, 1e999)."""
    try:
        payload = json.loads(raw)
    except ValueError:
        raise RequestError(400, "the body is not valid JSON") from None
    except RecursionError:
        raise RequestError(400, "the body nests too deeply to be parsed") from None
    bad = _first_non_finite(payload)
    if bad is not None:
        raise RequestError(422, "numbers must be finite", {bad: "not a finite number"})
    return payload


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The JSON body validated by `model`: 415 without JSON, 400 bad JSON, 422 bad fields."""
    if not request.is_json:
        raise RequestError(415, "the body must be JSON (Content-Type: application/json)")
    payload = read_json(request.get_data(cache=True))
    if not isinstance(payload, dict):
        raise RequestError(422, "the body must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise RequestError(422, "invalid fields", _errors(error)) from None


def time_param(value: str | int | None, field: str) -> int | None:
    """Epoch ms of an optional ISO date or epoch ms; 400 naming `field` when it is not one."""
    if value is None:
        return None
    try:
        return to_ms(value)
    except DataError as error:
        raise RequestError(400, f"{field}: {error}", {field: str(error)}) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    """Query parameters validated by `model`; 400 naming each bad parameter."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise RequestError(400, "invalid query parameters", _errors(error)) from None


def operation(
    blueprint: Blueprint,
    rule: str,
    method: str,
    summary: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    statuses: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view and document it; the view receives `body=` / `query=` already validated."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            for name, value in kwargs.items():
                # Path ids beyond a 64-bit integer cannot exist in any database.
                if isinstance(value, int) and not 0 <= value < 2**63:
                    raise RequestError(404, f"{name} {value} does not exist")
            if body is not None:
                kwargs["body"] = parse_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            return view(**kwargs)

        blueprint.add_url_rule(rule, view_func=wrapper, methods=[method])
        # What the wrapper itself can answer is documented with every such operation.
        documented = set(statuses) | ({400, 413, 415, 422} if body else set())
        documented |= {400} if query else set()
        documented |= {404} if "<int:" in rule else set()
        documented |= {401} if method in ("POST", "PUT", "PATCH", "DELETE") else set()
        openapi_path = rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        REGISTRY.operations.append(
            Operation(
                openapi_path,
                method.lower(),
                summary,
                blueprint.name,
                body,
                query,
                response,
                tuple(sorted(documented)),
            )
        )
        return wrapper

    return decorate
