"""The next-token table: the columns the core and the features that are on give it
(explorer/ui/extensions.py), one row per candidate token."""

from __future__ import annotations

from textual.widgets import DataTable


class TokenTable(DataTable):
    """Never takes focus: the app owns every key, so ↑/↓ and j/k always agree."""

    can_focus = False

    DEFAULT_CSS = """
    TokenTable { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True

    def show(self, columns, rows: list, keep_row: int = 0) -> None:
        """Fill the table.

        Args:
            columns: extensions.Column objects, in order; each turns a row into a cell.
            rows: the row objects (candidates, or a feature's rows).
            keep_row: the row to put the cursor on (clamped).
        """
        self.clear(columns=True)  # new columns each time, so their widths fit these rows
        for col in columns:
            self.add_column(col.header, key=col.key)
        for i, row in enumerate(rows):
            self.add_row(*(col.cell(row) for col in columns), key=str(i))
        if self.row_count:
            self.move_cursor(row=max(0, min(keep_row, self.row_count - 1)), animate=False)
