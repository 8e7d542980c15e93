"""Long, uninterruptible core work (loading models, ingesting a folder) in a daemon thread.

Why not `@work(thread=True)` for these: Textual runs thread workers on asyncio's default
executor, and `asyncio.run` joins that executor when the app exits, so Ctrl+Q during a
15-second model load (torch import, GGUF load) left the shell waiting until the load
finished. Here a Textual (async) worker awaits a daemon thread instead: Textual still
tracks and cancels the worker, and on quit the process exits at once, abandoning the
thread. That is safe for these two jobs: a load has no state to keep, and the ingest is
written to survive being killed (per-file upserts; the next run cleans up).

Answers keep using a thread worker: they end at the next token once their stop event is set.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from textual.dom import DOMNode
from textual.worker import Worker


async def in_daemon_thread(function: Callable[..., Any], *args: Any, name: str = "frontdesk-background") -> Any:
    """Run `function(*args)` in a daemon thread and await its result (or its exception)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def deliver(setter: Callable[[Any], None], value: Any) -> None:
        if not future.done():
            setter(value)

    def target() -> None:
        try:
            result = function(*args)
        except BaseException as error:  # handed to the awaiting worker, never lost in the thread
            outcome: tuple[Callable[[Any], None], Any] = (future.set_exception, error)
        else:
            outcome = (future.set_result, result)
        try:
            loop.call_soon_threadsafe(deliver, *outcome)
        except RuntimeError:  # the app (and its loop) ended first: nobody is waiting
            pass

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future


def run_in_background(node: DOMNode, function: Callable[..., Any], *args: Any, group: str) -> Worker:
    """Start `function(*args)` as a Textual worker of `node`, executed in a daemon thread.

    `function` must catch its own errors and report them with `post_message`: it is the
    whole job, and nothing it raises may end the app.
    """

    async def job() -> None:
        await in_daemon_thread(function, *args, name=f"frontdesk-{group}")

    return node.run_worker(job, name=group, group=group, exclusive=True, exit_on_error=False)
