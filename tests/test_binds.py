"""Every server as a user starts it: a public bind needs API_TOKEN, --faults only on loopback,
and every loopback form the settings accept really binds."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "t0ken-for-binds"


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _refused(args: list[str], port: int, env: dict[str, str]) -> tuple[int, list[str]]:
    """Exit status and stderr lines of a server that must stop without ever listening on `port`."""
    process = _start(args, env)
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None:
            assert not _listening(port), f"{' '.join(args)} listened on port {port}"
            assert time.monotonic() < deadline, f"{' '.join(args)} did not stop"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate(timeout=30)
    assert not _listening(port)
    return process.returncode, err.strip().splitlines()


@pytest.mark.parametrize(
    ("args", "extra_env", "named"),
    [
        (["-m", "wsbridge", "--host", "0.0.0.0"], {}, "API_TOKEN"),
        (["run.py", "bridge", "--host", "0.0.0.0"], {}, "API_TOKEN"),
        (["run.py", "web", "--host", "0.0.0.0"], {}, "API_TOKEN"),
        (["run.py", "demo-exchange", "--host", "0.0.0.0"], {}, "API_TOKEN"),
        (["run.py", "demo-exchange", "--host", "0.0.0.0", "--faults"], {}, "--faults"),
        (["run.py", "demo-exchange", "--host", "::", "--faults"], {"API_TOKEN": TOKEN}, "--faults"),
        (["run.py", "demo-exchange", "--faults"], {"DEMO_HOST": "0.0.0.0"}, "API_TOKEN"),
        (["run.py", "demo-exchange", "--faults"], {"DEMO_HOST": "0.0.0.0", "API_TOKEN": TOKEN},
         "--faults"),
    ],
)  # fmt: skip
def test_public_bind_is_refused_with_one_line_and_never_listens(
    args, extra_env, named, demo_exchange, tmp_path
):
    port = free_port()
    # The market is the demo fixture, so a bridge that wrongly starts really gets to listen.
    env = {"DATA_DIR": str(tmp_path), "DEMO_PORT": str(demo_exchange.port), **extra_env}
    status, lines = _refused([*args, "--port", str(port)], port, env)
    assert status != 0
    assert len(lines) == 1, lines
    assert named in lines[0] and "Traceback" not in lines[0]


def test_bridge_binds_a_public_address_with_a_token(demo_exchange, tmp_path):
    port = free_port()
    env = {"DATA_DIR": str(tmp_path), "DEMO_PORT": str(demo_exchange.port), "API_TOKEN": TOKEN}
    process = _start(["-m", "wsbridge", "--host", "0.0.0.0", "--port", str(port)], env)
    try:
        assert b'"estado": "ok"' in wait_for(f"http://127.0.0.1:{port}/health")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert TOKEN not in err


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return reply.status


def _serving(process: subprocess.Popen, url: str, timeout: float = 40) -> bool:
    """True once `url` answers; False if the process exits first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        try:
            _get(url)
            return True
        except OSError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.1)
    return False


@pytest.mark.parametrize("host", ["127.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_every_loopback_form_is_served_by_web_bridge_and_demo(host, tmp_path):
    ports = {name: free_port() for name in ("WEB_PORT", "BRIDGE_PORT", "DEMO_PORT")}
    env = {
        "DATA_DIR": str(tmp_path),
        **{name: str(port) for name, port in ports.items()},
        **{key: host for key in ("WEB_HOST", "BRIDGE_HOST", "DEMO_HOST")},
    }
    plain = host.strip("[]")
    address = f"[{plain}]" if ":" in plain else plain
    process = _start(["run.py"], env)
    try:
        served = _serving(process, f"http://{address}:{ports['WEB_PORT']}/health")
        if served:
            assert _get(f"http://{address}:{ports['BRIDGE_PORT']}/health") == 200
            assert _get(f"http://{address}:{ports['DEMO_PORT']}/fapi/v1/ping") == 200
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert served, f"run.py exited {process.returncode} before serving: {err.strip()}"
    assert process.returncode == 0, err
