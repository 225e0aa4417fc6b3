"""Build the OpenAPI 3.1 document from the operations registered in app.api."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from app.api import REGISTRY
from app.schemas import Error

_REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


def _parameters(path: str, query: type[BaseModel] | None) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    if query is not None:
        schema = query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": prop,
                }
            )
    return params


def build_openapi(version: str) -> dict[str, Any]:
    """The OpenAPI document of every registered operation, with schemas and error bodies."""
    components: dict[str, Any] = {}
    error_ref = _schema(Error, components)
    paths: dict[str, dict[str, Any]] = {}
    for op in REGISTRY.operations:
        ok = next((code for code in (201, 202) if code in op.statuses), 200)
        content = (
            {"application/json": {"schema": _schema(op.response, components)}}
            if op.response is not None
            else {"application/json": {"schema": {"type": "object"}}}
        )
        responses: dict[str, Any] = {str(ok): {"description": "OK", "content": content}}
        for status in op.statuses:
            if status >= 400:
                responses[str(status)] = {
                    "description": "error",
                    "content": {"application/json": {"schema": error_ref}},
                }
        entry: dict[str, Any] = {
            "summary": op.summary, "tags": [op.tag], "responses": responses,
            "parameters": _parameters(op.path, op.query),
        }  # fmt: skip
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(op.body, components)}},
            }
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kryptelion API",
            "version": version,
            "description": "Binance USDT-M futures workbench: backtests, optimisations (jobs), "
            "orders, candles.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
