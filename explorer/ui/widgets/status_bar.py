"""One-line status: prompt i/n, token count, cursor, mode, model, device, seed, busy state."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def show(self, *, prompt_i: int, prompt_n: int, n_tokens: int, cursor: int | None, cursor_token: str,
             mode: str, model: str, device: str, seed: int, busy: str = "", flags: str = "") -> None:
        t = Text()
        t.append(f"Prompt {prompt_i}/{prompt_n}", "bold")
        t.append(f" │ {n_tokens} token{'' if n_tokens == 1 else 's'} │ ")
        if cursor is None:
            t.append("Cursor: off")
        else:
            t.append(f"Cursor: {cursor + 1}/{n_tokens} ")
            t.append(repr(cursor_token), "bold")
        t.append(f" │ Mode: {mode}")
        if flags:  # e.g. "interventions on (2)": the numbers shown are not the plain model's
            t.append(f" │ {flags}", "bold magenta")
        if busy:  # before the model name: a narrow terminal cuts the end of the line
            t.append(f" │ {busy}", "bold yellow")
        t.append(f" │ {model} │ {device} │ seed {seed}")
        self.update(t)
