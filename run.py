"""Kryptelion's command line: `python run.py [command]`; with no command it starts everything."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence

from config.errors import KryptelionError
from config.settings import Settings, check_bind, load_settings, url_host

log = logging.getLogger("kryptelion")


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    # Alembic narrates every start-up at INFO; only its warnings matter to a user.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    # waitress warns on every queued request under load; a full queue is not an error here.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    # Dask narrates its local cluster's start and stop at INFO, a connection it closed on the way
    # out with a traceback; only its warnings matter to a user. Importing distributed resets its
    # loggers from Dask's config, which reads this variable (its worker processes inherit it).
    dask_level = logging.getLevelName(max(logging.WARNING, logging.getLogger().level))
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", dask_level.lower())


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """`db upgrade` migrates the schema to head; `db current` shows where the database is;
    `db backup FILE` and `db restore FILE` copy the whole database to a file and back."""
    from config.settings import redact_url
    from core.repository import Database, database_url
    from core.repository.backup import BackupFileError, backup_database, restore_database
    from data.common import database_target

    target = database_target(args.db, settings)
    where = redact_url(database_url(target))
    copying = args.action in ("backup", "restore")
    if copying and args.file is None:
        raise BackupFileError(f"FILE: db {args.action} needs the backup file to write or read")
    if not copying and args.file is not None:
        raise BackupFileError(f"FILE: db {args.action} takes no file, got {args.file!r}")
    if args.action == "backup":
        saved = backup_database(target, args.file, force=args.force)
        print(f"{where}: backed up to {saved.path}, schema at revision {saved.revision} "
              f"({saved.size_bytes} bytes)")  # fmt: skip
        return 0
    if args.action == "restore":
        restored = restore_database(target, args.file, force=args.force)
        print(f"{where}: restored {restored.path}, schema at revision {restored.revision}")
        if restored.migrated_to is not None:
            print(f"{where}: migrated from {restored.revision} to head {restored.migrated_to}")
        return 0
    db = Database(target, migrate=args.action == "upgrade")  # creates a SQLite file's folder
    if args.action == "upgrade":
        print(f"{db.redacted_url()}: schema at revision {db.revision()} (head {db.head()})")
    else:
        current = db.revision()
        state = "up to date" if current == db.head() else f"behind head {db.head()}"
        print(f"{db.redacted_url()}: revision {current or 'none (empty)'}, {state}")
    db.close()
    return 0


def _csv_list(check: Callable[[str], object]) -> Callable[[str], list[str]]:
    """An argparse type for comma-separated values, each validated by `check`."""

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError("give at least one value")
        for item in items:
            try:
                check(item)
            except KryptelionError as error:
                raise argparse.ArgumentTypeError(str(error)) from None
        return items

    return parse


def _time_arg(text: str) -> int:
    from core.intervals import to_ms

    try:
        return to_ms(text)
    except KryptelionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _end_arg(text: str) -> int:
    """An `--end` by the one end rule (`core.intervals.end_ms`): a date alone includes that day."""
    from core.intervals import end_ms

    try:
        return end_ms(text)
    except KryptelionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


START_HELP = "inclusive; ISO date, ISO date and time, or epoch ms (UTC)"
END_HELP = "a date alone includes that whole day; a time or epoch ms is exclusive (UTC)"


def _interval_arg(text: str) -> str:
    from core.intervals import check_interval

    try:
        return check_interval(text)
    except KryptelionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _print_table(rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    widths = {key: max(len(key), *(len(str(row[key])) for row in rows)) for key in rows[0]}
    print("  ".join(key.ljust(width) for key, width in widths.items()))
    for row in rows:
        print("  ".join(str(row[key]).ljust(width) for key, width in widths.items()))


def cmd_update(args: argparse.Namespace, settings: Settings) -> int:
    """Download candles for every symbol x interval; print a summary table; 1 if any failed."""
    from core.exchange.demo import ensure_demo_exchange
    from data.common import database_for
    from data.updater import DownloadError, obtener_datos_historicos

    ensure_demo_exchange(settings)
    try:
        with database_for(args.db, settings) as db:
            summaries = obtener_datos_historicos(
                args.symbols,
                args.intervals,
                db,
                args.start,
                args.end,
                rest_url=settings.binance_rest_url,
                lookback_days=args.lookback_days,
            )
    except DownloadError as error:
        _print_table([s.as_row() for s in error.summaries.values()])
        raise
    _print_table([s.as_row() for s in summaries.values()])
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Export one stream to CSV or JSON and say where it went (stored candles: no market)."""
    from data.common import database_for
    from data.exporter import exportar_datos

    with database_for(args.db, settings) as db:
        path = exportar_datos(
            args.symbol.upper(), args.interval, args.formato, args.salida, args.start, args.end, db
        )
    print(f"exported to {path}")
    return 0


