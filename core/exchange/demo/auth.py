"""Binance's request authentication for the demo exchange: API key header, timestamp, HMAC."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote_plus

from config.settings import DEMO_API_KEY_PATTERN
from core.exchange.demo.errors import BinanceError, illegal_digits, mandatory_missing

API_KEY_HEADER = "X-MBX-APIKEY"
DEFAULT_RECV_WINDOW = 5_000
MAX_RECV_WINDOW = 60_000
# How far ahead of the server's clock a timestamp may be, as Binance allows.
MAX_AHEAD_MS = 1_000
API_KEY_PATTERN = DEMO_API_KEY_PATTERN
_DIGITS = re.compile(r"^[0-9]{1,20}$")


def sign(secret: str, payload: str) -> str:
    """The hex HMAC-SHA256 of `payload` keyed with `secret`, as Binance signs requests."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def api_key_of(headers: Mapping[str, str], secrets: Mapping[str, str]) -> str:
    """The request's known API key.

    Raises BinanceError (HTTP 401): -2014 for a missing or malformed key, -2015 for an unknown one.
    """
    key = headers.get(API_KEY_HEADER, "")
    if not API_KEY_PATTERN.fullmatch(key):
        raise BinanceError(-2014, "API-key format invalid.", status=401)
    if key not in secrets:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
    return key


def _split_signature(raw: str) -> tuple[str, str | None]:
    """`raw` without its `signature=` pair, and that signature (None if absent)."""
    kept, signature = [], None
    for pair in raw.split("&") if raw else ():
        if pair.startswith("signature="):
            signature = unquote_plus(pair[len("signature=") :])
        else:
            kept.append(pair)
    return "&".join(kept), signature


def _whole(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw):
        raise illegal_digits(name)
    return int(raw)


def check_timestamp(params: Mapping[str, str], now_ms: int, wall_ms: int | None = None) -> None:
    """Accept `timestamp` within `recvWindow` (default 5000, at most 60000) of `now_ms`, or of
    `wall_ms` when given (the demo's second clock: see account_routes.signed).

    Raises BinanceError: -1102 without timestamp, -1100 for a non-number, -1131 for a recvWindow
    over 60000, -1021 outside the window (or more than 1 s ahead of the clock).
    """
    timestamp = _whole(params, "timestamp")
    if timestamp is None:
        raise mandatory_missing("timestamp")
    window = _whole(params, "recvWindow")
    window = DEFAULT_RECV_WINDOW if window is None else window
    if window > MAX_RECV_WINDOW:
        raise BinanceError(-1131, f"recvWindow must be less than {MAX_RECV_WINDOW}.")
    if wall_ms is not None and wall_ms - window <= timestamp < wall_ms + MAX_AHEAD_MS:
        return
    if timestamp >= now_ms + MAX_AHEAD_MS:
        raise BinanceError(
            -1021, f"Timestamp for this request was {MAX_AHEAD_MS}ms ahead of the server's time."
        )
    if now_ms - timestamp > window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def verify(
    headers: Mapping[str, str],
    raw_query: str,
    raw_body: str,
    secrets: Mapping[str, str],
    now_ms: int,
    wall_ms: int | None = None,
) -> tuple[str, dict[str, str]]:
    """Check a signed request as Binance does; returns (API key, its parameters).

    The signature covers the exact query string followed by the exact form body (without the
    `signature` pair itself), keyed with the API key's secret. Raises BinanceError: -2014/-2015
    (HTTP 401) for the key, -1102/-1100/-1131/-1021 for the timestamp, -1102 without a
    signature, -1022 for a wrong one.
    """
    key = api_key_of(headers, secrets)
    query, query_signature = _split_signature(raw_query)
    body, body_signature = _split_signature(raw_body)
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(parse_qsl(body, keep_blank_values=True))
    check_timestamp(params, now_ms, wall_ms)
    signature = query_signature or body_signature
    if not signature:
        raise mandatory_missing("signature")
    expected = sign(secrets[key], query + body)
    if not signature.isascii() or not hmac.compare_digest(expected, signature.lower()):
        raise BinanceError(-1022, "Signature for this request is not valid.")
    return key, params
