"""Legend of the current mode, numbers of the token under the cursor, and the mode's own details."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static


class ModePanel(VerticalScroll):
    can_focus = False

    DEFAULT_CSS = """
    ModePanel { height: auto; max-height: 50%; border: round $secondary; padding: 0 1; }
    ModePanel > Static { width: 1fr; }
    """

    def compose(self):
        yield Static("", id="mode-legend")
        yield Static("", id="mode-cursor")
        yield Static("", id="mode-details")

    def show(self, legend: Text, cursor_line: Text, details: Text) -> None:
        self.query_one("#mode-legend", Static).update(legend)
        self.query_one("#mode-cursor", Static).update(cursor_line)
        self.query_one("#mode-details", Static).update(details)
