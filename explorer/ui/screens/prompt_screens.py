"""Two small modals for prompts: an editor (i) and the list of prompt entries (P).

PromptEditor returns the edited text (Ctrl+s) or None (Esc); Enter is a newline, as prompts
may hold several lines. PromptList returns the chosen entry's index or None.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option


class PromptEditor(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "confirm", "Apply")]

    DEFAULT_CSS = """
    PromptEditor { align: center middle; }
    PromptEditor > Vertical { width: 90%; height: 80%; border: thick $primary; background: $surface; padding: 0 1; }
    PromptEditor TextArea { height: 1fr; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Edit the prompt: Ctrl+s applies (tokens before the first change are kept), "
                              "Esc cancels.", style="bold"))
            yield TextArea(self.text, id="prompt-editor", soft_wrap=True)

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def action_confirm(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptList(ModalScreen[int | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    PromptList { align: center middle; }
    PromptList > Vertical { width: 80%; height: auto; max-height: 90%; border: thick $primary;
                            background: $surface; padding: 0 1; }
    PromptList OptionList { height: auto; max-height: 30; }
    """

    def __init__(self, entries: list[str], current: int) -> None:
        """``entries``: one line per prompt entry (its first words), in order."""
        super().__init__()
        self.entries = entries
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Prompt entries (Enter switches; Esc cancels)", style="bold"))
            # Text, not a str: a str is read as markup, and a prompt may hold "[/b]".
            yield OptionList(*[Option(Text(line), id=str(i)) for i, line in enumerate(self.entries)])

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = self.current
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(int(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
