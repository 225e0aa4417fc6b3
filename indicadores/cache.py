"""A memo of indicator results for one sweep over many parameter combinations.

An optimiser runs one strategy hundreds of times on the same candles; the combinations share
most indicator windows (a 50 x 50 SMA grid has 100 distinct averages, not 5,000). Inside
`with IndicatorCache():` every `memoized` function returns the result it computed before for
the same input arrays (the same objects) and arguments, so each window is computed once while the
strategies themselves stay unchanged. Outside one, nothing is cached and nothing changes.

Cached results are shared, so they are made read-only: a strategy that wrote into an indicator's
output would fail loudly here instead of corrupting the next combination.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextvars import ContextVar, Token
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

# Enough for the 50 fast and the current slow window of a 50 x 50 grid on a year of 1m candles.
DEFAULT_MAX_BYTES = 512 * 2**20

_ACTIVE: ContextVar[IndicatorCache | None] = ContextVar("indicator_cache", default=None)


def _key_part(value: Any) -> Hashable:
    """Arrays by identity (the entry keeps them alive, so the id cannot be reused), the rest by
    value."""
    if isinstance(value, np.ndarray):
        return ("array", id(value))
    return ("value", type(value).__name__, value)


def _freeze(result: Any) -> tuple[Any, int]:
    """`result` (an array, a tuple holding arrays, or a number) made read-only, and its size."""
    parts = result if isinstance(result, tuple) else (result,)
    arrays = [part for part in parts if isinstance(part, np.ndarray)]
    for array in arrays:
        array.flags.writeable = False
    return result, sum(array.nbytes for array in arrays)


class IndicatorCache:
    """Least recently used results of `memoized` calls, within a byte budget."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[tuple[Any, ...], Any, int]] = OrderedDict()
        self._token: Token[IndicatorCache | None] | None = None

    def __enter__(self) -> IndicatorCache:
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None

    def call(self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):  # type: ignore[no-untyped-def]
        """function(*args, **kwargs), from the memo when it was computed before."""
        key = (
            function,
            tuple(_key_part(a) for a in args),
            tuple((k, _key_part(v)) for k, v in sorted(kwargs.items())),
        )
        try:
            hash(key)
        except TypeError:  # a list or a Series: no identity to key it by, so it is not cached
            return function(*args, **kwargs)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        result, size = _freeze(function(*args, **kwargs))
        # The inputs are kept with the result: while the entry lives their ids stay theirs.
        self._entries[key] = ((args, tuple(kwargs.values())), result, size)
        self.bytes += size
        while self.bytes > self.max_bytes and len(self._entries) > 1:
            _, (_, _, freed) = self._entries.popitem(last=False)
            self.bytes -= freed
        return result


def memoized(function: F) -> F:
    """`function` answered from the active IndicatorCache, if any (see the module docstring)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cache = _ACTIVE.get()
        if cache is None:
            return function(*args, **kwargs)
        return cache.call(function, args, kwargs)

    return wrapper  # type: ignore[return-value]
