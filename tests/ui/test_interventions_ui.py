"""Pilot tests of the interventions in the app (issue 11): adding a steering vector from a file,
the base p / int p / Δp columns checked against an independent computation (plain forward
passes of the HF model, with and without a forward hook of our own), the panel's KL, the status
bar, on/off, the exports and --resume.

The tiny model is shared by the whole test run: every test takes its interventions off again
(Session.set_interventions(())) so no hook stays on it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from textual.widgets import Input

from explorer.ui.app import ExplorerApp
from explorer.ui.widgets.token_table import TokenTable
from tests.ui.helpers import footer_keys, notifications, settle, status_text, text_of

SIZE = (140, 40)
LAYER, ALPHA = 0, 8.0


@pytest.fixture
def vector(tiny_sp_wrapper, tmp_path):
    d = tiny_sp_wrapper.model.config.hidden_size
    v = np.random.default_rng(0).standard_normal(d).astype(np.float32)
    path = tmp_path / "v.npy"
    np.save(path, v)
    return path, torch.from_numpy(v)


@pytest.fixture
def app(tiny_session):
    app = ExplorerApp(tiny_session, autosave=False)
    yield app
    tiny_session.set_interventions(())  # the model is shared: no hook may outlive the test


def reference_probs(model, ids, vec=None) -> torch.Tensor:
    """Next-token probabilities of the HF model, steered by our own hook (h_L += α·v) when vec is given."""
    handle = None
    if vec is not None:
        def hook(_m, _args, out):
            if isinstance(out, tuple):
                return (out[0] + ALPHA * vec,) + tuple(out[1:])
            return out + ALPHA * vec
        handle = model.model.layers[LAYER].register_forward_hook(hook)
    try:
        with torch.no_grad():
            logits = model(torch.tensor([list(ids)])).logits[0, -1].float()
    finally:
        if handle is not None:
            handle.remove()
    return torch.softmax(logits, -1)


def column(table: TokenTable, key: str) -> list[str]:
    keys = [k.value for k in table.columns]
    return [str(table.get_cell_at((r, keys.index(key)))) for r in range(table.row_count)]


async def add_steer(app, pilot, path) -> None:
    await pilot.press("S")
    await pilot.pause()
    app.screen.query_one(Input).value = f"vector={path},layer={LAYER},alpha={ALPHA:g}"
    await pilot.press("enter")
    await settle(app, pilot)


async def test_steering_columns_equal_an_independent_computation(app, vector):
    path, vec = vector
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(TokenTable)
        assert "base_p" not in [k.value for k in table.columns]
        ids = tuple(app.session.current.ids)
        model = app.session.wrapper.model
        base, steered = reference_probs(model, ids), reference_probs(model, ids, vec)

        await add_steer(app, pilot, path)
        assert "interventions on (1)" in status_text(app)
        assert [k.value for k in table.columns][-3:] == ["base_p", "int_p", "delta_p"]
        row_ids = [row.id for row in app.table_rows]
        for key, expected in (("base_p", base), ("int_p", steered), ("delta_p", steered - base)):
            shown = [float(c) for c in column(table, key)]
            want = [float(expected[i]) for i in row_ids]
            assert shown == pytest.approx(want, abs=1.5e-4), key
        # the table ranks by the intervened model, and its prob column is the intervened p
        assert [float(c) for c in column(table, "prob")] == pytest.approx([float(steered[i]) for i in row_ids],
                                                                          abs=1.5e-4)
        kl = float((steered * (steered.log() - base.log())).sum())
        panel = text_of(app, "#interventions-panel")
        assert "steer L0 α=8" in panel
        shown_kl = float(panel.split("KL(intervened ‖ baseline) = ")[1].split()[0])
        assert shown_kl == pytest.approx(kl, abs=1.5e-4)
        assert kl > 1e-3  # the steering did change something

        # the panel has the keys: space switches it off, the columns and the status go
        assert {"space", "minus", "equals_sign", "x"} <= footer_keys(app)
        await pilot.press("space")
        await settle(app, pilot)
        assert "base_p" not in [k.value for k in table.columns]
        assert "interventions on" not in status_text(app)
        assert "[off] steer" in text_of(app, "#interventions-panel")
        assert [float(c) for c in column(table, "prob")] == pytest.approx(
            [float(base[row.id]) for row in app.table_rows], abs=1.5e-4)
        # = makes it stronger once it is on again
        await pilot.press("space", "equals_sign")
        await settle(app, pilot)
        assert "α=8.5" in text_of(app, "#interventions-panel")
        # I hides the panel and gives - = back to the lab
        await pilot.press("I")
        await settle(app, pilot)
        assert not app.query_one("#interventions-panel").display
        assert "interventions on (1)" in status_text(app)


async def test_bad_input_is_a_notification_and_changes_nothing(app, tmp_path):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("S")
        await pilot.pause()
        app.screen.query_one(Input).value = f"vector={tmp_path / 'missing.npy'},layer=0,alpha=2"
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("A")
        await pilot.pause()
        app.screen.query_one(Input).value = "head=9.0"
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("U")  # not in the SAE features mode: nothing to steer along
        await settle(app, pilot)
        shown = notifications(app, "warning") + notifications(app, "error")
        assert any("missing.npy does not exist" in m for m in shown)
        assert any("Layer 9 is out of range" in m for m in shown)
        assert any("SAE features mode" in m for m in shown)
        assert app.session.interventions == ()
        assert "interventions on" not in status_text(app)


async def test_head_ablation_composes_with_steering(app, vector):
    path, _vec = vector
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await add_steer(app, pilot, path)
        await pilot.press("A")
        await pilot.pause()
        app.screen.query_one(Input).value = "head=1.2,how=zero"
        await pilot.press("enter")
        await settle(app, pilot)
        assert "interventions on (2)" in status_text(app)
        panel = text_of(app, "#interventions-panel")
        assert "steer L0" in panel and "zero-ablate head 1.2" in panel
        await pilot.press("j", "x")  # remove the ablation
        await settle(app, pilot)
        assert "interventions on (1)" in status_text(app)
        assert "head 1.2" not in text_of(app, "#interventions-panel")


async def test_exports_and_resume_keep_the_interventions(app, vector, tiny_sp_wrapper, test_config):
    from explorer.engine.session import Session
    from explorer.engine.session_builder import _restore
    from explorer.io.session_store import session_from_json, session_to_json
    from explorer.paths import data_dir, saved_prompts_dir

    path, _vec = vector
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await add_steer(app, pilot, path)
        await pilot.press("l")  # the panel does not take l: the token is appended
        await settle(app, pilot)
        await pilot.press("X")
        await settle(app, pilot)
        record = json.loads((data_dir() / "logprobs.jsonl").read_text().splitlines()[-1])
        assert record["interventions"][0]["kind"] == "steer"
        assert record["interventions"][0]["strength"] == ALPHA
        await pilot.press("I", "x")  # panel hidden: x saves the prompt again
        await settle(app, pilot)
        saved = json.loads(next(saved_prompts_dir().glob("*.json")).read_text())
        assert saved["interventions"][0]["layer"] == LAYER
        await pilot.press("T")
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
        tree = json.loads(next((data_dir() / "trees").glob("*.json")).read_text())
        assert len(tree["interventions"][0]["vector"]) == tiny_sp_wrapper.model.config.hidden_size
        await pilot.press("escape")
        await settle(app, pilot)
        table = app.query_one(TokenTable)
        before = {k: column(table, k) for k in ("prob", "base_p", "int_p", "delta_p")}
        text = session_to_json(app.session, app._view_state())
    app.session.set_interventions(())  # the first session's hook must not steer the second

    resumed = _restore(Session(tiny_sp_wrapper, test_config, prompts=[[0]], seed=0), session_from_json(text))
    again = ExplorerApp(resumed, autosave=False)
    try:
        async with again.run_test(size=SIZE) as pilot:
            await settle(again, pilot)
            assert "interventions on (1)" in status_text(again)
            table = again.query_one(TokenTable)
            assert {k: column(table, k) for k in before} == before
    finally:
        resumed.set_interventions(())


async def test_effect_mode_colours_by_the_kl_the_panel_shows(app, vector):
    from tests.ui.helpers import panel_text, press_e_until

    path, _vec = vector
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await add_steer(app, pilot, path)
        await pilot.press("I")  # hide the panel so e and the table keys reach the app as usual
        await settle(app, pilot)
        await press_e_until(app, pilot, "Intervention effect")
        assert "KL(intervened ‖ baseline)" in panel_text(app)
        assert app.mode_result.extra["kl_next"] == pytest.approx(app.view.effect.kl_next)
        assert app.mode_result.values[-1] == pytest.approx(app.view.effect.kl_next)


async def test_steer_and_clamp_the_feature_chosen_in_the_sae_mode(tiny_sp_wrapper, tmp_path, monkeypatch):
    from tests.ui.test_sae_ui import sae_app

    monkeypatch.setattr("explorer.engine.sae.catalog.feature_cache_dir", lambda: tmp_path / "cache" / "sae_features")
    app = sae_app(tiny_sp_wrapper, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.session.mode = "sae_features"
            app._refresh_mode()
            await settle(app, pilot)
            await pilot.press("f")
            await settle(app, pilot)
            layer, feature = app.mode_result.extra["layer"], app.mode_result.extra["feature"]
            for key, value in (("U", "alpha=4"), ("C", "value=0")):
                await pilot.press(key)
                await pilot.pause()
                app.screen.query_one(Input).value = value
                await pilot.press("enter")
                await settle(app, pilot)
            panel = text_of(app, "#interventions-panel")
            assert f"steer L{layer} α=4 (sae:" in panel and f"#{feature})" in panel
            assert f"clamp L{layer} feature {feature} = 0" in panel
            assert "interventions on (2)" in status_text(app)
            assert "base_p" in [k.value for k in app.query_one(TokenTable).columns]
    finally:
        app.session.set_interventions(())
