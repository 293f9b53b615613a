"""The interventions panel on its own: keys post the list the user asked for; the panel changes nothing itself."""

from __future__ import annotations

from textual.app import App

from explorer.engine.interventions.spec import Ablate, Clamp, Steer
from explorer.ui.widgets.interventions_panel import InterventionsPanel

ITEMS = (Steer(1, (1.0, 0.0), 2.0), Ablate("head", 0, 1), Clamp(1, 3, "/x/sae", value=0.0))


class PanelApp(App):
    def __init__(self):
        super().__init__()
        self.changes: list[InterventionsPanel.Changed] = []

    def compose(self):
        yield InterventionsPanel(n_layers=2, id="panel")

    def on_mount(self):
        panel = self.query_one(InterventionsPanel)
        panel.show(ITEMS, 0.125)
        panel.focus()

    def on_interventions_panel_changed(self, message):
        self.changes.append(message)


async def test_keys_post_the_new_list():
    app = PanelApp()
    async with app.run_test(size=(80, 20)) as pilot:
        panel = app.query_one(InterventionsPanel)
        assert "0.1250 nats" in panel.render_text().plain
        await pilot.press("equals_sign")
        await pilot.pause()
        assert app.changes[-1].items[0].strength == 2.5
        assert panel.items == ITEMS  # unchanged until the app shows the list in force
        await pilot.press("j", "space")
        await pilot.pause()
        assert app.changes[-1].items[1].enabled is False
        await pilot.press("minus")
        await pilot.pause()
        assert app.changes[-1].items[1].strength == 0.9
        await pilot.press("greater_than_sign")
        await pilot.pause()
        assert app.changes[-1].items[1].layer == 1
        await pilot.press("j", "greater_than_sign")  # a clamp keeps its layer: nothing posted
        await pilot.pause()
        count = len(app.changes)
        await pilot.press("x")
        await pilot.pause()
        assert len(app.changes) == count + 1 and app.changes[-1].items == ITEMS[:2]
        panel.show((), None)
        assert "No interventions" in panel.render_text().plain
