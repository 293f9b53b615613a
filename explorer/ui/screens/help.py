"""The help screen: every key, grouped, from the one KEYMAP table."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from explorer.ui.keymap import KEYMAP


def keys_table() -> Table:
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("Key", no_wrap=True)
    table.add_column("Action")
    group = None
    for spec in KEYMAP:
        if spec.group != group:
            group = spec.group
            table.add_row(Text(group, style="bold underline"), "")
        table.add_row(Text(spec.display or spec.keys), Text(spec.description))
    table.add_row("", "")
    table.add_row(Text("Ctrl+p"), Text("Command palette: every action by name"))
    table.add_row(Text("Note", style="dim"),
                  Text("Most terminals cannot send Ctrl+0 or Ctrl+$; use Home and End.", style="dim"))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-height: 90%; border: thick $primary; background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("Token Explorer — keys (Esc to close)", style="bold"))
            yield Static(keys_table())

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
