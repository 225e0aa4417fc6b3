"""ensure_demo_exchange: the one in-process auto-start every entry point uses with MARKET=demo."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from config.settings import settings_from_mapping
from core.exchange.demo import ensure_demo_exchange
from core.exchange.demo.process import DemoExchangeProcess
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
NOTICE = "started a local DEMO exchange"


def test_starts_one_when_nothing_listens_and_reuses_it_afterwards(caplog):
    settings = settings_from_mapping({"DEMO_PORT": str(free_port()), "DEMO_SPEED": "60"})
    caplog.set_level(logging.INFO, logger="core.exchange.demo")
    started = ensure_demo_exchange(settings)
    try:
        assert isinstance(started, DemoExchangeProcess)
        assert started.rest_url == settings.binance_rest_url
        assert requests.get(settings.binance_rest_url + "/fapi/v1/ping", timeout=5).json() == {}
        assert ensure_demo_exchange(settings) is None  # it listens now: used, not started twice
    finally:
        started.stop()
    notices = [r.getMessage() for r in caplog.records if NOTICE in r.getMessage()]
    assert notices == [
        f"MARKET=demo and nothing listened on 127.0.0.1:{settings.demo_port}: "
        f"{NOTICE} at {settings.binance_rest_url} for this process (it stops with the process)"
    ]


def test_an_exchange_already_listening_is_used(demo_exchange, caplog):
    settings = settings_from_mapping({"DEMO_PORT": str(demo_exchange.port)})
    assert ensure_demo_exchange(settings) is None
    assert NOTICE not in caplog.text


def test_other_markets_never_start_one():
    port = free_port()
    settings = settings_from_mapping({"MARKET": "testnet", "DEMO_PORT": str(port)})
    assert ensure_demo_exchange(settings) is None
    with pytest.raises(requests.ConnectionError):  # nothing was started on the demo port
        requests.get(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=1)


def test_a_plain_process_shows_one_line_and_exits_cleanly():
    """No logging configured (a plain Python session): the notice still shows; no exit traceback."""
    script = (
        "from config.settings import load_settings\n"
        "from core.exchange.demo import ensure_demo_exchange\n"
        "import requests\n"
        "ensure_demo_exchange(load_settings())\n"
        "print(requests.get(load_settings().binance_rest_url + '/fapi/v1/time').status_code)\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "DEMO_PORT": str(free_port())}
    command = [sys.executable, "-c", script]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "200\n"
    assert [line for line in result.stderr.splitlines() if line] == [
        f"MARKET=demo and nothing listened on 127.0.0.1:{env['DEMO_PORT']}: {NOTICE} at "
        f"http://127.0.0.1:{env['DEMO_PORT']} for this process (it stops with the process)"
    ]


def test_the_started_exchange_ends_with_a_killed_parent():
    """The exchange serves from a child process, which leaves when its parent is SIGKILLed."""
    port = free_port()
    script = (
        "import sys, time\n"
        "from config.settings import load_settings\n"
        "from core.exchange.demo import ensure_demo_exchange\n"
        "ensure_demo_exchange(load_settings())\n"
        "print('up', flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "DEMO_PORT": str(port)}
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout.readline() == "up\n"
        children = psutil.Process(parent.pid).children(recursive=True)
        assert requests.get(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=5).json() == {}
        assert children, "the exchange should run in a child process"
    finally:
        parent.kill()
        parent.wait()
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"the demo exchange outlived its killed parent: {alive}"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=1)
