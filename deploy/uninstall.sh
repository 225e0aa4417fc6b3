#!/usr/bin/env bash
# Remove what deploy/install.sh installed — services, code, virtualenv, settings, caches and the
# kryptelion user — but never the database: a PostgreSQL database is not touched, and the data
# folder /var/lib/kryptelion (SQLite files, the demo exchange's state) stays where it is.
# Keep a copy of /etc/kryptelion/env first if you will need its DATABASE_URL or keys again.
#
#   sudo deploy/uninstall.sh
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: run as root (sudo $0)" >&2; exit 1; }

if [ -d /run/systemd/system ]; then
  units=$(systemctl list-units --all --plain --no-legend 'kryptelion-*' 2>/dev/null | awk '{print $1}')
  # shellcheck disable=SC2086
  [ -z "$units" ] || systemctl disable --now --quiet $units
fi
rm -f /etc/systemd/system/kryptelion-*.service
rm -rf /etc/systemd/system/kryptelion-.service.d
[ -d /run/systemd/system ] && systemctl daemon-reload
rm -rf /opt/kryptelion /etc/kryptelion /var/cache/kryptelion
if id kryptelion >/dev/null 2>&1; then
  userdel kryptelion
fi
echo "==> Kryptelion removed; the data in /var/lib/kryptelion and any PostgreSQL database are kept"
