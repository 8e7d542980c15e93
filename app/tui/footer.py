"""The footer every screen uses: compact, and it gives the palette key's room back on narrow terminals."""
from __future__ import annotations

from textual import events
from textual.widgets import Footer

WIDE = 100  # below this many columns the screen's own keys need the space (F1 lists Ctrl+P)


class KeyFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True)

    def on_resize(self, event: events.Resize) -> None:
        wide = self.app.size.width >= WIDE
        if wide != self.show_command_palette:
            self.show_command_palette = wide
            self.call_after_refresh(self.recompose)
