""""Add a mode in one file and one registry line": a mode defined here, registered with one call,
shows up in the app's e cycle, in its panel (with its declared option key) and in `analyze`."""

from __future__ import annotations

import json

import pytest

from explorer.analyses import ModeResult, ParamSpec, register, unregister
from explorer.ui.app import ExplorerApp
from tests.ui.helpers import notifications, panel_text, press_e_until, settle


class TokenLengthMode:
    """Characters per token, times a scale the m key cycles; its legend names a config value."""

    name = "token_length"
    label = "Token length"
    lazy = False
    requires = frozenset()
    params = (ParamSpec("scale", "multiply the lengths", ("1", "3"), "1", keys=("m",)),)

    def compute(self, ctx) -> ModeResult:
        k = int(ctx.params.get("scale", "1"))
        values = tuple(float(len(ctx.wrapper.token_text(t).text) * k) for t in ctx.view.ids)
        shown = ctx.config.display.tokens_to_show if ctx.config is not None else "no config"
        return ModeResult(values=values, lo=0.0, hi=max(max(values), 1.0),
                          legend=f"Characters per token x{k} (table shows {shown} rows).")


class NeedsRemoteOnlyMode(TokenLengthMode):
    name = "needs_interventions_test"
    label = "Needs a missing capability"
    requires = frozenset({"interventions"})


@pytest.fixture
def token_length_mode():
    register(TokenLengthMode())
    yield
    unregister("token_length")


async def test_registered_mode_is_in_e_and_the_panel(tiny_session, token_length_mode):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(app, pilot)
        await press_e_until(app, pilot, "Token length")
        assert "Characters per token x1 (table shows 10 rows)" in panel_text(app)
        await pilot.press("m")  # the key the mode declared for its option
        await settle(app, pilot)
        assert "Characters per token x3" in panel_text(app)
        await pilot.press("less_than_sign")  # a key it did not declare: explained, nothing breaks
        await pilot.pause()
        assert any("has no layer option" in m for m in notifications(app))


def test_registered_mode_is_in_analyze(tiny_session, token_length_mode, monkeypatch, capsys):
    import explorer.commands.analyze as analyze
    from explorer.cli import main

    monkeypatch.setattr(analyze, "open_session", lambda args, cfg: type(tiny_session)(tiny_session.wrapper, cfg))
    code = main(["analyze", "--prompt", "once upon a time", "--mode", "token_length", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["mode"] == "token_length"
    assert [t["value"] for t in data["tokens"]] == [float(len(t["text"])) for t in data["tokens"]]
    assert "table shows" in data["extra"]["legend"] and "no config" not in data["extra"]["legend"]


async def test_a_mode_the_engine_cannot_serve_says_what_it_needs(tiny_session, monkeypatch):
    register(NeedsRemoteOnlyMode())
    try:
        monkeypatch.setattr(type(tiny_session.wrapper), "capabilities",
                            frozenset({"full_logits", "hidden_states", "attention", "gradients"}), raising=False)
        app = ExplorerApp(tiny_session, autosave=False)
        async with app.run_test(size=(140, 50)) as pilot:
            await settle(app, pilot)
            await press_e_until(app, pilot, "Needs a missing capability")
            assert "Not available from this engine: needs interventions." in panel_text(app)
    finally:
        unregister("needs_interventions_test")
