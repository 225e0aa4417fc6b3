#!/usr/bin/env bash
# Install or upgrade Kryptelion on a Debian 12 machine (a Compute Engine VM, any server), as root:
#
#   sudo deploy/install.sh [--database-url URL] [--api-token TOKEN] [--market demo|testnet|binance]
#                          [--trading-mode paper|testnet|live] [--yes] [--no-start]
#
# It creates the system user `kryptelion`, puts the code in /opt/kryptelion/app and the locked
# requirements in the virtualenv /opt/kryptelion/venv, writes the settings to /etc/kryptelion/env
# (mode 600), applies the database migrations and installs the systemd units of deploy/systemd.
# A second run upgrades in place: new code and requirements, migrations, restarted services; the
# settings already in /etc/kryptelion/env are kept unless given again, and the data is untouched.
# Missing settings are asked for on a terminal (or take their defaults with --yes): DATABASE_URL
# defaults to a SQLite file in /var/lib/kryptelion, API_TOKEN to a new random token.
# Live trading is never switched on here: TRADING_MODE=live also needs LIVE_TRADING_CONFIRM=yes,
# which only an edit of /etc/kryptelion/env sets.
set -euo pipefail

PREFIX=/opt/kryptelion
APP="$PREFIX/app"
VENV="$PREFIX/venv"
ETC=/etc/kryptelion
ENV_FILE="$ETC/env"
STATE=/var/lib/kryptelion
UNITS=/etc/systemd/system
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES=(kryptelion-web kryptelion-bridge)

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "==> $*"; }

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

DATABASE_URL_ARG="" API_TOKEN_ARG="" MARKET_ARG="" TRADING_MODE_ARG="" ASSUME_YES=0 START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --database-url) DATABASE_URL_ARG="${2:?--database-url needs a value}"; shift 2 ;;
    --api-token) API_TOKEN_ARG="${2:?--api-token needs a value}"; shift 2 ;;
    --market) MARKET_ARG="${2:?--market needs a value}"; shift 2 ;;
    --trading-mode) TRADING_MODE_ARG="${2:?--trading-mode needs a value}"; shift 2 ;;
    --yes|-y) ASSUME_YES=1; shift ;;
    --no-start) START=0; shift ;;
    --help|-h) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
[ -f "$SOURCE/run.py" ] && [ -f "$SOURCE/requirements.txt" ] || die "no Kryptelion checkout at $SOURCE"
if ! grep -q '^VERSION_ID="12"' /etc/os-release 2>/dev/null; then
  echo "install.sh: warning: made for Debian 12; this is $(. /etc/os-release; echo "${PRETTY_NAME:-unknown}")" >&2
fi

# --- settings ---------------------------------------------------------------------------------
# Current value of KEY in the env file (values are written single-quoted, see write_setting).
current() {
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^$1='\(.*\)'\$/\1/p; s/^$1=\([^']*\)\$/\1/p" "$ENV_FILE" | tail -1
}

ask() {  # ask KEY DEFAULT PROMPT -> the given, existing, typed or default value
  local key="$1" default="$2" prompt="$3" value
  value="$(current "$key")"
  if [ -z "$value" ]; then
    value="$default"
    if [ "$ASSUME_YES" -eq 0 ] && [ -t 0 ]; then
      read -r -p "$prompt [$( [ "$key" = API_TOKEN ] && echo "a new random token" || echo "$default")]: " typed
      value="${typed:-$default}"
    fi
  fi
  printf '%s' "$value"
}

check_value() {  # values go inside single quotes: one line, no quote
  case "$2" in *"'"*|*$'\n'*) die "$1 cannot contain a single quote or a new line" ;; esac
}

write_setting() {  # write_setting KEY VALUE: replace or append KEY='VALUE' (file mode 600)
  check_value "$1" "$2"
  local tmp
  tmp="$(mktemp "$ETC/.env.XXXXXX")"
  { [ -f "$ENV_FILE" ] && grep -v "^$1=" "$ENV_FILE" || true; printf "%s='%s'\n" "$1" "$2"; } > "$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$ENV_FILE"
}

install -d -m 755 "$ETC" "$ETC/bots"
[ -f "$ENV_FILE" ] || { install -m 600 /dev/null "$ENV_FILE"; echo "# Kryptelion settings (README: Configuration); read by the kryptelion-* units." > "$ENV_FILE"; }
chmod 600 "$ENV_FILE"

DATABASE_URL="${DATABASE_URL_ARG:-$(ask DATABASE_URL "sqlite:///$STATE/datos_historicos.db" "DATABASE_URL")}"
MARKET="${MARKET_ARG:-$(ask MARKET demo "MARKET (demo, testnet, binance)")}"
TRADING_MODE="${TRADING_MODE_ARG:-$(ask TRADING_MODE paper "TRADING_MODE (paper, testnet, live)")}"
API_TOKEN="${API_TOKEN_ARG:-$(ask API_TOKEN "" "API_TOKEN")}"
case "$MARKET" in demo|testnet|binance) ;; *) die "MARKET must be demo, testnet or binance, not $MARKET" ;; esac
case "$TRADING_MODE" in paper|testnet|live) ;; *) die "TRADING_MODE must be paper, testnet or live, not $TRADING_MODE" ;; esac
if [ "$TRADING_MODE" = live ] && [ "$(current LIVE_TRADING_CONFIRM)" != yes ]; then
  die "TRADING_MODE=live trades real money: it also needs MARKET=binance, the Binance keys and LIVE_TRADING_CONFIRM=yes, written by hand in $ENV_FILE first"
