"""Headless domain code shared by the CLI, the TUI and the tests. Never imports textual."""
