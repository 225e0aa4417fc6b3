"""Strict readers of Binance JSON fields: a missing or mistyped field is a MalformedPayloadError.

Each reader names the field and the payload (`where`) it concerns; none fills a gap with zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from core.errors import MalformedPayloadError

E = TypeVar("E", bound=Enum)
Json = Mapping[str, Any]


def _bad(where: str, key: str, why: str) -> MalformedPayloadError:
    return MalformedPayloadError(key, f"{where}: field {key!r} {why}")


def raw(data: Json, key: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise MalformedPayloadError(key, f"{where}: expected an object, got {type(data).__name__}")
    if key not in data or data[key] is None:
        raise _bad(where, key, "is missing")
    return data[key]


def dec(data: Json, key: str, where: str) -> Decimal:
    """The field as a finite Decimal (Binance sends numbers as strings)."""
    value = raw(data, key, where)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(where, key, f"is not a number: {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _bad(where, key, f"is not a number: {value!r}") from None
    if not number.is_finite():
        raise _bad(where, key, f"is not finite: {value!r}")
    return number


def opt_dec(data: Json, key: str, where: str) -> Decimal | None:
    """The field as a Decimal, or None when absent or empty ("" is how Binance says "none")."""
    if isinstance(data, Mapping) and data.get(key) in (None, ""):
        return None
    return dec(data, key, where)


def integer(data: Json, key: str, where: str) -> int:
    value = raw(data, key, where)
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
    ):
        raise _bad(where, key, f"is not a whole number: {value!r}")
    return int(value)


def opt_int(data: Json, key: str, where: str) -> int | None:
    return None if data.get(key) in (None, "", 0, "0") else integer(data, key, where)


def text(data: Json, key: str, where: str) -> str:
    value = raw(data, key, where)
    if not isinstance(value, str):
        raise _bad(where, key, f"is not a string: {value!r}")
    return value


def flag(data: Json, key: str, where: str) -> bool:
    """A boolean, also as Binance's "true"/"false" strings."""
    value = raw(data, key, where)
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise _bad(where, key, f"is not a boolean: {value!r}")


def choice(kind: type[E], data: Json, key: str, where: str) -> E:
    """The field as a member of `kind`, by value."""
    value = text(data, key, where)
    try:
        return kind(value)
    except ValueError:
        raise _bad(where, key, f"{value!r} is not one of {[m.value for m in kind]}") from None


def named(kind: type[E], data: Json, key: str, where: str) -> E:
    """The field as a member of `kind`, by member name (Binance's word for core's enums)."""
    value = text(data, key, where)
    if value not in kind.__members__:
        raise _bad(where, key, f"{value!r} is not one of {list(kind.__members__)}")
    return kind[value]


def rows(data: Any, parse: Callable[[Json], Any], where: str) -> list[Any]:
    """Each element of a JSON array parsed by `parse`."""
    if not isinstance(data, list):
        raise MalformedPayloadError("", f"{where}: expected an array, got {type(data).__name__}")
    return [parse(row) for row in data]
