"""The start-up screen: the phases the loader reports (importing, loading weights, converting
the bundled model, the first step), the finished ones ticked, so a user knows it is working.
The app pops it when the first step is shown."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import LoadingIndicator, Static


class LoadingScreen(Screen):
    DEFAULT_CSS = """
    LoadingScreen { align: center middle; }
    LoadingScreen > Vertical { width: auto; max-width: 100; height: auto; }
    LoadingScreen #loading-title { text-style: bold; width: auto; }
    LoadingScreen LoadingIndicator { height: 3; }
    LoadingScreen #loading { width: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.phases: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Token Explorer — starting…", id="loading-title")
            yield LoadingIndicator()
            yield Static("Loading the model…", id="loading")

    def phase(self, text: str) -> None:
        """A new phase began (or the current one progressed: same first word, e.g. a percentage)."""
        if self.phases and self.phases[-1].split(" ")[:1] == text.split(" ")[:1]:
            self.phases[-1] = text
        else:
            self.phases.append(text)
        shown = Text()
        for i, p in enumerate(self.phases):
            done = i < len(self.phases) - 1
            shown.append(("✓ " if done else "… ") + p + "\n", "dim" if done else "bold")
        for static in self.query("#loading"):
            static.update(shown)