def _param_arg(text: str) -> tuple[str, object]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value: object = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip(), value


def _risk_arg(value: str | None) -> float | str | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def _trailing_arg(text: str) -> float:
    """A trailing stop's callback fraction, refused here when Binance would refuse it."""
    from core.fills import check_trailing

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 0.01, got {text!r}") from None
    try:
        check_trailing(value)
    except KryptelionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    """Load (downloading what is missing) the candles, run the strategy, print its metrics."""
    from backtesting.simulador import ejecutar_backtest
    from core.exchange.demo import ensure_demo_exchange
    from data.candles import load_run_candles
    from data.common import database_for
    from estrategias.factory import crear_estrategia

    strategy = crear_estrategia(args.strategy, **dict(args.param))
    ensure_demo_exchange(settings)
    with database_for(args.db, settings) as db:
        velas = load_run_candles(
            db, args.symbol, args.interval, args.start, args.end, rest_url=settings.binance_rest_url
        )
    result = ejecutar_backtest(
        velas,
        strategy,
        capital=args.capital,
        comision=args.comision,
        slippage=args.slippage,
        apalancamiento=args.apalancamiento,
        tamano=args.tamano,
        stop_loss=_risk_arg(args.stop_loss),
        take_profit=_risk_arg(args.take_profit),
        funding=args.funding,
        trailing=args.trailing,
    )
    print(f"{strategy!r} on {args.symbol} {args.interval}: {len(velas)} candles")
    _print_table([{"metric": k, "value": _fmt(v)} for k, v in result.metricas.items()])
    report = getattr(strategy, "report", None)
    if report:
        _print_table([{"ml": k, "value": _fmt(v)} for k, v in report.items()])
    return 0


def _number(text: str) -> int | float:
    """An int when the text is one ("5"), else a float ("0.5", "1e-3"); ValueError otherwise."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _space_arg(text: str) -> tuple[str, object]:
    """NAME=SPEC of `optimizar --espacio` as (name, what optimizar's espacio takes)."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise argparse.ArgumentTypeError(f"expected NAME=SPEC, got {text!r}")
    try:
        if ".." in spec:
            bounds, _, scale = spec.partition(":")
            low, high = (_number(part) for part in bounds.split("..", 1))
            if scale not in ("", "log"):
                raise ValueError
            return name, (low, high, "log") if scale else (low, high)
        if ":" in spec:
            first, last, step = (_number(part) for part in spec.split(":"))
            if step <= 0 or last < first:
                raise ValueError
            if all(isinstance(v, int) for v in (first, last, step)):
                return name, list(range(int(first), int(last) + 1, int(step)))
            count = int((last - first) / step + 1e-9) + 1
            return name, [round(first + i * step, 12) for i in range(count)]
        if "," in spec:
            return name, [_value(part) for part in spec.split(",")]
        return name, _value(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--espacio {name}: expected a:b:s with a <= b and s > 0, a,b,c, a..b[:log] or a "
            f"value, got {spec!r}"
        ) from None


def _value(text: str) -> object:
    """A number when the text is one, else the text (a choice such as solo_largo)."""
    try:
        return _number(text.strip())
    except ValueError:
        return text.strip()


def cmd_optimizar(args: argparse.Namespace, settings: Settings) -> int:
    """Load the candles, search the parameters with a progress bar, print the best and the
    overfitting figures."""
    from tqdm import tqdm

    from backtesting.optimizador import optimizar
    from core.exchange.demo import ensure_demo_exchange
    from data.candles import load_run_candles
    from data.common import database_for

    ensure_demo_exchange(settings)
    with database_for(args.db, settings) as db:
        velas = load_run_candles(
            db, args.symbol, args.interval, args.start, args.end, rest_url=settings.binance_rest_url
        )
    bar = tqdm(total=0, unit="comb", desc="optimizar", disable=None)

    def progress(done: int, total: int, best: dict[str, object] | None) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in (best or {}).items()))
        bar.refresh()

    objectives = args.objetivo if len(args.objetivo) > 1 else args.objetivo[0]
    try:
        result = optimizar(
            velas, args.strategy, dict(args.espacio), metodo=args.metodo, objetivo=objectives,
            capital=args.capital, comision=args.comision, validacion=args.validacion,
            workers=args.workers, cluster=args.cluster, intentos=args.intentos,
            restricciones=dict(args.restriccion) or None, semilla=args.semilla,
            progreso=progress, slippage=args.slippage, apalancamiento=args.apalancamiento,
            tamano=args.tamano, stop_loss=_risk_arg(args.stop_loss),
            take_profit=_risk_arg(args.take_profit), funding=args.funding,
            trailing=args.trailing,
        )  # fmt: skip
    finally:
        bar.close()
    _print_optimisation(result, args, len(velas))
    return 0


