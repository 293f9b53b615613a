"""A small modal that asks for one intervention's settings as ``key=value`` pairs.

The same syntax as the ``--steer`` / ``--clamp`` / ``--ablate`` flags of the commands
(explorer/engine/interventions/build.py), so what works on the command line works here.
Enter returns the text; Escape returns None.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class InterventionInput(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    InterventionInput { align: center middle; }
    InterventionInput > Vertical {
        width: 80; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    InterventionInput Static { width: 1fr; }
    """

    def __init__(self, title: str, hint: str, value: str) -> None:
        super().__init__()
        self.title_text, self.hint, self.value = title, hint, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text, style="bold"))
            yield Static(Text(self.hint + " Enter to add, Esc to cancel.", style="dim"))
            yield Input(value=self.value, id="intervention-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
