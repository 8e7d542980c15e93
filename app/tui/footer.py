"""The footer every screen uses: compact, and it gives way on narrow terminals.

Below `WIDE` columns the palette key goes, and on every screen but the chat so do the
app-wide keys other than Help and Quit: F1 lists them, and the screen's own keys need the
room. They all keep working; only their footer labels are hidden.
"""
from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # Footer's own key widget: the footer looks the same

WIDE = 100  # below this many columns the screen's own keys need the space (F1 lists Ctrl+P)
ALWAYS_SHOWN = {"help", "quit"}  # app actions that stay in a narrow sub-screen's footer


class KeyFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True)

    def on_resize(self, event: events.Resize) -> None:
        wide = self.app.size.width >= WIDE
        if wide != self.show_command_palette:
            self.show_command_palette = wide
            self.call_after_refresh(self.recompose)

    def shown_bindings(self) -> list[tuple]:
        """(binding, enabled, tooltip) for each key shown, one per action, in the screen's order."""
        narrow = self.app.size.width < WIDE
        keep_app_keys = not narrow or getattr(self.screen, "FOOTER_APP_KEYS", False)
        shown: dict[str, tuple] = {}
        for node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in shown:
                continue
            if node is self.app and not keep_app_keys and binding.action not in ALWAYS_SHOWN:
                continue
            shown[binding.action] = (binding, enabled, tooltip)
        return list(shown.values())

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        bindings = self.shown_bindings()
        self.styles.grid_size_columns = len(bindings)
        for binding, enabled, tooltip in bindings:
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            disabled=not enabled, tooltip=tooltip).data_bind(compact=Footer.compact)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            active = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if active is not None:
                _node, binding, enabled, tooltip = active
                yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                                classes="-command-palette", disabled=not enabled,
                                tooltip=binding.tooltip or binding.description)
