"""The bot host's command step: what the web app stored (POST /bots/<id>/parar, /pausar,
/reanudar, /kill) applied to the bots, each command marked done with its result.

A bot running in this host moves in memory and its recorder stores the events (so memory and
database agree); any other bot changes in the database alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from core.broker.exchange import ExchangeBroker
from core.broker.paper import Bar
from core.errors import KryptelionError
from core.models import BotCommand, BotStatus, BotTrigger

if TYPE_CHECKING:
    from wsbridge.bots import BotHost, RunningBot

log = logging.getLogger(__name__)
ACTOR = "api"
CLOSE_REASON = "parada"  # a position closed because a person stopped the bot
_MOVES = {
    "pausar": (BotTrigger.PAUSE, "pausa pedida"),
    "reanudar": (BotTrigger.RESUME, "reanudación pedida"),
}


async def apply_commands(host: BotHost) -> None:
    """Apply the pending commands, oldest first. A bot's command is its host's to apply (the
    one holding its lease; any host when nobody runs it). `python run.py bot` (a host with
    `only`) applies its own bot's commands, and the kill switch to its own bot without marking
    it done: the main host applies it to everything else."""
    if host.only is not None:
        kills = await asyncio.to_thread(host.db.bots.kill_commands_since, host.started_ms)
        for command in kills:
            assert command.id is not None
            if command.id not in host.killed and host.only in host.running:
                host.killed.add(command.id)
                await _kill_own(host, host.only)
    for command in await asyncio.to_thread(host.db.bots.pending_commands):
        assert command.id is not None
        if command.bot_id is None and host.only is not None:
            continue  # applied above; the main host marks it done
        if host.only is not None and command.bot_id != host.only:
            continue
        if command.bot_id is not None and not await asyncio.to_thread(_ours, host, command):
            continue
        try:
            async with host.stepping:  # never in the middle of a bot's step
                result = await _apply(host, command)
        except KryptelionError as error:  # an illegal move by now, a vanished bot: say so
            result = f"rechazado: {error}"
        except Exception as error:  # one command must not stop the host
            log.exception("bot command %s failed", command.id)
            result = f"error: {type(error).__name__}: {error}"
        assert command.id is not None
        await asyncio.to_thread(host.db.bots.finish_command, command.id, result[:500])


def _ours(host: BotHost, command: BotCommand) -> bool:
    """Whether this host may apply a bot's command: it runs the bot, or no host does."""
    assert command.bot_id is not None
    holder = host.db.bots.holder(command.bot_id, int(time.time() * 1000))
    return holder is None or holder == host.host_id


async def _kill_own(host: BotHost, bot_id: int) -> None:
    try:
        async with host.stepping:
            result = await stop_bot(host, bot_id, True, "matar")
        log.warning("kill switch: bot %s %s", bot_id, result)
    except KryptelionError as error:
        log.error("kill switch: bot %s: %s", bot_id, error)


async def _apply(host: BotHost, command: BotCommand) -> str:
    if command.command == "matar":
        return await _kill(host)
    assert command.bot_id is not None
    if command.command == "parar":
        return await stop_bot(host, command.bot_id, command.close, "parada pedida")
    trigger, reason = _MOVES[command.command]
    running = host.running.get(command.bot_id)
    if running is not None:
        await asyncio.to_thread(running.bot.move, trigger, reason, ACTOR)
        if trigger is BotTrigger.RESUME and isinstance(running.broker, ExchangeBroker):
            await asyncio.to_thread(running.bot.reconcile)  # sincronizando until they agree
        elif trigger is BotTrigger.RESUME:  # a paper broker has nothing to reconcile
            await asyncio.to_thread(running.bot.move, BotTrigger.SYNCED, "reanudado", ACTOR)
        return running.bot.status.value
    bot, _ = await asyncio.to_thread(
        host.db.bots.update_status, command.bot_id, trigger, ACTOR, reason
    )
    if trigger is BotTrigger.RESUME:
        bot, _ = await asyncio.to_thread(
            host.db.bots.update_status, command.bot_id, BotTrigger.SYNCED, ACTOR, "reanudado"
        )
    return bot.status.value


