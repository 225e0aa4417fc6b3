"""Bot leases against SQLite and PostgreSQL: one host runs a bot; a lapsed lease is taken over;
a release frees it at once; of many hosts racing for one bot exactly one wins."""

import threading

import pytest

from core.models import Bot

_TABLES = "bot_trades, bot_decisions, bot_events, bot_commands, order_events, orders, bots"
LEASE = 15_000


@pytest.fixture
def bot_id(db) -> int:
    if db.dialect == "postgresql":
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    bot = db.bots.create(Bot(name="b", strategy="sma_cruce", symbol="BTCUSDT", interval="1m"))
    assert bot.id is not None
    return bot.id


def test_one_host_holds_a_bot_until_its_lease_lapses_or_it_releases(db, bot_id):
    assert db.bots.holder(bot_id, 1_000) is None
    assert db.bots.claim(bot_id, "a", 1_000, LEASE)
    assert db.bots.claim(bot_id, "a", 2_000, LEASE)  # its own lease: claimed again
    assert not db.bots.claim(bot_id, "b", 2_000, LEASE)
    assert db.bots.holder(bot_id, 2_000) == "a"
    assert db.bots.renew("a", [bot_id], 10_000, LEASE) == {bot_id}
    assert not db.bots.claim(bot_id, "b", 20_000, LEASE)  # renewed until 25,000
    assert db.bots.holder(bot_id, 25_001) is None
    assert db.bots.claim(bot_id, "b", 25_001, LEASE)  # a's lease lapsed: b takes over
    assert db.bots.renew("a", [bot_id], 26_000, LEASE) == set()  # a learns it lost the bot
    db.bots.release(bot_id, "a")  # a release by a host that lost it changes nothing
    assert db.bots.holder(bot_id, 26_000) == "b"
    db.bots.release(bot_id, "b")
    assert db.bots.holder(bot_id, 26_000) is None
    assert db.bots.claim(bot_id, "c", 26_000, LEASE)


def test_of_hosts_racing_for_a_bot_exactly_one_wins(db, bot_id):
    won: list[str] = []
    start = threading.Barrier(8)

    def race(host: str) -> None:
        start.wait()
        if db.bots.claim(bot_id, host, 5_000, LEASE):
            won.append(host)

    threads = [threading.Thread(target=race, args=(f"h{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and db.bots.holder(bot_id, 5_000) == won[0]
