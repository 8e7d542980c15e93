"""What the Textual pilot tests share: waiting on the app, and reading its toasts."""
from __future__ import annotations

import time
from typing import Callable


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 240.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.1)


def notifications(app) -> str:
    """Every toast on screen, "title: message" per line (notify() posts them a moment later)."""
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)
