"""The bot host's command step: pausar / reanudar / parar (with its position closed) reach a paper
bot on the demo exchange's live stream through the database, and its stored state follows; bots
this host does not run change in the database alone; matar stops them all."""

from __future__ import annotations

import asyncio
import time

import pytest

from config.settings import settings_from_mapping
from core.exchange.demo import DemoExchangeThread, DemoOptions
from core.exchange.klines import klines_to_frame
from core.exchange.rest import BinanceRest
from core.models import Bot, BotStatus, BotTrigger
from core.repository import Database
from tests.waiting import until_async
from wsbridge.bots import BotHost

pytestmark = pytest.mark.timeout(120)
B, T = BotStatus, BotTrigger
PARAMS = {"rapida": 5, "lenta": 20}


def _store_history(db: Database, rest_url: str, count: int = 300) -> None:
    """`count` closed 1m candles up to now, for the strategy's warm-up."""
    rest = BinanceRest(rest_url)
    now = rest.server_time()
    frame = klines_to_frame(rest.klines("BTCUSDT", "1m", limit=count + 1))
    db.candles.upsert("BTCUSDT", "1m", frame[frame["close_time"] < now].drop(columns="close_time"))


@pytest.fixture
def market():
    with DemoExchangeThread(DemoOptions(speed=600)) as exchange:
        yield exchange


def _done(db: Database, command_id: int):
    return lambda: command_id not in {c.id for c in db.bots.pending_commands()}


def _result(db: Database, command_id: int) -> str:
    return db.bots.finish_command(command_id, "ignored").result  # the first result stays


def _bars(db: Database, bot_id: int) -> int:
    state = db.bots.load_broker_state(bot_id)
    return 0 if state is None else state["bar"] + 1


async def _drive(db: Database, host: BotHost, bot_id: int) -> None:
    await until_async(lambda: _bars(db, bot_id) >= 5, 30, "the first steps")
    assert db.bots.get(bot_id).status is B.TRADING

    pause = db.bots.add_command(bot_id, "pausar")
    await until_async(_done(db, pause.id), 30, "pausar")
    assert _result(db, pause.id) == "pausado"
    assert db.bots.get(bot_id).status is B.PAUSED and host.running[bot_id].bot.status is B.PAUSED
    paused_at = _bars(db, bot_id)
    await until_async(lambda: _bars(db, bot_id) >= paused_at + 3, 30, "steps while paused")
    assert db.bots.get(bot_id).status is B.PAUSED  # a paused bot keeps following candles

    resume = db.bots.add_command(bot_id, "reanudar")
    await until_async(_done(db, resume.id), 30, "reanudar")
    assert _result(db, resume.id) == "operando"
    assert db.bots.get(bot_id).status is B.TRADING

    await until_async(lambda: db.bots.trades(bot_id, open=True), 60, "an open position")
    stop = db.bots.add_command(bot_id, "parar", close=True)
    await until_async(_done(db, stop.id), 30, "parar")
    assert _result(db, stop.id).startswith("detenido; posición cerrada a ")
    assert bot_id not in host.running


def test_a_running_paper_bot_follows_commands_from_the_database(market, tmp_path, db):
    settings = settings_from_mapping({"DATA_DIR": str(tmp_path), "DEMO_PORT": str(market.port)})
    _store_history(db, market.rest_url)
    bot = db.bots.create(
        Bot("mandado", "sma_cruce", "BTCUSDT", "1m", params=PARAMS, capital=1_000,
            leverage=2, desired_running=True)
    )  # fmt: skip
    host = BotHost(settings, db)

    async def scenario() -> None:
        task = asyncio.ensure_future(host.run())
        try:
            await _drive(db, host, bot.id)
            stopped_at = _bars(db, bot.id)
            for _ in range(2):  # two polls of its own: the host must not start it again
                await host.sync()
            assert bot.id not in host.running and _bars(db, bot.id) == stopped_at
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    stored = db.bots.get(bot.id)
    assert (stored.status, stored.desired_running) == (B.STOPPED, False)
    events = [(e.trigger, e.to_state, e.actor) for e in db.bots.events(bot.id)]
    assert events[-5:] == [
        (T.PAUSE, B.PAUSED, "api"), (T.RESUME, B.SYNCING, "api"), (T.SYNCED, B.TRADING, "api"),
        (T.STOP, B.STOPPING, "api"), (T.FINISHED, B.STOPPED, "api"),
    ]  # fmt: skip
    trades = db.bots.trades(bot.id)
    assert trades and not any(t.open for t in trades)
    assert trades[-1].exit_reason == "parada"
    assert db.bots.load_broker_state(bot.id)["trade"] is None


def _at(db: Database, name: str, *moves: BotTrigger, wanted: bool = False) -> int:
    bot = db.bots.create(Bot(name, "sma_cruce", "BTCUSDT", "1m", desired_running=wanted))
    for trigger in moves:
        db.bots.update_status(bot.id, trigger, "bot")
    return bot.id


TRADING = (T.START, T.STARTED, T.SYNCED)