def _print_optimisation(result, args: argparse.Namespace, candles: int) -> None:  # type: ignore[no-untyped-def]
    """The best combinations, the Pareto front, validation and the overfitting verdict."""
    from backtesting.optimizador import LOWER_IS_BETTER

    print(
        f"{args.strategy} on {args.symbol} {args.interval}: {candles} candles, {result.metodo}, "
        f"{result.probadas} combinations ({result.omitidas} refused) in {result.segundos:.1f} s"
    )
    table = result.pareto if result.pareto is not None else result.resultados
    if len(table):
        objective = result.objetivo[0]
        table = table[table["cumple"]] if "cumple" in table else table
        table = table.sort_values(
            objective, ascending=objective in LOWER_IS_BETTER, na_position="last"
        )
        names = [n for n in dict(args.espacio)]
        shown = [*names, *result.objetivo, "total_return", "max_drawdown", "trades"]
        rows = table[list(dict.fromkeys(c for c in shown if c in table))].head(args.top)
        _print_table([{k: _fmt(v) for k, v in row.items()} for row in rows.to_dict("records")])
    print(f"best: {result.mejor}")
    if result.validacion:
        v = result.validacion
        print(
            f"{v['tipo']}: {v['objetivo']} in-sample {_fmt(v['objetivo_is_medio'])}, "
            f"out-of-sample {_fmt(v['objetivo_oos_medio'])}"
            + (
                f", out-of-sample return {_fmt(v['rentabilidad_oos'])}"
                if "rentabilidad_oos" in v
                else ""
            )  # fmt: skip
        )
        _print_table([
            {"mejor": w["mejor"], "objetivo_is": _fmt(w["objetivo_is"]),
             "objetivo_oos": _fmt(w["objetivo_oos"])}
            for w in v["ventanas"]
        ])  # fmt: skip
    print(f"deflated Sharpe: {_fmt(result.dsr)}   PBO: {_fmt(result.pbo)}")
    for note in result.avisos:
        print(f"aviso: {note}")


def _stored_bot(args: argparse.Namespace, settings: Settings, db):  # type: ignore[no-untyped-def]
    """The stored bot `run.py bot` runs: created, or the one of that name with this config."""
    from dataclasses import replace

    from core.errors import NotFoundError
    from core.models import Bot, BotMode
    from estrategias.factory import crear_estrategia

    crear_estrategia(args.strategy, **dict(args.param))  # bad names or values fail here
    name = args.nombre or f"{args.strategy}-{args.symbol}-{args.interval}"
    risk = {
        key: value
        for key, value in (("max_daily_loss", args.max_perdida_diaria),
                           ("max_drawdown", args.max_drawdown))
        if value is not None
    }  # fmt: skip
    config = Bot(
        name=name, strategy=args.strategy, symbol=args.symbol, interval=args.interval,
        params=dict(args.param), capital=args.capital, taker_fee=args.comision,
        slippage_bps=args.slippage, leverage=args.apalancamiento, size=args.tamano,
        stop_loss=args.stop_loss, take_profit=args.take_profit, trailing=args.trailing,
        risk=risk, mode=BotMode(settings.trading_mode),
    )  # fmt: skip
    try:
        existing = db.bots.get_by_name(name)
    except NotFoundError:
        return db.bots.create(config)
    return db.bots.update_config(replace(config, id=existing.id))