fi
[ -n "$API_TOKEN" ] || API_TOKEN="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))' 2>/dev/null || od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"

# --- system packages and user -----------------------------------------------------------------
say "system packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates postgresql-client >/dev/null

if ! id kryptelion >/dev/null 2>&1; then
  say "system user kryptelion"
  useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin kryptelion
fi
install -d -m 750 -o kryptelion -g kryptelion "$STATE" /var/cache/kryptelion
chown -R kryptelion:kryptelion "$STATE" /var/cache/kryptelion  # a reinstall may have a new uid

# The settings need python3 (token) and the user exists now: write them.
write_setting DATABASE_URL "$DATABASE_URL"
write_setting MARKET "$MARKET"
write_setting TRADING_MODE "$TRADING_MODE"
write_setting API_TOKEN "$API_TOKEN"
write_setting DATA_DIR "$(current DATA_DIR | grep . || echo "$STATE")"
write_setting NUMBA_CACHE_DIR "$(current NUMBA_CACHE_DIR | grep . || echo /var/cache/kryptelion/numba)"

# --- code and requirements --------------------------------------------------------------------
say "code into $APP"
install -d -m 755 "$PREFIX"
NEW="$PREFIX/app.new"
rm -rf "$NEW" && install -d -m 755 "$NEW"
# Everything but the checkout's own data, settings, environments and caches.
tar -C "$SOURCE" --exclude=.git --exclude=./venv --exclude=./.venv --exclude=__pycache__ \
    --exclude=./config/.env --exclude='./data/*.db*' --exclude='./datos_historicos.db*' \
    --exclude=./artifacts --exclude=.pytest_cache --exclude=.mypy_cache --exclude=.ruff_cache -cf - . \
  | tar -C "$NEW" -xf -
chown -R root:root "$NEW"

say "requirements into $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$NEW/requirements.txt"
"$VENV/bin/python" -m compileall -q "$NEW" >/dev/null  # the services cannot write .pyc files

was_running=()
if [ -d /run/systemd/system ]; then
  for unit in "${SERVICES[@]}" kryptelion-demo $(systemctl list-units --plain --no-legend 'kryptelion-bot@*' 2>/dev/null | awk '{print $1}'); do
    systemctl is-active --quiet "$unit" && was_running+=("$unit")
  done
  [ ${#was_running[@]} -eq 0 ] || { say "stopping ${was_running[*]}"; systemctl stop "${was_running[@]}"; }
fi
rm -rf "$PREFIX/app.old"
[ -d "$APP" ] && mv "$APP" "$PREFIX/app.old"
mv "$NEW" "$APP"

# --- database ---------------------------------------------------------------------------------
say "database migrations"
(
  set -a
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  set +a
  cd "$STATE"
  runuser -u kryptelion -- "$VENV/bin/python" "$APP/run.py" db upgrade
)

# --- services ---------------------------------------------------------------------------------
say "systemd units"
install -m 644 "$APP"/deploy/systemd/*.service "$UNITS/"
install -d -m 755 "$UNITS/kryptelion-.service.d"
install -m 644 "$APP"/deploy/systemd/kryptelion-.service.d/*.conf "$UNITS/kryptelion-.service.d/"
[ "$MARKET" = demo ] && SERVICES=(kryptelion-demo "${SERVICES[@]}")

if [ "$START" -eq 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --quiet "${SERVICES[@]}"
  [ "$MARKET" = demo ] || systemctl disable --now --quiet kryptelion-demo 2>/dev/null || true
  say "starting ${SERVICES[*]} ${was_running[*]}"
  systemctl restart "${SERVICES[@]}" ${was_running[@]+"${was_running[@]}"}
  PORT="$(current WEB_PORT)"
  for _ in $(seq 60); do
    if "$VENV/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${PORT:-5000}/health', timeout=2)" 2>/dev/null; then
      say "Kryptelion is up: http://127.0.0.1:${PORT:-5000}/health answers (logs: journalctl -u kryptelion-web)"
      exit 0
    fi
    sleep 1
  done
  die "the web app did not answer /health within 60 s: journalctl -u kryptelion-web -n 50"
fi
say "installed; systemd is not running here (or --no-start): start with systemctl enable --now ${SERVICES[*]}"
