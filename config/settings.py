"""One immutable, validated `Settings` built from `config/.env` plus the environment."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from config.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = PROJECT_ROOT / "config" / ".env"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"

MARKETS = ("demo", "binance", "testnet")
TRADING_MODES = ("paper", "testnet", "live")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MARKET_URLS = {
    "binance": ("https://fapi.binance.com", "wss://fstream.binance.com"),
    "testnet": ("https://testnet.binancefuture.com", "wss://fstream.binancefuture.com"),
}
# Path tails that older configurations append to the WebSocket host (the user's README writes
# `wss://fstream.binance.com/ws`); the client builds the current `/market/...` paths itself.
_WS_LEGACY_TAILS = ("/market/stream", "/market/ws", "/market", "/stream", "/ws")
_DB_URL = re.compile(r"^(sqlite|postgresql\+psycopg|postgresql|postgres)://")


class Secret:
    """A string that never shows itself in `repr`, `str`, logs or error messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one place that must send it (request signing, auth check)."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """Everything configurable, checked once at start-up and passed to whoever needs it."""

    market: str = "demo"
    binance_rest_url: str = ""
    binance_ws_url: str = ""
    binance_api_key: Secret = Secret("")
    binance_api_secret: Secret = Secret("")
    trading_mode: str = "paper"
    live_trading_confirm: bool = False
    database_url: str = ""
    data_dir: Path = DEFAULT_DATA_DIR
    web_host: str = "127.0.0.1"
    web_port: int = 5000
    bridge_host: str = "127.0.0.1"
    bridge_port: int = 8765
    demo_host: str = "127.0.0.1"
    demo_port: int = 9100
    demo_speed: float = 1.0
    demo_seed: int = 42
    api_token: Secret = Secret("")
    log_level: str = "INFO"

    @property
    def is_demo(self) -> bool:
        return self.market == "demo"

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "database_url":
                value = redact_url(value)
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`, safe for logs and errors."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _choice(env: Mapping[str, str], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(key, "").strip() or default
    if key == "LOG_LEVEL":
        value = value.upper()
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _port(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{key}: {raw!r} is not a port number (1-65535)")
    return int(raw)


def _host(env: Mapping[str, str], key: str, default: str) -> str:
    value = env.get(key, "").strip() or default
    if not re.fullmatch(r"[A-Za-z0-9.\-:]+", value):
        raise ConfigError(f"{key}: {value!r} is not a host name or IP address")
    return value


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(env: Mapping[str, str], key: str, schemes: tuple[str, ...]) -> str:
    value = env.get(key, "").strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{key}: {value!r} is not a {'/'.join(schemes)} URL")
    return value


def normalize_ws_url(url: str) -> str:
    """Reduce a WebSocket URL to scheme://host[:port] so stream paths are built in one place."""
    for tail in _WS_LEGACY_TAILS:
        if url.endswith(tail):
            return url[: -len(tail)]
    return url


def _database_url(env: Mapping[str, str], data_dir: Path) -> str:
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        return f"sqlite:///{data_dir / 'datos_historicos.db'}"
    match = _DB_URL.match(raw)
    if not match:
        raise ConfigError(
            f"DATABASE_URL: {redact_url(raw)!r} is not sqlite:///<file> or "
            "postgresql+psycopg://user:password@host:port/database"
        )
    if match.group(1) == "sqlite":
        path = raw[len("sqlite:///") :] if raw.startswith("sqlite:///") else ""
        if not path:
            raise ConfigError(
                f"DATABASE_URL: {raw!r} names no file (use sqlite:///path/to/file.db)"
            )
        if path != ":memory:" and not Path(path).is_absolute():
            return f"sqlite:///{PROJECT_ROOT / path}"
        return raw
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(f"DATABASE_URL: {redact_url(raw)!r} has an invalid port") from None
    if not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(f"DATABASE_URL: {redact_url(raw)!r} needs a host and a database name")
    return "postgresql+psycopg://" + raw.split("://", 1)[1]


def _number(env: Mapping[str, str], key: str, default: float, kind: type) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{key}: {raw!r} is not a {kind.__name__}") from None
    if kind is float and not 0 < value <= 10_000:
        raise ConfigError(f"{key}: {raw!r} must be > 0 and <= 10000")
    return value


