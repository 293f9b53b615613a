"""The next-token table: rank, token, id, probability, logit (and z-score when z is on)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from explorer.ui.render import token_cell


class TokenTable(DataTable):
    """Never takes focus: the app owns every key, so ↑/↓ and j/k always agree."""

    can_focus = False

    DEFAULT_CSS = """
    TokenTable { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self._columns_for(False)

    def _columns_for(self, zscores: bool) -> None:
        self.clear(columns=True)
        self.add_column("#", key="rank")
        self.add_column("token", key="token")
        self.add_column("id", key="id")
        self.add_column("prob", key="prob")
        self.add_column("logit", key="logit")
        if zscores:
            self.add_column("z", key="z")
        self._zscores = zscores

    def show(self, candidates, zscores: bool, keep_row: int = 0) -> None:
        if zscores != getattr(self, "_zscores", None):
            self._columns_for(zscores)
        else:
            self.clear()
        for c in candidates:
            cells = [Text(str(c.rank), style="dim"), token_cell(c.text.text, c.text.kind),
                     Text(str(c.id), style="dim"), Text(f"{c.prob:.4f}"),
                     Text("n/a", style="dim") if c.logit is None else Text(f"{c.logit:.3f}")]  # served model: no logits
            if zscores:
                cells.append(Text("n/a", style="dim") if c.zscore is None else Text(f"{c.zscore:+.2f}"))
            self.add_row(*cells, key=str(c.rank))
        if self.row_count:
            self.move_cursor(row=max(0, min(keep_row, self.row_count - 1)), animate=False)

    def show_rows(self, columns: list[tuple[str, str]], rows: list[list[Text]], keep_row: int = 0) -> None:
        """Fill the table with other columns (a feature's view, e.g. the decoding lab).

        Args:
            columns: (label, key) pairs.
            rows: one list of cells per row.
            keep_row: the row to put the cursor on (clamped).
        """
        self.clear(columns=True)  # new columns each time, so their widths fit these rows
        for label, key in columns:
            self.add_column(label, key=key)
        self._zscores = None  # show() rebuilds its own columns next time
        for i, cells in enumerate(rows):
            self.add_row(*cells, key=str(i))
        if self.row_count:
            self.move_cursor(row=max(0, min(keep_row, self.row_count - 1)), animate=False)
