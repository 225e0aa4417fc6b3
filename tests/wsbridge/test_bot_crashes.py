"""`kill -9` of a bot process at the three moments an order can be lost or doubled, on the demo
exchange in its own process (TRADING_MODE=testnet): each restart ends with no duplicate order,
the stop in place, and the database equal to the exchange.

The moments are pinned with the demo's order faults: `stall` holds a request at the exchange's
door and drops it unprocessed once its client has died (stored, never sent), `silent` processes
an order and never answers (sent, no answer), and `after=1` lets the entry through and stalls the
stop that follows it (filled, stop not placed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from config.settings import Settings, settings_from_mapping
from core.errors import UnknownOrderError
from core.exchange.trading import TradingClient, trading_client
from core.models import Order, OrderState, OrderType
from core.repository import Database
from core.risk_types import Purpose
from tests.conftest import ROOT, free_port, wait_for
from tests.waiting import until
from wsbridge.exchange_bots import client_prefix

pytestmark = pytest.mark.timeout(120)
SYMBOL, NAME, HOLD_S = "BTCUSDT", "crash", 2.0
BOT_ARGS = [
    "bot", "--strategy", "sma_cruce", "--symbol", SYMBOL, "--interval", "1m", "--param",
    "rapida=2", "--param", "lenta=5", "--nombre", NAME, "--capital", "1000",
    "--apalancamiento", "2", "--tamano", "0.5", "--stop-loss", "0.05",
]  # fmt: skip


@dataclass
class Exchange:
    """A demo exchange process, a bot process beside it, and their shared database."""

    tmp: Path
    env: dict[str, str]
    demo: subprocess.Popen
    demo_log: Path
    bot: subprocess.Popen | None = None

    @property
    def settings(self) -> Settings:
        return settings_from_mapping(self.env)

    @property
    def url(self) -> str:
        return self.settings.binance_rest_url

    def fault(self, **params: str) -> None:
        answer = requests.post(f"{self.url}/_demo/fault/order", params=params, timeout=5)
        assert answer.status_code == 200, answer.text

    def start_bot(self) -> None:
        self.bot = subprocess.Popen(
            [sys.executable, "run.py", *BOT_ARGS], cwd=ROOT, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def kill_bot(self) -> None:
        """kill -9: no cleanup of any kind."""
        assert self.bot is not None
        os.kill(self.bot.pid, signal.SIGKILL)
        self.bot.wait(timeout=10)
        self.bot = None

    def stop_bot(self) -> None:
        """Ctrl-C: the bot stops, its orders and position stay as they are."""
        assert self.bot is not None
        self.bot.send_signal(signal.SIGINT)
        self.bot.wait(timeout=30)
        self.bot = None

    def dropped(self) -> bool:
        return "dropped unprocessed" in self.demo_log.read_text()

    def holding(self) -> bool:
        """Whether the exchange holds a stalled order: the bot sent it and waits."""
        return "holding an order at the door" in self.demo_log.read_text()


@pytest.fixture
def exchange(tmp_path) -> Iterator[Exchange]:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path),
        "DEMO_PORT": str(port), "DEMO_SPEED": "60", "TRADING_MODE": "testnet",
        "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    log = tmp_path / "demo.log"
    with log.open("w") as sink:
        demo = subprocess.Popen(
            [sys.executable, "run.py", "demo-exchange", "--faults"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    running = Exchange(tmp_path, env, demo, log)
    try:
        wait_for(f"http://127.0.0.1:{port}/fapi/v1/ping")
        yield running
    finally:
        for process in (running.bot, demo):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def _orders(db: Database) -> list[Order]:
    try:
        bot = db.bots.get_by_name(NAME)
    except Exception:  # not created yet
        return []
    return db.orders.find(bot_id=bot.id, limit=1_000)


def _pending(db: Database, purpose: Purpose) -> Order | None:
    return next(
        (o for o in _orders(db) if o.state is OrderState.PENDING and o.purpose == purpose), None
    )


def _position(client: TradingClient) -> float:
    return float(sum(p.amount for p in client.positions(SYMBOL)))


def _stop_in_place(client: TradingClient, prefix: str) -> bool:
    return bool(_position(client)) and any(
        a.order_type is OrderType.STOP_MARKET and a.client_algo_id.startswith(prefix)
        for a in client.open_algo_orders(SYMBOL)
    )


def _assert_database_equals_exchange(db: Database, client: TradingClient, prefix: str) -> None:
    """Every fill is one of the bot's stored orders and every stored fill is on the exchange;
    the open algo orders are the stored open ones; the position is the sum of the fills."""
    orders = _orders(db)
    assert all(o.client_order_id.startswith(prefix + "-") for o in orders)
    assert not [o for o in orders if o.state is OrderState.PENDING]
    fills = client.user_trades(SYMBOL)
    filled = [int(o.exchange_order_id) for o in orders if o.state is OrderState.FILLED]
    assert len(filled) == len(set(filled))
    assert set(filled) == {f.order_id for f in fills}
    for order in (o for o in orders if o.state is OrderState.FILLED):
        exchange = client.get_order(SYMBOL, client_order_id=order.client_order_id)
        assert exchange.order_id == int(order.exchange_order_id)
    live = {a.client_algo_id for a in client.open_algo_orders(SYMBOL)}
    stored = {o.client_order_id for o in orders if o.state is OrderState.OPEN and o.algo_id}
    assert live == stored
    signed = sum(float(f.qty) * (1 if f.side.value == "compra" else -1) for f in fills)
    assert _position(client) == pytest.approx(signed, abs=1e-12)


def _prefix(db: Database) -> str:
    return client_prefix(db.bots.get_by_name(NAME))


def test_killed_after_the_intent_is_stored_before_it_is_sent(exchange):
    exchange.fault(mode="stall", hold_s=str(HOLD_S))
    exchange.start_bot()
    db = Database(exchange.settings.database_url)
    lost = until(lambda: _pending(db, Purpose.ENTRY))
    until(exchange.holding)  # sent: killed now, it dies waiting for the answer
    exchange.kill_bot()
    until(exchange.dropped)  # the exchange never had it
    client = trading_client(exchange.settings)
    with pytest.raises(UnknownOrderError):
        client.get_order(SYMBOL, client_order_id=lost.client_order_id)
    assert _position(client) == 0.0

    exchange.start_bot()
    prefix = _prefix(db)
    until(lambda: _stop_in_place(client, prefix))
    exchange.stop_bot()
    assert db.orders.get(lost.id).state is OrderState.REJECTED  # resolved by asking, not resent
    with pytest.raises(UnknownOrderError):
        client.get_order(SYMBOL, client_order_id=lost.client_order_id)
    _assert_database_equals_exchange(db, client, prefix)
    db.close()


def test_killed_after_the_order_is_sent_before_the_answer(exchange):
    exchange.fault(mode="silent", hold_s="30")
    exchange.start_bot()
    db = Database(exchange.settings.database_url)
    client = trading_client(exchange.settings)
    sent = until(lambda: _pending(db, Purpose.ENTRY))
    until(lambda: _position(client))  # the exchange filled it; the answer never came
    exchange.kill_bot()
    [fill] = client.user_trades(SYMBOL)

    exchange.start_bot()
    prefix = _prefix(db)
    until(lambda: _stop_in_place(client, prefix))
    exchange.stop_bot()
    entry = db.orders.get(sent.id)
    assert entry.state is OrderState.FILLED and int(entry.exchange_order_id) == fill.order_id
    entries = [f for f in client.user_trades(SYMBOL) if f.order_id == fill.order_id]
    assert entries == [fill]  # filled once, never resent
    _assert_database_equals_exchange(db, client, prefix)
    db.close()


def test_killed_after_the_fill_before_the_stop_is_placed(exchange):
    exchange.fault(mode="stall", hold_s=str(HOLD_S), after="1")  # the entry passes
    exchange.start_bot()
    db = Database(exchange.settings.database_url)
    client = trading_client(exchange.settings)
    stop = until(lambda: _pending(db, Purpose.STOP))
    assert _position(client)
    until(exchange.holding)
    exchange.kill_bot()
    until(exchange.dropped)
    assert client.open_algo_orders(SYMBOL) == []  # a position with no stop on the exchange
    [fill] = client.user_trades(SYMBOL)

    exchange.start_bot()
    prefix = _prefix(db)
    until(lambda: _stop_in_place(client, prefix))
    exchange.stop_bot()
    assert db.orders.get(stop.id).state is OrderState.REJECTED
    [placed] = [a for a in client.open_algo_orders(SYMBOL) if a.client_algo_id.startswith(prefix)]
    assert placed.order_type is OrderType.STOP_MARKET and placed.close_position
    assert client.user_trades(SYMBOL)[0] == fill  # the entry was not sent again
    _assert_database_equals_exchange(db, client, prefix)
    db.close()
