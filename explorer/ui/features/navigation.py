"""The core keys: the token table (↑ ↓ l h), prompt entries (d a w s Ctrl+r x) and the cursor.

``l`` appends the selected row unless a feature's append guard vetoes it (the guards are
listed in ``app.extensions.append_guards``; today the decoding lab's regex constraint).
"""

from __future__ import annotations

from typing import Any, Callable

from explorer.errors import ExplorerError, InputError
from explorer.ui.widgets.token_table import TokenTable


class NavigationMixin:
    """Keys: ↑/k ↓/j l h, d a w s Ctrl+r x, c and the cursor keys."""

    # ------------------------------------------------------------ table
    def action_table_up(self) -> None:
        if self.ready:
            table = self.query_one(TokenTable)
            table.move_cursor(row=max(0, table.cursor_row - 1), animate=False)

    def action_table_down(self) -> None:
        if self.ready:
            table = self.query_one(TokenTable)
            table.move_cursor(row=min(table.row_count - 1, table.cursor_row + 1), animate=False)

    def action_append(self) -> None:
        if not self.ready:
            return
        if self._pending is not None:
            # The table is about to change: a queued append would pick from a stale table.
            self.notify("Busy computing the step: key ignored.", timeout=1)
            self.ignored_note = "busy: key ignored"  # also in the status bar: a toast is easy to miss
            self._refresh_status()
            return
        cand = self.selected_candidate()
        if cand is None:
            return
        veto = self.extensions.veto(cand)
        if veto is not None:
            self.notify(veto.message, title=veto.title, severity=veto.severity, timeout=5)
            return
        try:
            self.session.append(cand.id)
        except InputError as exc:
            self._tell(exc)
            return
        self._request_step()

    def action_pop(self) -> None:
        if not self.ready:
            return
        try:
            self.session.pop()
        except InputError as exc:
            self._tell(exc)
            return
        self._request_step()

    # ------------------------------------------------------------ prompts
    def _prompt_op(self, name: str) -> bool:
        if not self.ready:
            return False
        try:
            getattr(self.session, name)()
        except InputError as exc:
            self._tell(exc)
            return False
        self._request_step()
        return True

    def action_add_prompt(self) -> None:
        if self._prompt_op("add_prompt"):
            self.notify(f"Prompt {self.session.index + 1}/{self.session.count} added", timeout=2)

    def action_remove_prompt(self) -> None:
        """a asks first: the first press names the entry, a second press within 5 s removes it."""
        import time

        if not self.ready:
            return
        uid = self.session.current.uid
        armed = getattr(self, "_remove_armed", None)
        if self.session.count > 1 and (armed is None or armed[0] != uid or time.monotonic() - armed[1] > 5):
            self._remove_armed = (uid, time.monotonic())
            words = " ".join(self.session.wrapper.decode(self.session.current.ids).split())[:40]
            self.notify(f"Remove prompt {self.session.index + 1}/{self.session.count} ({words!r})? "
                        "Press a again to remove it.", timeout=5)
            return
        self._remove_armed = None
        self._prompt_op("remove_prompt")

    def action_next_prompt(self) -> None:
        self._prompt_op("next_prompt")

    def action_prev_prompt(self) -> None:
        self._prompt_op("prev_prompt")

    def action_reset_prompt(self) -> None:
        self._prompt_op("reset")

    def action_save_prompt(self) -> None:
        if self.session is None:
            return
        from explorer.io.prompts import save_prompt

        w = self.session.wrapper
        ids = list(self.session.current.ids)
        try:
            path = save_prompt(w.decode(ids), ids, [w.token_text(t).text for t in ids], w.name,
                               extra=self.interventions_export())
        except ExplorerError as exc:
            self._tell(exc, "error")
            return
        self.notify(f"Saved to {path}", title="Prompt saved", timeout=6)

    # ------------------------------------------------------------ cursor
    def _cursor(self) -> int:
        return self.session.cursor_index()

    def action_toggle_zscores(self) -> None:
        if self.session is None:
            return
        self.session.show_zscores = not self.session.show_zscores
        self.render_table()
        self._render_all()

    def action_toggle_cursor(self) -> None:
        if self.session is None:
            return
        self.session.cursor_visible = not self.session.cursor_visible
        self._render_all()

    def _cursor_op(self, name: str) -> None:
        if self.session is None:
            return
        op: Callable[[], Any] = getattr(self.session, name)
        op()
        self.session.cursor_visible = True
        self._after_view_change()
        self._autosave()  # the cursor is part of the saved session

    def action_cursor_next(self) -> None:
        self._cursor_op("cursor_next")

    def action_cursor_prev(self) -> None:
        self._cursor_op("cursor_prev")

    def action_cursor_next_word(self) -> None:
        self._cursor_op("cursor_next_word")

    def action_cursor_prev_word(self) -> None:
        self._cursor_op("cursor_prev_word")

    def action_cursor_start(self) -> None:
        self._cursor_op("cursor_start")

    def action_cursor_end(self) -> None:
        self._cursor_op("cursor_end")
