"""One immutable, validated `Settings` built from `config/.env` plus the environment."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
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
# A URL's password runs from `user:` to the last `@` of the URL, so one holding a raw `@`, `:` or
# `/` is hidden whole (a URL never holds whitespace: that ends it inside a message).
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*:)\S*@")
_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd|pwd)=)[^&#\s]*", re.IGNORECASE)
# user[:password]@host[:port]/database...: the credentials end at the last `@` before the host.
_DB_CREDENTIALS = re.compile(
    r"(?P<user>[^:/?#@]*)(?::(?P<password>.*))?@(?P<rest>[^/?#@]*/.*)", re.S
)
_URL_UNSAFE = {"@": "%40", "/": "%2F", "?": "%3F", "#": "%23"}
_HOST = re.compile(r"[A-Za-z0-9.\-:]+")
# The offline demo exchange's own account: documented, not secret (it only trades demo money).
DEFAULT_DEMO_API_KEY = "kryptelion-demo-key"
DEFAULT_DEMO_API_SECRET = "kryptelion-demo-secret"
DEFAULT_DEMO_BALANCE = 10_000.0
# The API keys the demo exchange accepts (Binance's own are 64 letters and digits).
DEMO_API_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_DEMO_BALANCE = 1e12


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


NO_TOKEN = Secret("")  # the default of every server: loopback binds only


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
    demo_api_key: Secret = Secret(DEFAULT_DEMO_API_KEY)
    demo_api_secret: Secret = Secret(DEFAULT_DEMO_API_SECRET)
    demo_balance: float = DEFAULT_DEMO_BALANCE
    api_token: Secret = Secret("")
    log_level: str = "INFO"
    backtest_workers: int = 0  # 0: one per core
    backtest_max_download: int = 200_000
    jobs_max: int = 1  # jobs (optimisations) running at once; the others wait their turn

    @property
    def is_demo(self) -> bool:
        return self.market == "demo"

    def trading_refusal(self, mode: str) -> str | None:
        """Why these settings may not run a bot in `mode` (None: they may). The one rule the
        API (creating a bot) and the bot host (starting one) both apply: live needs the live
        confirmation on Binance with keys; testnet trades the testnet or the demo exchange."""
        if mode == "live" and not (
            self.live_trading_confirm and self.market == "binance" and self.binance_api_key
        ):
            return (
                "modo live needs the live settings: MARKET=binance, LIVE_TRADING_CONFIRM=yes and "
                "BINANCE_API_KEY / BINANCE_API_SECRET"
            )
        if mode == "testnet" and self.market not in ("testnet", "demo"):
            return f"modo testnet needs MARKET=testnet or demo, not {self.market}"
        if mode == "testnet" and self.market == "testnet" and not self.binance_api_key:
            return "modo testnet on MARKET=testnet needs BINANCE_API_KEY / BINANCE_API_SECRET"
        return None

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str):
                value = redact_url(value)
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"


def redact_url(text: str) -> str:
    """`text` (a URL or a message holding URLs) with every URL password replaced by `***`.

    The one redaction used wherever a URL reaches a message, an exception, a log or a response;
    a `password=` query parameter is hidden too.
    """
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def quote_database_password(url: str) -> str:
    """`url` with the `@`, `/`, `?` and `#` of its password percent-encoded, so SQLAlchemy and
    urllib read the password the user wrote instead of cutting it at its first `@` or `/`."""
    scheme, sep, tail = url.partition("://")
    match = _DB_CREDENTIALS.fullmatch(tail)
    if not sep or match is None or match["password"] is None:
        return url
    password = "".join(_URL_UNSAFE.get(char, char) for char in match["password"])
    return f"{scheme}://{match['user']}:{password}@{match['rest']}"


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


def _plain_host(host: str) -> str | None:
    """`host` as a socket binds it (an IPv6 address loses its URL brackets); None if malformed."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]") and ":" in host:
        host = host[1:-1]
    return host if _HOST.fullmatch(host) else None


