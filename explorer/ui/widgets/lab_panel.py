"""The decoding lab's panel: settings (the selected one marked), stages, bans and biases, regex state.

It only shows Rich Text that ``explorer/ui/features/decoding_lab.py`` builds; it holds no state.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static


class LabPanel(VerticalScroll):
    can_focus = False

    DEFAULT_CSS = """
    LabPanel { height: auto; max-height: 24; border: round $warning; padding: 0 1; }
    LabPanel > Static { width: 1fr; }
    """

    _text: Text = Text()

    def compose(self):
        # Built with the latest text: show() may run before the panel's children exist (just mounted).
        yield Static(self._text, id="lab-text")

    def show(self, text: Text) -> None:
        self._text = text
        for static in self.query("#lab-text"):
            static.update(text)
