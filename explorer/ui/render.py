"""Turning StepViews and ModeResults into Rich Text: colour scales, tokens, table cells.

Everything is built with ``Text.append`` and never parsed as markup, so a prompt holding
``[/b]`` or an ANSI escape is shown as the characters it is.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from explorer.colors import lerp_color, scale_color, text_color_for  # noqa: F401  (re-exported for widgets)


def token_cell(text: str, kind: str) -> Text:
    """A table cell for a token: whitespace visible, specials dim italic, raw bytes magenta."""
    from explorer.engine.tokens import visible_whitespace

    if kind == "special":
        return Text(clip_token(text), style="italic dim")
    style = "magenta" if kind == "bytes" else ""
    return Text(clip_token(visible_whitespace(text)), style=style)


MAX_TOKEN_CELL = 16
"""Longest token a table cell shows whole: one long token (a run of 27 dashes) must not push the
numbers off the table."""


def clip_token(text: str, limit: int = MAX_TOKEN_CELL) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def prompt_text(tokens, colors: list[str | None], cursor: int | None) -> Text:
    """The prompt as one Text: each token with its background colour; the cursor token in [brackets]."""
    out = Text()
    for i, tok in enumerate(tokens):
        piece = tok.text.text
        bg = colors[i] if i < len(colors) else None
        style = Style(bgcolor=bg, color=text_color_for(bg)) if bg else Style()
        if tok.text.kind == "special":
            style += Style(italic=True, dim=bg is None)
        elif tok.text.kind == "bytes":
            style += Style(color="magenta") if not bg else Style()
        if i == cursor:
            out.append("[", style="bold yellow")
            shown = piece.replace("\n", "↵\n") if piece.strip() == "" and piece else piece
            out.append(shown or "∅", style + Style(bold=True, underline=True))
            out.append("]", style="bold yellow")
        else:
            # Newlines stay line breaks; show a faint ↵ so a token that is only "\n" can be seen.
            if "\n" in piece:
                parts = piece.split("\n")
                for j, part in enumerate(parts):
                    if part:
                        out.append(part, style)
                    if j < len(parts) - 1:
                        out.append("↵", Style(dim=True) + style)
                        out.append("\n")
            else:
                out.append(piece, style)
    return out


def legend_bar(lo_label: str, hi_label: str, colors: tuple[str, str], width: int = 24) -> Text:
    bar = Text()
    bar.append(f"{lo_label} ")
    for k in range(width):
        c = lerp_color(colors[0], colors[1], k / (width - 1))
        bar.append(" ", Style(bgcolor=c))
    bar.append(f" {hi_label}")
    return bar