def _lease_holder(db, bot_id: int) -> str | None:  # type: ignore[no-untyped-def]
    """The live process that runs the bot, None once nobody does. A lease left by a process of
    this machine that is gone (killed) is released at once; another's is waited for until it
    lapses (wsbridge.bots.LEASE_MS), so a restart right after a crash simply resumes."""
    import socket

    from wsbridge.bots import LEASE_MS

    deadline = time.monotonic() + 2 * LEASE_MS / 1000
    while (holder := db.bots.holder(bot_id, int(time.time() * 1000))) is not None:
        machine, _, rest = holder.partition(":")
        pid = rest.partition(":")[0]
        if machine == socket.gethostname()[:64] and pid.isdigit() and not _alive(int(pid)):
            db.bots.release(bot_id, holder)
            continue
        if time.monotonic() > deadline:
            return holder
        print(f"bot {bot_id} is held by {holder}: waiting for its lease…", flush=True)
        time.sleep(1.0)
    return None


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def cmd_bot(args: argparse.Namespace, settings: Settings) -> int:
    """Run one bot in the foreground with a live status line; Ctrl-C stops it cleanly."""
    import asyncio

    from core.exchange.demo import ensure_demo_exchange
    from core.models import BotStatus, BotTrigger
    from core.repository import Database
    from wsbridge.bots import LEASE_MS, BotHost

    db = Database(settings.database_url)
    ensure_demo_exchange(settings)
    stored = _stored_bot(args, settings, db)
    holder = _lease_holder(db, stored.id)
    if holder is not None:
        print(f"error: bot {stored.id} {stored.name!r} runs in another process ({holder}); "
              f"stop it there, or POST /bots/{stored.id}/parar", file=sys.stderr)  # fmt: skip
        db.close()
        return 2
    print(
        f"bot {stored.id} {stored.name!r}: {stored.strategy} on {stored.symbol} "
        f"{stored.interval}, {stored.mode.value}, capital {stored.capital:g} — Ctrl-C to stop",
        flush=True,
    )

    def show(message: dict) -> None:
        if message.get("tipo") == "bot" and "equity" in message:
            line = (f"{message['estado']:<13} objetivo {message['objetivo']:+.0f}  "
                    f"equity {message['equity']:,.2f}")  # fmt: skip
            print(f"\r{line}", end="", flush=True)
        elif message.get("tipo") == "posicion":
            print(f"\n{json.dumps(message, ensure_ascii=False)}", flush=True)

    host = BotHost(settings, db, publish=show, only=stored.id)

    async def run_one() -> None:
        """Serve the bot until Ctrl-C, or until it stops from elsewhere (API, kill switch)."""
        task = asyncio.ensure_future(host.run())
        started = False
        while not task.done():
            await asyncio.sleep(0.5)
            if stored.id in host.running:
                started = True
            elif started:
                task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    try:  # from wanting it running on: a Ctrl-C at any moment ends in the clean stop below
        # Claimed before it is wanted, so the main host (`python run.py`) cannot take it first.
        if not db.bots.claim(stored.id, host.host_id, int(time.time() * 1000), LEASE_MS):
            print(f"error: bot {stored.id} was just taken by another process", file=sys.stderr)
            db.close()
            return 2
        db.bots.set_desired_running(stored.id, True)
        asyncio.run(run_one())
    except KeyboardInterrupt:
        pass
    bot = db.bots.get(stored.id)
    if bot.status not in (BotStatus.STOPPED, BotStatus.ERROR):
        db.bots.update_status(stored.id, BotTrigger.STOP, "cli", "Ctrl-C", desired_running=False)
        db.bots.update_status(stored.id, BotTrigger.FINISHED, "cli", "parado")
    else:
        db.bots.set_desired_running(stored.id, False)
    print(f"\nbot {stored.id} stopped; its trades: GET /bots/{stored.id}/operaciones", flush=True)
    db.close()
    return 0


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def cmd_demo_exchange(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the demo exchange in the foreground until Ctrl-C / SIGTERM."""
    from core.exchange.demo import demo_options, run_demo_exchange

    options = demo_options(
        settings,
        speed=args.speed or settings.demo_speed,
        seed=settings.demo_seed if args.seed is None else args.seed,
        weight_budget=args.weight_budget,
        faults=args.faults,
        state_file=args.state,
        **{
            name: value
            for name, value in (("maker_fee", args.maker_fee), ("taker_fee", args.taker_fee))
            if value is not None
        },
    )
    host, port = args.host or settings.demo_host, args.port or settings.demo_port
    run_demo_exchange(host, port, options, api_token=settings.api_token)
    return 0


def _serve_web(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve the app with waitress: the one place the web app's socket is opened."""
    from waitress import serve

    from app import create_app
    from core.exchange.demo import ensure_demo_exchange

    host = check_bind(host or settings.web_host, settings.api_token, "the web app")
    port = port or settings.web_port
    app = create_app(settings)
    ensure_demo_exchange(settings)  # the pages and /velas download candles
    print(
        f"Kryptelion web and REST API on http://{url_host(host)}:{port} (docs: /docs)"
        " — Ctrl-C to stop.",
        flush=True,
    )
    serve(app, host=host, port=port, threads=8, ident="kryptelion")


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the Flask app with waitress in the foreground."""
    _serve_web(settings, args.host, args.port)
    return 0


def _hub(settings: Settings):  # type: ignore[no-untyped-def]
    from wsbridge.hub import Hub

    return Hub.from_settings(settings, ["sma_cruce"])


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the WebSocket bridge in the foreground (SIGINT/SIGTERM stop it cleanly)."""
    import asyncio

    from core.exchange.demo import ensure_demo_exchange
    from wsbridge.server import run_bridge

    host, port = args.host or settings.bridge_host, args.port or settings.bridge_port
    # As python -m wsbridge: bind and database checked first, then the demo market if needed.
    check_bind(host, settings.api_token, "the bridge")
    hub = _hub(settings)
    ensure_demo_exchange(settings)
    bots = _bot_host(settings, hub)
    asyncio.run(run_bridge(hub, host, port, api_token=settings.api_token, bots=bots))
    return 0


def _bot_host(settings: Settings, hub):  # type: ignore[no-untyped-def]
    """The bots beside the bridge: stored running bots resume, their messages go to browsers."""
    from wsbridge.bots import BotHost

    return BotHost(settings, hub.db, publish=hub.broadcast_all)


def cmd_all(args: argparse.Namespace, settings: Settings) -> int:
    """Start everything: database, demo market (MARKET=demo), WebSocket bridge with the bots
    (those running when it last stopped resume), web app."""
    from core.repository import Database

    db = Database(settings.database_url)
    log.info("database ready: %s (revision %s)", db.redacted_url(), db.revision())
    db.close()
    print(f"Kryptelion: database ready at {db.redacted_url()}.")
    if settings.is_demo:
        from core.exchange.demo import ensure_demo_exchange

        # Something already serving DEMO_PORT (`run.py demo-exchange`, a test) is used as it is.
        started = ensure_demo_exchange(settings)
        how = "" if started else " (already running)"
        print(f"DEMO market at {settings.binance_rest_url}{how}.", flush=True)
    from wsbridge.server import BridgeThread

    hub = _hub(settings)
    BridgeThread(
        hub,
        settings.bridge_host,
        settings.bridge_port,
        api_token=settings.api_token,
        bots=_bot_host(settings, hub),
    ).start()
    print(
        f"Bridge on ws://{url_host(settings.bridge_host)}:{settings.bridge_port}/?symbol=&interval=",
        flush=True,
    )
    _serve_web(settings)
    return 0


DB_HELP = (
    "SQLite file (a bare name such as datos_historicos.db is that file in DATA_DIR) or "
    "SQLAlchemy URL; default DATABASE_URL"
)

TRAILING_HELP = "trailing stop: 0.01 trails 1 %% behind the best price since the entry (0.001-0.1)"


def _add_trade_arguments(parser: argparse.ArgumentParser) -> None:
    """The fees, size and protection options of `backtest`, `optimizar` and `bot`."""
    parser.add_argument("--comision", type=float, default=0.0004, help="taker fee fraction")
    parser.add_argument("--slippage", type=float, default=0.0, help="basis points per fill")
    parser.add_argument("--apalancamiento", type=float, default=1.0)
    parser.add_argument("--tamano", type=float, default=1.0, help="fraction of equity")
    parser.add_argument("--stop-loss", help="fraction (0.02) or ATR multiple (2atr)")
    parser.add_argument("--take-profit", help="fraction (0.04) or ATR multiple (3atr)")
    parser.add_argument("--trailing", type=_trailing_arg, help=TRAILING_HELP)


def _add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    """`backtest`'s and `optimizar`'s costs (ejecutar_backtest's) and the database."""
    _add_trade_arguments(parser)
    parser.add_argument("--funding", type=float, help="constant funding rate per 8 h")
    parser.add_argument("--db", help=DB_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Kryptelion: Binance USDT-M futures workbench. No command starts everything.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    web = sub.add_parser("web", help="serve the web app and REST API (waitress)")
    web.add_argument("--host", help="default WEB_HOST (127.0.0.1)")
    web.add_argument("--port", type=int, help="default WEB_PORT (5000)")
    bridge = sub.add_parser("bridge", help="run the WebSocket bridge (same as python -m wsbridge)")
    bridge.add_argument("--host", help="default BRIDGE_HOST (127.0.0.1)")
    bridge.add_argument("--port", type=int, help="default BRIDGE_PORT (8765)")
    update = sub.add_parser("update", help="download candles into the database")
    update.add_argument(
        "--symbols",
        required=True,
        type=_csv_list(str.upper),
        help="comma-separated, e.g. BTCUSDT,ETHUSDT",
    )
    update.add_argument(
        "--intervals",
        required=True,
        type=_csv_list(_interval_arg),
        help="comma-separated, e.g. 1m,5m",
    )
    update.add_argument(
        "--start",
        type=_time_arg,
        help=f"{START_HELP}; default: continue after the newest stored candle, or "
        "--lookback-days back for a new stream",
    )
    update.add_argument("--end", type=_end_arg, help=f"{END_HELP}; default: the last closed candle")
    update.add_argument(
        "--lookback-days",
        type=int,
        default=30,
        help="history for a stream with no stored candles (default 30)",
    )
    update.add_argument("--db", help=DB_HELP)
    export = sub.add_parser("export", help="export stored candles to CSV or JSON")
    export.add_argument("symbol")
    export.add_argument("interval", type=_interval_arg)
    export.add_argument("--formato", default="csv", choices=("csv", "json"))
    export.add_argument("--salida", help="output file (default: SYMBOL_INTERVAL[_range].formato)")
    export.add_argument("--start", type=_time_arg, help=START_HELP)
    export.add_argument("--end", type=_end_arg, help=END_HELP)
    export.add_argument("--db", help=DB_HELP)
    backtest = sub.add_parser("backtest", help="run a backtest and print its metrics")
    backtest.add_argument("--symbol", required=True, type=str.upper)
    backtest.add_argument("--interval", required=True, type=_interval_arg)
    backtest.add_argument("--strategy", default="sma_cruce", help="see --list")
    backtest.add_argument("--start", type=_time_arg, help=f"{START_HELP}; default: see --end")
    backtest.add_argument(
        "--end",
        type=_end_arg,
        help=f"{END_HELP}. Without dates: the stored candles, or the last 30 days when none are; "
        "an end alone: the 30 days before it",
    )
    backtest.add_argument("--capital", type=float, default=10_000)
    backtest.add_argument(
        "--param",
        action="append",
        default=[],
        type=_param_arg,
        metavar="NAME=VALUE",
        help="strategy parameter, repeatable",
    )
    _add_cost_arguments(backtest)
    optimise = sub.add_parser(
        "optimizar", help="search a strategy's parameters (grid, aleatorio, tpe, genetico, cmaes)"
    )
    optimise.add_argument("--symbol", required=True, type=str.upper)
    optimise.add_argument("--interval", required=True, type=_interval_arg)
    optimise.add_argument("--strategy", default="sma_cruce", help="see backtest --list")
    optimise.add_argument("--start", type=_time_arg, help=f"{START_HELP}; default: see --end")
    optimise.add_argument(
        "--end", type=_end_arg, help=f"{END_HELP}; default: the stored candles (see README)"
    )
    optimise.add_argument(
        "--espacio", action="append", required=True, type=_space_arg, metavar="NAME=SPEC",
        help="a:b:s (a to b inclusive by s), a,b,c (values), a..b or a..b:log (bounds for the "
        "samplers), or one value (fixed); repeat per parameter",
    )  # fmt: skip
    optimise.add_argument("--metodo", default="grid", help="grid, aleatorio, tpe, genetico, cmaes")
    optimise.add_argument(
        "--objetivo", default="sharpe", type=_csv_list(str),
        help="a metric of backtest, or a comma-separated list (multi-objective)",
    )  # fmt: skip
    optimise.add_argument("--validacion", help="walk_forward or kfold_purgado")
    optimise.add_argument("--intentos", type=int, help="combinations to try (not for grid)")
    optimise.add_argument(
        "--restriccion", action="append", default=[], type=_param_arg, metavar="METRIC=WORST",
        help="the worst accepted value of a metric, e.g. trades=30; repeatable",
    )  # fmt: skip
    optimise.add_argument("--semilla", type=int, default=0, help="random seed of the samplers")
    optimise.add_argument("--workers", type=int, help="processes of a local Dask cluster")
    optimise.add_argument("--cluster", help="a Dask scheduler, e.g. tcp://10.0.0.5:8786")
    optimise.add_argument("--top", type=int, default=10, help="best combinations to print")
    optimise.add_argument("--capital", type=float, default=10_000)
    _add_cost_arguments(optimise)
    bot = sub.add_parser("bot", help="run one bot in the foreground (in TRADING_MODE)")
    bot.add_argument("--strategy", required=True, help="a strategy of `backtest --list`")
    bot.add_argument("--symbol", required=True, type=str.upper)
    bot.add_argument("--interval", required=True, type=_interval_arg)
    bot.add_argument(
        "--param", action="append", default=[], type=_param_arg, metavar="NAME=VALUE",
        help="strategy parameter, repeatable",
    )  # fmt: skip
    bot.add_argument("--nombre", help="the bot's name (default STRATEGY-SYMBOL-INTERVAL)")
    bot.add_argument("--capital", type=float, default=10_000)
    _add_trade_arguments(bot)
    bot.add_argument("--max-perdida-diaria", type=float, help="daily loss limit, fraction")
    bot.add_argument("--max-drawdown", type=float, help="drawdown from the peak, fraction")
    demo = sub.add_parser("demo-exchange", help="run the local Binance-compatible demo exchange")
    demo.add_argument("--host", help="default DEMO_HOST (127.0.0.1)")
    demo.add_argument("--port", type=int, help="default DEMO_PORT (9100)")
    demo.add_argument("--speed", type=float, help="demo seconds per real second (DEMO_SPEED)")
    demo.add_argument("--seed", type=int, help="market seed (DEMO_SEED)")
    demo.add_argument("--weight-budget", type=int, help="request weight per minute (default: none)")
    demo.add_argument("--faults", action="store_true", help="enable the /_demo/fault/* routes")
    demo.add_argument(
        "--maker-fee", type=float, help="maker fee fraction (default: Binance's base tier)"
    )
    demo.add_argument(
        "--taker-fee", type=float, help="taker fee fraction (default: Binance's base tier)"
    )
    demo.add_argument(
        "--state",
        metavar="FILE",
        help="keep accounts, orders and positions in this JSON file across restarts",
    )
    db = sub.add_parser(
        "db", help="database schema and backups: upgrade, current, backup FILE, restore FILE"
    )
    db.add_argument("action", choices=("upgrade", "current", "backup", "restore"))
    db.add_argument("file", nargs="?", metavar="FILE", help="backup file (backup and restore only)")
    db.add_argument(
        "--force",
        action="store_true",
        help="backup: overwrite FILE; restore: replace a database that holds rows",
    )
    db.add_argument("--db", help=DB_HELP)
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "bridge": cmd_bridge,
    "db": cmd_db,
    "update": cmd_update,
    "export": cmd_export,
    "backtest": cmd_backtest,
    "optimizar": cmd_optimizar,
    "bot": cmd_bot,
    "demo-exchange": cmd_demo_exchange,
    "web": cmd_web,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except KryptelionError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    # SIGTERM (systemd, docker, a test harness) stops the servers like Ctrl-C, with status 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    command = COMMANDS.get(args.command, cmd_all)
    try:
        return command(args, settings)
    except KryptelionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
