"""The next-token table of a two-model comparison, and the one-line KL panel above it.

Self-contained: they read a ComparisonView (explorer.engine.compare) and nothing else, so the
app can place them wherever the comparison feature lives. Rows come from both models' top
lists; Δ = p_A − p_B is red where A gives the token more probability, blue where B does.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from explorer.ui.render import token_cell

COLUMNS = [("token", "token"), ("id", "id"), ("p_A", "p_a"), ("p_B", "p_b"), ("Δ p", "delta"),
           ("rank A", "rank_a"), ("rank B", "rank_b")]


def comparison_cells(view) -> list[list[Text]]:
    """One row of cells per candidate of a ComparisonView (also usable with TokenTable.show_rows)."""
    rows = []
    for c in view.candidates:
        style = "red" if c.delta > 0 else "blue" if c.delta < 0 else "dim"
        rows.append([token_cell(c.text.text, c.text.kind), Text(str(c.id), style="dim"), Text(f"{c.p_a:.4f}"),
                     Text(f"{c.p_b:.4f}"), Text(f"{c.delta:+.4f}", style=style),
                     Text(str(c.rank_a), style="dim"), Text(str(c.rank_b), style="dim")])
    return rows


def comparison_line(view) -> str:
    """The KL panel's line for the next token, plus the prompt summary when there is one."""
    line = (f"A {view.model_a} · B {view.model_b}\n"
            f"Next token: KL(A‖B) {view.next_kl:.4g} nats · KL(B‖A) {view.next_kl_reverse:.4g} · "
            f"TV {view.next_tv:.4f} · top token {'same' if view.next_same_top else 'differs'}")
    if view.summary is not None:
        s = view.summary
        line += (f"\nPrompt ({s.tokens} tokens): mean KL {s.mean_kl:.4g}, p99 {s.p99_kl:.4g}, "
                 f"max {s.max_kl:.4g} nats; same top {s.same_top:.1%}")
    return line


class ComparisonTable(DataTable):
    """p_A, p_B and their difference for the tokens either model ranks highest."""

    can_focus = False

    DEFAULT_CSS = """
    ComparisonTable { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for label, key in COLUMNS:
            self.add_column(label, key=key)

    def show(self, view, keep_row: int = 0) -> None:
        self.clear()
        for i, cells in enumerate(comparison_cells(view)):
            self.add_row(*cells, key=str(i))
        if self.row_count:
            self.move_cursor(row=max(0, min(keep_row, self.row_count - 1)), animate=False)


class ComparisonPanel(Static):
    """KL(A‖B), TV and top-token agreement of the next token, and the prompt's summary."""

    DEFAULT_CSS = """
    ComparisonPanel { height: auto; padding: 0 1; }
    """

    def show(self, view) -> None:
        self.update(comparison_line(view))
