"""A small modal that asks for a regex (or the path of a regex file, e.g. prompts/date.regex).

Enter returns the text (an empty line means "release the constraint"); Escape returns None.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class RegexInput(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    RegexInput { align: center middle; }
    RegexInput > Vertical { width: 76; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    RegexInput Static { width: 1fr; }
    """

    def __init__(self, current: str | None = None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Constrain the next tokens to a regex", style="bold"))
            hint = ("Type a pattern such as [0-9]{4}-[0-9]{2}-[0-9]{2}, or the path of a file holding one "
                    "(prompts/date.regex). It is matched against the text generated from now on. ")
            hint += ("An empty line releases the current constraint. " if self.current else "")
            hint += "Enter to apply, Esc to cancel."
            yield Static(Text(hint, style="dim"))
            yield Input(value="", placeholder=self.current or "[0-9]{4}-[0-9]{2}-[0-9]{2}", id="regex-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
