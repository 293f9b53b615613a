"""The comparison table and panel render a ComparisonView's rows and numbers (no app wiring yet)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from explorer.engine.compare import Comparison
from explorer.engine.compare_load import precision_copy
from explorer.ui.widgets.comparison_table import ComparisonPanel, ComparisonTable


class _Host(App):
    def compose(self) -> ComposeResult:
        yield ComparisonPanel()
        yield ComparisonTable()


async def test_table_and_panel_show_the_view(tiny_session):
    tiny_session.comparison = Comparison(tiny_session.wrapper, precision_copy(tiny_session.wrapper, "float16"))
    tiny_session.compute()
    view = tiny_session.comparison.view(tiny_session)
    app = _Host()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(ComparisonTable)
        table.show(view)
        app.query_one(ComparisonPanel).show(view)
        await pilot.pause()
        assert table.row_count == len(view.candidates)
        first = view.candidates[0]
        assert [str(c) for c in table.get_row_at(0)[2:5]] == [f"{first.p_a:.4f}", f"{first.p_b:.4f}", f"{first.delta:+.4f}"]
        text = str(app.query_one(ComparisonPanel).render())
        assert f"KL(A‖B) {view.next_kl:.4g} nats" in text and "same top" in text