def test_bots_not_running_here_change_in_the_database(tmp_path, db):
    host = BotHost(settings_from_mapping({"DATA_DIR": str(tmp_path)}), db)
    trading = _at(db, "a", *TRADING)
    paused = _at(db, "b", *TRADING, T.PAUSE)
    commands = [
        db.bots.add_command(trading, "pausar"),
        db.bots.add_command(paused, "reanudar"),
        db.bots.add_command(trading, "reanudar"),
        db.bots.add_command(trading, "parar", close=True),
        db.bots.add_command(trading, "pausar"),  # too late: it is detenido by then
    ]
    asyncio.run(host.commands())
    assert db.bots.pending_commands() == []
    results = [_result(db, c.id) for c in commands]
    assert results[:4] == [
        "pausado", "operando", "operando",
        "detenido; posición no cerrada: el bot no corre en este proceso",
    ]  # fmt: skip
    assert results[4].startswith("rechazado: bot detenido: 'pausar' is not allowed")
    assert db.bots.get(paused).status is B.TRADING
    stored = db.bots.get(trading)
    assert (stored.status, stored.desired_running) == (B.STOPPED, False)


def test_matar_stops_every_bot_that_runs_or_may_run(tmp_path, db):
    host = BotHost(settings_from_mapping({"DATA_DIR": str(tmp_path)}), db)
    trading = _at(db, "a", *TRADING, wanted=True)
    paused = _at(db, "b", *TRADING, T.PAUSE, wanted=True)
    failed = _at(db, "c", T.START, T.FAIL)
    not_started = _at(db, "d", wanted=True)
    idle = _at(db, "e")
    kill = db.bots.add_command(None, "matar", close=True)
    asyncio.run(host.commands())
    assert _result(db, kill.id).split("; ")[::2] == [
        f"{trading}: detenido", f"{paused}: detenido", f"{failed}: detenido",
        f"{not_started}: detenido",
    ]  # fmt: skip
    for bot_id in (trading, paused, failed, not_started, idle):
        stored = db.bots.get(bot_id)
        assert (stored.status, stored.desired_running) == (B.STOPPED, False), bot_id
    assert db.bots.events(idle) == [] and db.bots.events(not_started) == []
    assert [e.to_state for e in db.bots.events(failed)][-1] is B.STOPPED


def test_a_single_bot_host_leaves_other_commands_to_the_main_host(tmp_path, db):
    mine, other = _at(db, "a", *TRADING), _at(db, "b", *TRADING)
    host = BotHost(settings_from_mapping({"DATA_DIR": str(tmp_path)}), db, only=mine)
    commands = [
        db.bots.add_command(other, "pausar"),
        db.bots.add_command(None, "matar"),
        db.bots.add_command(mine, "pausar"),
    ]
    asyncio.run(host.commands())
    assert db.bots.pending_commands() == commands[:2]
    assert (db.bots.get(mine).status, db.bots.get(other).status) == (B.PAUSED, B.TRADING)


def test_two_hosts_on_one_database_never_run_one_bot_twice(market, tmp_path):
    settings = settings_from_mapping({"DATA_DIR": str(tmp_path), "DEMO_PORT": str(market.port)})
    db = Database(tmp_path / "bots.db")
    _store_history(db, market.rest_url)
    stored = db.bots.create(Bot(name="uno", strategy="sma_cruce", symbol="BTCUSDT",
                                interval="1m", params=PARAMS, desired_running=True))  # fmt: skip
    first, second = BotHost(settings, db), BotHost(settings, db)

    async def scenario() -> None:
        await first.sync()
        await second.sync()
        assert stored.id in first.running and stored.id not in second.running
        assert db.bots.holder(stored.id, int(time.time() * 1000)) == first.host_id
        pause = db.bots.add_command(stored.id, "pausar")
        await second.sync()  # not its bot: the command waits for its host
        assert pause.id in {c.id for c in db.bots.pending_commands()}
        await first.sync()
        assert _result(db, pause.id) == "pausado"
        await first.stop(stored.id)  # it stops here (e.g. its process ends) and lets go
        db.bots.set_desired_running(stored.id, True)
        await second.sync()
        assert stored.id in second.running  # the other host resumes it
        assert db.bots.holder(stored.id, int(time.time() * 1000)) == second.host_id
        await second.stop(stored.id)

    asyncio.run(scenario())
    db.close()


def test_a_bot_claimed_before_it_is_wanted_is_not_taken_by_the_main_host(market, tmp_path):
    """What `python run.py bot` does beside a running `python run.py`."""
    settings = settings_from_mapping({"DATA_DIR": str(tmp_path), "DEMO_PORT": str(market.port)})
    db = Database(tmp_path / "bots.db")
    _store_history(db, market.rest_url)
    stored = db.bots.create(Bot(name="cli", strategy="sma_cruce", symbol="BTCUSDT",
                                interval="1m", params=PARAMS))  # fmt: skip
    main, cli = BotHost(settings, db), BotHost(settings, db, only=stored.id)
    assert db.bots.claim(stored.id, cli.host_id, int(time.time() * 1000), 15_000)
    db.bots.set_desired_running(stored.id, True)

    async def scenario() -> None:
        await main.sync()
        assert stored.id not in main.running
        await cli.sync()
        assert stored.id in cli.running
        await cli.stop(stored.id)

    asyncio.run(scenario())
    db.close()
