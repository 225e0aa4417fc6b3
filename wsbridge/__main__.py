"""`python -m wsbridge [--host --port]`: the WebSocket bridge alone."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from config.errors import KryptelionError
from config.settings import check_bind, load_settings
from core.exchange.demo import ensure_demo_exchange
from wsbridge.bots import BotHost
from wsbridge.hub import Hub
from wsbridge.server import run_bridge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsbridge", description=__doc__)
    parser.add_argument("--host", help="default BRIDGE_HOST (127.0.0.1)")
    parser.add_argument("--port", type=int, help="default BRIDGE_PORT (8765)")
    parser.add_argument(
        "--estrategias",
        default="sma_cruce",
        help="comma-separated strategies run on every stream (default sma_cruce)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except KryptelionError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    host, port = args.host or settings.bridge_host, args.port or settings.bridge_port
    try:
        # Refuse a public bind and an unusable database before starting anything.
        check_bind(host, settings.api_token, "the bridge")
        hub = Hub.from_settings(settings, [s for s in args.estrategias.split(",") if s])
        ensure_demo_exchange(settings)  # MARKET=demo and none running: one in this process
        bots = BotHost(settings, hub.db, publish=hub.broadcast_all)
        asyncio.run(run_bridge(hub, host, port, api_token=settings.api_token, bots=bots))
    except KryptelionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
