"""Two models side by side on the main screen (issue 16): table columns, the KL panel, y / Y / S.

The engine steps model B with model A (``session.comparison``, explorer/engine/compare.py);
this feature only reads the ComparisonView that the step job computes beside the StepView
(the "comparison" step input, so the table, the panel and the divergence mode all read the
numbers of the same ids). While a comparison is open:

* the next-token table shows rows from both models' top lists: ``#A``, ``p_A`` (in place of
  rank and prob), ``p_B`` (in place of logit), ``Δ`` = p_A − p_B and ``#B``;
* a panel under the mode panel shows KL(A‖B), KL(B‖A), TV and whether the top token agrees;
* the status bar names model B;
* ``y`` / ``Y`` move the cursor to the next / previous big disagreement, ``W`` swaps A and B.
"""

from __future__ import annotations

from rich.text import Text

from explorer.ui.extensions import Column, ColumnProvider

BIG_PERCENTILE = "p90_kl"
"""A "big disagreement" is a token whose KL(A‖B) is at least the prompt's 90th percentile:
relative to the prompt, because KL scales differ by orders of magnitude between a bf16 copy
and a fine-tune."""


def _dash() -> Text:
    return Text("·", style="dim")


class ComparisonMixin:
    """Keys: y, Y (next / previous big disagreement), S (swap A and B)."""

    def install_comparison(self) -> None:
        ext = self.extensions
        ext.step_inputs["comparison"] = self._comparison_input
        ext.column_providers.append(ColumnProvider(active=self._comparison_open, columns=self._comparison_columns,
                                                   rows=self._comparison_rows))
        ext.step_listeners.append(self._render_comparison_panel)
        ext.key_conditions["comparison_open"] = self._comparison_open

    # ------------------------------------------------------------ state
    def _comparison_open(self) -> bool:
        return self.session is not None and getattr(self.session, "comparison", None) is not None

    @property
    def comparison_view(self):
        """The ComparisonView of the shown step (None without a comparison)."""
        return self.step_inputs.get("comparison")

    def _comparison_input(self, session, snapshot: tuple):
        """Runs in the step job, right after ``session.compute(snapshot)`` (a no-op sync then)."""
        if session.comparison is None:
            return None
        return session.comparison.view(session, snapshot)

    def comparison_status(self) -> str:
        """What the status bar says about model B ("" without a comparison)."""
        return f" vs B {self.session.comparison.b.name}" if self._comparison_open() else ""

    # ------------------------------------------------------------ table
    def _comparison_rows(self):
        view = self.comparison_view
        return list(view.candidates) if view is not None else None

    def _comparison_columns(self) -> list[Column]:
        view = self.comparison_view
        by_id = {c.id: c for c in view.candidates} if view is not None else {}

        # Looked up by id, so the cells also fill rows another feature chose (the lab's ranking).
        def cell(fn):
            def make(row) -> Text:
                found = by_id.get(row.id)
                return fn(found) if found is not None else _dash()
            return make

        def delta(c) -> Text:
            style = "red" if c.delta > 0 else "blue" if c.delta < 0 else "dim"
            return Text(f"{c.delta:+.4f}", style=style)

        return [Column("#A", "rank", cell(lambda c: Text(str(c.rank_a), style="dim"))),
                Column("p_A", "prob", cell(lambda c: Text(f"{c.p_a:.4f}"))),
                Column("p_B", "logit", cell(lambda c: Text(f"{c.p_b:.4f}"))),
                Column("", "z", None),  # z-scores are of A's logits only: not shown beside two models
                Column("Δ", "delta", cell(delta)),
                Column("#B", "rank_b", cell(lambda c: Text(str(c.rank_b), style="dim")))]

    # ------------------------------------------------------------ panel
    def _render_comparison_panel(self) -> None:
        from explorer.ui.widgets.comparison_table import ComparisonPanel

        found = self.query("#comparison-panel")
        view = self.comparison_view
        if view is None:
            if found:
                found.first().remove()
            return
        if found:
            panel = found.first(ComparisonPanel)
        else:
            panel = ComparisonPanel(id="comparison-panel")
            self.query_one("#extra-panels").mount(panel)
        panel.show(view)

    # ------------------------------------------------------------ keys
    def _jump_disagreement(self, direction: int) -> None:
        from explorer.engine.compare import next_big_disagreement

        if not self.ready:
            return
        view = self.comparison_view
        if not self._comparison_open() or view is None:
            self.notify("No second model is open: start with --compare MODEL (or --compare-bf16 / --compare-fp16).",
                        severity="warning", timeout=4)
            return
        if not self.view_is_current():
            self.notify("Busy computing the step: key ignored.", timeout=1)
            return
        kls = [t.kl for t in view.tokens]
        threshold = getattr(view.summary, BIG_PERCENTILE) if view.summary is not None else 0.0
        if threshold <= 0.0:
            self.notify("The two models agree exactly on every token of this prompt (KL 0).", timeout=3)
            return
        cursor = self._cursor()
        if direction > 0:
            found = next_big_disagreement(kls, cursor, threshold)
        else:
            back = next_big_disagreement(kls[::-1], len(kls) - 1 - cursor, threshold)
            found = None if back is None else len(kls) - 1 - back
        if found is None:
            return
        entry = self.session.current
        entry.cursor = None if found == len(entry.ids) - 1 else found  # None: the cursor follows the end
        self.session.cursor_visible = True
        t = view.tokens[found]
        self.notify(f"Token {found + 1}: KL(A‖B) {t.kl:.4g} nats (≥ p90 {threshold:.4g}).", timeout=3)
        self._after_view_change()
        self._autosave()

    def action_compare_next(self) -> None:
        self._jump_disagreement(+1)

    def action_compare_prev(self) -> None:
        self._jump_disagreement(-1)

    def action_compare_swap(self) -> None:
        if self.session is None:
            return
        if not self._comparison_open():
            self.notify("No second model is open: start with --compare MODEL (or --compare-bf16 / --compare-fp16).",
                        severity="warning", timeout=4)
            return
        self.stop_stale_work()
        comparison, session = self.session.comparison, self.session
        # swap takes both models' locks: in a job, so the screen never waits behind a model call
        self.jobs.start("compare-swap", "swapping A and B", lambda job: comparison.swap(session),
                        on_end=self._comparison_swapped)

    def _comparison_swapped(self, job) -> None:
        if self.result_cache is not None:
            self.result_cache.clear()  # lazy results were keyed by the old A
        cmp = self.session.comparison
        self.notify(f"A is now {cmp.a.name}, B {cmp.b.name}; generation and trees run on A.", timeout=4)
        self._request_step()
