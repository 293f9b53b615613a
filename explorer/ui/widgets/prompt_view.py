"""The prompt, coloured by the current mode, with the cursor token in [brackets]."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static


class PromptView(VerticalScroll):
    can_focus = False

    DEFAULT_CSS = """
    PromptView { height: 1fr; min-height: 5; border: round $primary; padding: 0 1; }  /* ≥ 3 lines of prompt */
    PromptView > #prompt-text { width: 1fr; }
    """

    def compose(self):
        yield Static("", id="prompt-text")

    def show(self, text, follow_end: bool) -> None:
        self.query_one("#prompt-text", Static).update(text)
        if follow_end:
            self.call_after_refresh(self.scroll_end, animate=False)
