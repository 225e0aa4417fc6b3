"""Waiting on conditions with deadlines, the one way tests wait (never a bare sleep): the poll
interval is only how often the condition is asked again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.05


def until(condition: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    """The condition's first truthy value; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} not met before the deadline"
        time.sleep(POLL_S)
    return value


async def until_async(
    condition: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition"
) -> Any:
    """`until` inside an event loop: the condition (it may block on I/O) runs in a thread."""
    deadline = time.monotonic() + timeout_s
    while not (value := await asyncio.to_thread(condition)):
        assert time.monotonic() < deadline, f"{what} not met before the deadline"
        await asyncio.sleep(POLL_S)
    return value


async def serve_until(server: Any, done: Callable[[], Any], timeout_s: float) -> None:
    """Run `server.run()` (a bot host) until `done()`; it must not end before, nor take longer
    than `timeout_s`."""
    task = asyncio.ensure_future(server.run())
    try:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, "the host did not get there in time"
            await asyncio.sleep(POLL_S)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
