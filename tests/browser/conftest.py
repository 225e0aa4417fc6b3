"""Browser tests: real processes (demo exchange, web, bridge) and Debian's headless Chromium.

The three servers run as separate `run.py` processes so a test can kill and restart the bridge
on its port. Every test leaves a screenshot under artifacts/browser/, pass or fail, and fails on any
console error or uncaught page exception.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.conftest import ARTIFACTS, ROOT, free_port, wait_for

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google, which this closed
# network refuses (see CI_RECIPES.md).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass
class Stack:
    """Demo exchange, web app and bridge as real processes sharing one data directory."""

    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "DATA_DIR": str(self.data_dir),
            "DEMO_SPEED": "60", "LOG_LEVEL": "WARNING",
            **{name: str(port) for name, port in self.ports.items()},
        }  # fmt: skip

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['WEB_PORT']}"

    @property
    def bridge_health(self) -> str:
        return f"http://127.0.0.1:{self.ports['BRIDGE_PORT']}/health"

    def start(self, name: str, *args: str) -> None:
        self.processes[name] = subprocess.Popen(
            [sys.executable, "run.py", *args], cwd=ROOT, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)

    def start_bridge(self) -> None:
        self.start("bridge", "bridge")
        wait_for(self.bridge_health)

    def restart_bridge(self) -> None:
        self.stop("bridge")
        self.start_bridge()


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in this thread
# while it is open, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="package")
def stack(tmp_path_factory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("ui"))
    stack.ports = {name: free_port() for name in ("DEMO_PORT", "WEB_PORT", "BRIDGE_PORT")}
    stack.start("demo", "demo-exchange", "--faults")
    wait_for(f"http://127.0.0.1:{stack.ports['DEMO_PORT']}/fapi/v1/ping")
    stack.start("web", "web")
    wait_for(f"{stack.web_url}/health")
    stack.start_bridge()
    yield stack
    for name in list(stack.processes):
        stack.stop(name)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, request) -> Iterator[Page]:
    """A fresh 1280x800 page; console errors fail the test; a screenshot is always kept."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(15_000)
    page.console_errors = errors  # tests that provoke errors on purpose may inspect/clear them
    yield page
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"console errors: {errors}"