async def _kill(host: BotHost) -> str:
    """Stop every bot that runs or may run, closing the positions of those running here (a bot
    another host runs is that host's to kill); then, when this host trades an exchange account,
    cancel and close whatever is left on it."""
    results = []
    bots = await asyncio.to_thread(host.db.bots.list)
    now = int(time.time() * 1000)
    for bot in bots:
        assert bot.id is not None
        if bot.status is BotStatus.STOPPED and not bot.desired_running:
            continue
        holder = await asyncio.to_thread(host.db.bots.holder, bot.id, now)
        if holder not in (None, host.host_id):  # its own host kills it (apply_commands)
            results.append(f"{bot.id}: lo detiene su proceso ({holder})")
            continue
        try:
            results.append(f"{bot.id}: {await stop_bot(host, bot.id, True, 'matar')}")
        except KryptelionError as error:  # the others are still stopped
            results.append(f"{bot.id}: rechazado: {error}")
    if host.account is not None:
        results += await asyncio.to_thread(host.account.flatten_all)
    return "; ".join(results) or "ningún bot en marcha"


async def stop_bot(host: BotHost, bot_id: int, close: bool, reason: str) -> str:
    """Stop a bot for good (no longer wanted running), closing its paper position first when
    `close` and it runs here; returns what happened."""
    running = host.running.get(bot_id)
    closed = ""
    if close and running is not None:
        closed = await asyncio.to_thread(_flatten, host, running)
    status = await asyncio.to_thread(_stop_stored, host, bot_id, reason)
    if running is not None:
        running.bot.status = status  # the database moved it: `stop` only unsubscribes
        await host.stop(bot_id)
        host.publish({"tipo": "bot", "id": bot_id, "estado": status.value, "motivo": reason})
    elif close:
        closed = "; posición no cerrada: el bot no corre en este proceso"
    return f"{status.value}{closed}"


def _stop_stored(host: BotHost, bot_id: int, reason: str) -> BotStatus:
    """STOP (no longer wanted) then FINISHED in the database; a bot still detenido only stops
    being wanted (its host had not started it yet)."""
    bots = host.db.bots
    bot = bots.get(bot_id)
    if bot.status is BotStatus.STOPPED:
        bots.set_desired_running(bot_id, False)
        return bot.status
    bot, _ = bots.update_status(bot_id, BotTrigger.STOP, ACTOR, reason, desired_running=False)
    if bot.status is BotStatus.STOPPING:
        bot, _ = bots.update_status(bot_id, BotTrigger.FINISHED, ACTOR, reason)
    return bot.status


def _flatten(host: BotHost, running: RunningBot) -> str:
    """Close a running bot's open trade — a paper one at the last stored close of its market,
    an exchange one by its kill switch (orders cancelled, position closed reduce-only) —,
    record the close and the broker's snapshot; returns what happened."""
    stored = running.stored
    assert stored.id is not None
    if isinstance(running.broker, ExchangeBroker):
        ended = running.broker.kill()
        for trade in ended:
            running.recorder.trade(trade if trade.is_open else replace(trade, reason=CLOSE_REASON))
        host.db.bots.save_broker_state(stored.id, running.snapshot())
        exits = [t.exit_price for t in ended if not t.is_open]
        return f"; posición cerrada a {exits[-1]:g}" if exits else "; sin posición"
    if running.broker.trade is None:
        return "; sin posición"
    closes = host.db.candles.read_arrays(stored.symbol, stored.interval, limit=1).close
    if not len(closes):
        return "; posición no cerrada: sin precio"
    price = float(closes[-1])
    now = int(host.clock() * 1000)
    closed = running.broker.close_now(Bar(now, price, price, price, price), CLOSE_REASON)
    assert closed is not None
    running.recorder.trade(closed)  # stored as any close the bot makes
    host.db.bots.save_broker_state(stored.id, running.snapshot())
    return f"; posición cerrada a {closed.exit_price:g}"
