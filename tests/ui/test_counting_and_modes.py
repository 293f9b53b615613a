"""Issue 13 §4–§5 on screen: one 1-based way to count tokens, a direct way to a mode, `p` back
to where the user was, "busy: key ignored", "1 token"."""

from __future__ import annotations

from explorer.ui.app import ExplorerApp
from explorer.ui.screens.mode_picker import ModePicker
from tests.ui.helpers import panel_text, press_e_until, settle, status_text

SIZE = (140, 50)


def make(tiny_session, **kw):
    return ExplorerApp(tiny_session, autosave=False, **kw)


async def test_guiding_tokens_count_from_one_and_say_their_name_once(tiny_session):
    app = make(tiny_session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press_e_until(app, pilot, "Guiding tokens")
        n = len(app.session.current.ids)
        text = panel_text(app)
        assert "Guiding tokens: Guiding tokens" not in text
        assert f"Token {n}/{n}" in text and f"from token {n} " in text  # the same token, the same number
        # the ranked list is 1-based too: positions 1..n, never #0
        assert "#0 " not in text and f"#{n} " in text


async def test_status_bar_says_1_token(tiny_session):
    app = make(tiny_session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        while len(app.session.current.ids) > 1:
            app.session.pop()
        app._request_step()
        await settle(app, pilot)
        assert "│ 1 token │" in status_text(app)


async def test_E_picks_a_mode_directly_and_the_palette_lists_each_mode(tiny_session):
    app = make(tiny_session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("E")
        await settle(app, pilot)
        assert isinstance(app.screen, ModePicker)
        await pilot.press("down", "down", "enter")  # plain → the 3rd mode of the e cycle
        await settle(app, pilot)
        third = app._cycle_modes()[2]
        from explorer.analyses import get_analysis

        assert f"Mode: {get_analysis(third).label}" in status_text(app)
        from explorer.ui.commands import ExplorerCommands

        entries = [text for text, _ in ExplorerCommands(app.screen)._items()]
        assert "Mode: Guiding tokens" in entries
        await app.run_action("set_mode('entropy')")
        await settle(app, pilot)
        assert "Mode: Entropy" in status_text(app)


async def test_p_out_of_the_layer_views_returns_to_the_mode_the_user_came_from(tiny_session):
    app = make(tiny_session, layer_prob=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press_e_until(app, pilot, "Entropy")
        for _ in range(2):
            await pilot.press("p")
            await settle(app, pilot)
        assert app.session.mode == "layer_correlation"
        await pilot.press("p")
        await settle(app, pilot)
        assert "Mode: Entropy" in status_text(app)


async def test_l_while_a_step_computes_says_busy_in_the_status_bar(tiny_session):
    app = make(tiny_session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app._pending = app.session.snapshot()  # as while a step is being computed
        await pilot.press("l")
        assert "busy: key ignored" in status_text(app)
        app._pending = None
        app._request_step()
        await settle(app, pilot)
        assert "busy: key ignored" not in status_text(app)
