"""The demo exchange in a child process, for the entry points that start one on their own.

A child process has its own interpreter lock: generating and serving candles never slows the
process that needs the market (the web app stays responsive, downloads use a second core). It
ends with its parent, even one that is killed: its stdin is a pipe from the parent, whose end of
file tells it to go.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import queue
import subprocess
import sys
import threading

from config.settings import PROJECT_ROOT, Secret
from core.errors import ConfigError, ExchangeError
from core.exchange.demo.runner import DemoLauncher
from core.exchange.demo.server import DemoOptions

_READY, _REFUSED = "ready", "refused"


class DemoExchangeProcess(DemoLauncher):
    """A demo exchange serving from a child process; `start()` returns once it listens."""

    _process: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 30.0) -> DemoExchangeProcess:
        """Start the child and wait until it listens.

        Raises ConfigError for a host it may not bind, ExchangeError when it cannot listen or
        does not answer within `timeout_s`.
        """
        config = {"host": self.host, "port": self.port, **dataclasses.asdict(self.options)}
        config["api_token"] = self._api_token.reveal()
        path = os.pathsep.join(filter(None, (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))))
        process = self._process = subprocess.Popen(
            [sys.executable, "-m", "core.exchange.demo.process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": path},
        )
        stdin, stdout = process.stdin, process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(config) + "\n")  # secrets never on the command line
        stdin.flush()
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            status, _, detail = lines.get(timeout=timeout_s).strip().partition(" ")
        except queue.Empty:
            self.stop()
            raise ExchangeError(f"the demo exchange did not start within {timeout_s:g} s") from None
        if status == _READY:
            self.port = int(detail)
            return self
        self.stop()
        if status == _REFUSED:
            raise ConfigError(detail)
        raise ExchangeError(detail or f"the demo exchange exited with status {process.poll()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the child (SIGTERM: it closes its connections) and wait for it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdin is not None:
            process.stdin.close()


def _exit_with_parent() -> None:
    sys.stdin.read()  # returns at end of file: the parent closed the pipe or died
    os._exit(0)


def _main() -> int:
    """The child: serve until SIGTERM/SIGINT or the parent's end, reporting one status line.

    Its configuration (secrets included) is the first line of stdin, never its command line.
    """
    from core.exchange.demo.runner import serve_until_signal

    config = json.loads(sys.stdin.readline())
    host, port = config.pop("host"), config.pop("port")
    token = Secret(config.pop("api_token"))
    config["outages"] = tuple(tuple(window) for window in config["outages"])
    threading.Thread(target=_exit_with_parent, daemon=True).start()

    def ready(server_port: int) -> None:
        print(f"{_READY} {server_port}", flush=True)

    try:
        asyncio.run(serve_until_signal(host, port, DemoOptions(**config), token, ready))
    except ConfigError as error:
        print(f"{_REFUSED} {error}", flush=True)
        return 2
    except ExchangeError as error:
        print(f"failed {error}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
