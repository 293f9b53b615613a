"""Every mode in the app: computed (lazily where expensive), options keys, plots, `p` layer views."""

from __future__ import annotations

import pytest

from explorer.analyses import analysis_names
from explorer.ui.app import ExplorerApp
from explorer.ui.widgets.layer_plot import LayerPlot
from tests.ui.helpers import notifications, settle

SIZE = (140, 50)




@pytest.mark.parametrize("mode", analysis_names())
async def test_each_mode_shows_a_result_or_a_reason(tiny_session, mode):
    app = ExplorerApp(tiny_session, autosave=False, layer_prob=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.session.mode = mode
        app._refresh_mode()
        await settle(app, pilot)
        assert app.mode_result is not None or app.mode_error, mode
        if app.mode_result is not None:
            assert len(app.mode_result.values) == len(app.view.ids)
            plot = app.query_one(LayerPlot)
            has_plot = bool(app.mode_result.layers) or "coords" in app.mode_result.extra
            assert plot.has_class("hidden") != has_plot


async def test_layer_head_method_keys_change_the_result(tiny_session):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.session.mode = "attention"
        app._refresh_mode()
        await settle(app, pilot)
        first = app.mode_result
        await pilot.press("m")  # rollout -> raw
        await settle(app, pilot)
        assert app.mode_params["attention"]["method"] == "raw"
        await pilot.press("less_than_sign")
        await settle(app, pilot)
        assert app.mode_params["attention"]["layer"] == app.session.wrapper.n_layers - 2
        await pilot.press("right_curly_bracket")
        await settle(app, pilot)
        assert app.mode_params["attention"]["head"] == 0
        assert app.mode_result is not None and app.mode_result.values != first.values
        await pilot.press("M")  # attention has no baseline: explained, not raised
        await pilot.pause()
        assert any("no baseline" in m for m in notifications(app))


async def test_p_cycles_layer_views_with_layer_prob(tiny_session):
    app = ExplorerApp(tiny_session, autosave=False, layer_prob=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        assert app.session.mode == "layer_prob"
        assert app.mode_result is not None and app.mode_result.layers
        assert app.mode_result.checks["lens_kl_last"] < 1e-5
        await pilot.press("v")
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        assert app.session.mode == "layer_correlation"
        await pilot.press("p")
        assert app.session.mode == "plain"


async def test_residual_heatmap_and_cursor_moves_recompute(tiny_session):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.session.mode = "residual"
        app._refresh_mode()
        await settle(app, pilot)
        assert app.heatmap_text() is not None
        before = app.mode_result
        await pilot.press("ctrl+k")
        await settle(app, pilot)
        assert app.mode_result is not None and app.mode_result.extra["cursor"] == before.extra["cursor"] - 1