def _market_urls(
    env: Mapping[str, str], market: str, demo_host: str, demo_port: int
) -> tuple[str, str]:
    if market == "demo":
        # The demo market always means our local exchange, whatever URLs an old .env still holds.
        return f"http://{demo_host}:{demo_port}", f"ws://{demo_host}:{demo_port}"
    rest_default, ws_default = MARKET_URLS[market]
    rest = _url(env, "BINANCE_REST_URL", ("http", "https")) or rest_default
    ws = _url(env, "BINANCE_WS_URL", ("ws", "wss")) or ws_default
    return rest, normalize_ws_url(ws)


def _trading(env: Mapping[str, str], market: str) -> tuple[str, bool, Secret, Secret]:
    mode = _choice(env, "TRADING_MODE", TRADING_MODES, "paper")
    confirm = env.get("LIVE_TRADING_CONFIRM", "").strip().lower() == "yes"
    key = Secret(env.get("BINANCE_API_KEY", "").strip())
    secret = Secret(env.get("BINANCE_API_SECRET", "").strip())
    if mode == "live":
        if not confirm:
            raise ConfigError(
                "LIVE_TRADING_CONFIRM: TRADING_MODE=live needs LIVE_TRADING_CONFIRM=yes"
            )
        if market != "binance":
            raise ConfigError(f"MARKET: TRADING_MODE=live needs MARKET=binance, not {market!r}")
    if mode == "testnet" and market != "testnet":
        raise ConfigError(f"MARKET: TRADING_MODE=testnet needs MARKET=testnet, not {market!r}")
    if mode in ("live", "testnet"):
        for name, value in (("BINANCE_API_KEY", key), ("BINANCE_API_SECRET", secret)):
            if not value:
                raise ConfigError(f"{name}: required when TRADING_MODE={mode}")
    return mode, confirm, key, secret


def settings_from_mapping(env: Mapping[str, str]) -> Settings:
    """Validate raw key/value pairs into Settings; raise ConfigError naming the first bad key."""
    market = _choice(env, "MARKET", MARKETS, "demo")
    data_dir = Path(env.get("DATA_DIR", "").strip() or DEFAULT_DATA_DIR)
    if not data_dir.is_absolute():
        data_dir = PROJECT_ROOT / data_dir
    demo_host = _host(env, "DEMO_HOST", "127.0.0.1")
    demo_port = _port(env, "DEMO_PORT", 9100)
    rest_url, ws_url = _market_urls(env, market, demo_host, demo_port)
    mode, confirm, api_key, api_secret = _trading(env, market)
    web_host = _host(env, "WEB_HOST", "127.0.0.1")
    bridge_host = _host(env, "BRIDGE_HOST", "127.0.0.1")
    api_token = Secret(env.get("API_TOKEN", "").strip())
    for key, host in (("WEB_HOST", web_host), ("BRIDGE_HOST", bridge_host)):
        if not is_loopback(host) and not api_token:
            raise ConfigError(f"API_TOKEN: required when {key}={host} accepts outside connections")
    return Settings(
        market=market,
        binance_rest_url=rest_url,
        binance_ws_url=ws_url,
        binance_api_key=api_key,
        binance_api_secret=api_secret,
        trading_mode=mode,
        live_trading_confirm=confirm,
        database_url=_database_url(env, data_dir),
        data_dir=data_dir,
        web_host=web_host,
        web_port=_port(env, "WEB_PORT", 5000),
        bridge_host=bridge_host,
        bridge_port=_port(env, "BRIDGE_PORT", 8765),
        demo_host=demo_host,
        demo_port=demo_port,
        demo_speed=_number(env, "DEMO_SPEED", 1.0, float),
        demo_seed=int(_number(env, "DEMO_SEED", 42, int)),
        api_token=api_token,
        log_level=_choice(env, "LOG_LEVEL", LOG_LEVELS, "INFO"),
    )


def load_settings(
    env_file: Path | None = ENV_FILE, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from `env_file` (if it exists) overlaid with `environ` (default: os.environ).

    The environment wins over the file, so a deployment can override one key without editing it.
    No file at all gives the offline demo defaults.
    """
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return settings_from_mapping(merged)
