"""SAE features in the app: lazy features for the cursor token, p cycles SAE layers, f selects a feature."""

from __future__ import annotations

import pytest

from explorer.config import Config, DisplaySection, ModelSection, PromptSection, SaeEntry
from explorer.engine.session import Session
from explorer.ui.app import ExplorerApp
from tests.engine.sae_files import write_saelens
from tests.ui.helpers import notifications, settle

SIZE = (140, 50)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr("explorer.engine.sae.catalog.feature_cache_dir", lambda: tmp_path / "cache" / "sae_features")




def sae_app(wrapper, tmp_path, enable=True):
    write_saelens(tmp_path / "l0", hook="blocks.0.hook_resid_post")
    write_saelens(tmp_path / "l1")
    cfg = Config(model=ModelSection(enable_sae=enable),
                 sae=(SaeEntry(layer=1, path=str(tmp_path / "l1")), SaeEntry(layer=0, path=str(tmp_path / "l0"))),
                 prompt=PromptSection(example_prompt="once upon a time there was a big red cat", max_prompts=4),
                 display=DisplaySection(tokens_to_show=10, cache_size=8), source="<test>")
    return ExplorerApp(Session(wrapper, cfg, seed=0), autosave=False)


async def test_sae_mode_layers_and_feature_selection(tiny_sp_wrapper, tmp_path):
    app = sae_app(tiny_sp_wrapper, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.session.mode = "sae_features"
        app._refresh_mode()
        await settle(app, pilot)
        r = app.mode_result
        assert r is not None, app.mode_error
        first_layer = r.extra["layer"]
        assert r.extra["features"] and r.checks["l0"] >= 1
        await pilot.press("p")
        await settle(app, pilot)
        assert app.mode_result.extra["layer"] != first_layer
        await pilot.press("f")
        await settle(app, pilot)
        chosen = app.mode_params["sae_features"]["feature"]
        assert app.mode_result.extra["feature"] == chosen and app.mode_result.extra["feature_selected"]
        await pilot.press("F")  # back to the cursor token's strongest feature
        await settle(app, pilot)
        assert "feature" not in app.mode_params["sae_features"]


async def test_sae_off_says_so(tiny_sp_wrapper, tmp_path):
    app = sae_app(tiny_sp_wrapper, tmp_path, enable=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.session.mode = "sae_features"
        app._refresh_mode()
        await settle(app, pilot)
        assert app.mode_result is None and app.mode_error
        await pilot.press("f")
        await pilot.pause()
        assert notifications(app)