def _host(env: Mapping[str, str], key: str, default: str) -> str:
    value = env.get(key, "").strip() or default
    plain = _plain_host(value)
    if plain is None:
        raise ConfigError(f"{key}: {value!r} is not a host name or IP address")
    return plain


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine: any address of 127.0.0.0/8
    (also in the short forms the OS binds, such as 127.1), ::1 (bracketed or not), localhost."""
    plain = _plain_host(host)
    if plain is None:
        return False
    if plain.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(plain).is_loopback
    except ValueError:
        pass
    if ":" in plain:
        return False
    try:
        # Read a short IPv4 form (127.1, 2130706433, 0x7f.1) the way bind() will.
        return socket.inet_aton(plain)[0] == 127
    except OSError:
        return False


def check_bind(host: str, api_token: Secret, server: str) -> str:
    """The address to bind for `host` (an IPv6 address without brackets), checked for `server`
    (e.g. "the bridge"): every server calls this just before it opens its socket.

    Raises ConfigError for a malformed host, and when `host` accepts outside connections (not
    127.0.0.0/8, ::1 or localhost) while API_TOKEN is empty.
    """
    plain = _plain_host(host)
    if plain is None:
        raise ConfigError(f"{server}: {host!r} is not a host name or IP address")
    if not api_token and not is_loopback(plain):
        raise ConfigError(
            f"API_TOKEN: required to serve {server} on {plain}, which accepts outside "
            "connections (set API_TOKEN, or bind 127.0.0.1)"
        )
    return plain


def url_host(host: str) -> str:
    """`host` as written inside a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def _url(env: Mapping[str, str], key: str, schemes: tuple[str, ...]) -> str:
    value = env.get(key, "").strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{key}: {redact_url(value)!r} is not a {'/'.join(schemes)} URL")
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
                f"DATABASE_URL: {redact_url(raw)!r} names no file (use sqlite:///path/to/file.db)"
            )
        if path != ":memory:" and not Path(path).is_absolute():
            return f"sqlite:///{PROJECT_ROOT / path}"
        return raw
    raw = quote_database_password(raw)
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


def _count(env: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{key}: {raw!r} is not a whole number from {low} to {high}")
    return int(raw)


def _demo_account(env: Mapping[str, str]) -> tuple[Secret, Secret, float]:
    """DEMO_API_KEY, DEMO_API_SECRET and DEMO_BALANCE (the documented defaults when empty)."""
    key = env.get("DEMO_API_KEY", "").strip() or DEFAULT_DEMO_API_KEY
    if not DEMO_API_KEY_PATTERN.fullmatch(key):
        raise ConfigError("DEMO_API_KEY: use 1-64 letters, digits, '-' or '_'")
    secret = env.get("DEMO_API_SECRET", "").strip() or DEFAULT_DEMO_API_SECRET
    raw = env.get("DEMO_BALANCE", "").strip()
    try:
        balance = float(raw) if raw else DEFAULT_DEMO_BALANCE
    except ValueError:
        raise ConfigError(f"DEMO_BALANCE: {raw!r} is not a number") from None
    if not 0 < balance <= _MAX_DEMO_BALANCE:  # also refuses nan and inf
        raise ConfigError(f"DEMO_BALANCE: {raw!r} must be > 0 and <= {_MAX_DEMO_BALANCE:g} USDT")
    return Secret(key), Secret(secret), balance


def _market_urls(
    env: Mapping[str, str], market: str, demo_host: str, demo_port: int
) -> tuple[str, str]:
    if market == "demo":
        # The demo market always means our local exchange, whatever URLs an old .env still holds.
        host = url_host(demo_host)
        return f"http://{host}:{demo_port}", f"ws://{host}:{demo_port}"
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
    if mode == "testnet" and market not in ("testnet", "demo"):
        raise ConfigError(
            f"MARKET: TRADING_MODE=testnet needs MARKET=testnet (or demo), not {market!r}"
        )
    # On MARKET=demo the exchange broker trades the demo exchange's own account.
    if mode == "live" or (mode == "testnet" and market == "testnet"):
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
    demo_key, demo_secret, demo_balance = _demo_account(env)
    web_host = _host(env, "WEB_HOST", "127.0.0.1")
    bridge_host = _host(env, "BRIDGE_HOST", "127.0.0.1")
    api_token = Secret(env.get("API_TOKEN", "").strip())
    servers = (("the web app", "WEB_HOST", web_host), ("the bridge", "BRIDGE_HOST", bridge_host),
               ("the demo exchange", "DEMO_HOST", demo_host))  # fmt: skip
    for server, key, host in servers:
        check_bind(host, api_token, f"{server} ({key})")
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
        demo_api_key=demo_key,
        demo_api_secret=demo_secret,
        demo_balance=demo_balance,
        api_token=api_token,
        log_level=_choice(env, "LOG_LEVEL", LOG_LEVELS, "INFO"),
        backtest_workers=_count(env, "BACKTEST_WORKERS", 0, 0, 64),
        backtest_max_download=_count(env, "BACKTEST_MAX_DOWNLOAD", 200_000, 0, 100_000_000),
        jobs_max=_count(env, "JOBS_MAX", 1, 1, 64),
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
