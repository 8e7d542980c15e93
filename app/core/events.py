"""The one event type the core streams to front ends, and the one helper that dispatches it.

The pipeline (`Desk.ask`) and the folder sync (`Desk.ingest`) are generators of `Event`s. A
front end passes each event to `dispatch` with an object that has a method per event it
cares about, named after the event: `on_token(event)`, `on_notice(event)`,
`on_ingest_finished(event)`. Events it has no method for are ignored, so a front end that
only wants the final answer writes one method, and adding an event breaks no front end.
"""
from __future__ import annotations

import re
from typing import Any


class Event:
    """Base of every event the core yields. Subclasses are frozen dataclasses."""

    @classmethod
    def handler_name(cls) -> str:
        """`on_` + the class name in snake case: DraftWithdrawn -> on_draft_withdrawn."""
        return "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def dispatch(event: Event, handlers: Any, *context: Any) -> Any:
    """Call `handlers.on_<event>(event, *context)` if it exists; return what it returns."""
    method = getattr(handlers, event.handler_name(), None)
    return method(event, *context) if method is not None else None
