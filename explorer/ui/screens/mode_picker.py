"""A list of every mode to jump to directly (E), instead of cycling through all of them with e.

Enter (or a click) returns the chosen mode's name; Escape returns None.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class ModePicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    ModePicker { align: center middle; }
    ModePicker > Vertical { width: 60; height: auto; max-height: 90%; border: thick $primary;
                            background: $surface; padding: 0 1; }
    ModePicker OptionList { height: auto; max-height: 24; }
    """

    def __init__(self, modes: list[tuple[str, str]], current: str) -> None:
        """``modes``: (name, label) pairs in the order of ``e``."""
        super().__init__()
        self.modes = modes
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Go to a mode (Enter; Esc cancels)", style="bold"))
            yield OptionList(*[Option(Text(f"{i + 1:>2}. {label}"), id=name)  # Text: labels are not markup
                               for i, (name, label) in enumerate(self.modes)])

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [name for name, _ in self.modes]
        options.highlighted = names.index(self.current) if self.current in names else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
