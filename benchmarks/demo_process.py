"""A demo exchange in a child process, as `run.py demo-exchange` runs it, for benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The child prints its port and serves until its stdin closes.
CHILD = """
import sys
from core.exchange.demo import DemoExchangeThread, DemoOptions
exchange = DemoExchangeThread(DemoOptions(speed=float(sys.argv[1]))).start()
print(exchange.port, flush=True)
sys.stdin.read()
exchange.stop()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def demo_exchange_process(speed: float = 1.0) -> Iterator[tuple[str, str, int]]:
    """Yield (REST URL, WebSocket URL, child pid) of a demo exchange in its own process."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(speed)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(child.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", child.pid
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=15)
