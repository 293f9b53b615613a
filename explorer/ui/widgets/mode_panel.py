"""Legend of the current mode, numbers of the token under the cursor, a plot, and the mode's details."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from explorer.ui.widgets.layer_plot import LayerPlot


class ModePanel(VerticalScroll):
    can_focus = False

    DEFAULT_CSS = """
    ModePanel { height: auto; max-height: 60%; border: round $secondary; padding: 0 1; }
    ModePanel > Static { width: 1fr; }
    ModePanel > LayerPlot.hidden { display: none; }
    """

    def compose(self):
        yield Static("", id="mode-legend")
        yield Static("", id="mode-cursor")
        yield LayerPlot(id="mode-plot", classes="hidden")
        yield Static("", id="mode-details")

    def show(self, legend: Text, cursor_line: Text, details: Text) -> None:
        self.query_one("#mode-legend", Static).update(legend)
        self.query_one("#mode-cursor", Static).update(cursor_line)
        self.query_one("#mode-details", Static).update(details)

    def plot(self) -> LayerPlot:
        return self.query_one(LayerPlot)

    def hide_plot(self) -> None:
        self.plot().add_class("hidden")

    def show_plot(self) -> LayerPlot:
        p = self.plot()
        p.remove_class("hidden")
        return p
