"""Pilot tests: every key of the seed README does what it says, from the first screen."""

from __future__ import annotations

import pytest

from explorer.ui.app import ExplorerApp
from explorer.ui.messages import StepComputed
from explorer.ui.widgets.token_table import TokenTable
from tests.ui.helpers import notifications, settle

SIZE = (120, 40)




@pytest.fixture
def app(tiny_session):
    return ExplorerApp(tiny_session, autosave=False)


async def test_first_screen_shows_the_table(app):
    messages = []
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await settle(app, pilot)
        steps = [m for m in messages if isinstance(m, StepComputed)]
        assert steps, "no step was computed"
        table = app.query_one(TokenTable)
        assert table.row_count == len(steps[-1].view.candidates) == app.session.config.display.tokens_to_show
        assert table.cursor_row == 0


async def test_up_down_and_j_k_agree(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(TokenTable)
        await pilot.press("down", "down", "j")
        assert table.cursor_row == 3
        await pilot.press("k", "up")
        assert table.cursor_row == 1
        await pilot.press("up", "up", "k")
        assert table.cursor_row == 0


@pytest.mark.parametrize("key", ["right", "l"])
async def test_append_selected_token(app, key):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = list(app.session.current.ids)
        await pilot.press("j", "j")
        chosen = app.view.candidates[2].id
        await pilot.press(key)
        await settle(app, pilot)
        assert app.session.current.ids == before + [chosen]
        assert app.view.ids == tuple(before + [chosen])
        assert app.query_one(TokenTable).cursor_row == 0


@pytest.mark.parametrize("key", ["left", "h"])
async def test_remove_last_token(app, key):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = list(app.session.current.ids)
        await pilot.press(key)
        await settle(app, pilot)
        assert app.session.current.ids == before[:-1]
        assert app.view.ids == tuple(before[:-1])


async def test_h_on_a_one_token_prompt_notifies(tiny_sp_wrapper, test_config):
    from explorer.engine.session import Session

    app = ExplorerApp(Session(tiny_sp_wrapper, test_config, prompts=[[4]]), autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("h")
        await pilot.pause()
        assert app.session.current.ids == [4]
        assert any("at least one token" in m for m in notifications(app))


async def test_prompts_add_remove_switch(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("d")
        await settle(app, pilot)
        assert app.session.count == 2 and app.session.index == 1
        await pilot.press("l")
        await settle(app, pilot)
        second = list(app.session.current.ids)
        await pilot.press("w")
        await settle(app, pilot)
        assert app.session.index == 0 and app.view.ids != tuple(second)
        await pilot.press("s")
        await settle(app, pilot)
        assert app.session.index == 1 and app.view.ids == tuple(second)
        await pilot.press("a")  # a asks first
        await settle(app, pilot)
        assert app.session.count == 2 and any("Press a again" in m for m in notifications(app))
        await pilot.press("a")
        await settle(app, pilot)
        assert app.session.count == 1
        await pilot.press("a")  # the last one stays
        await pilot.pause()
        assert app.session.count == 1
        assert any("only prompt" in m for m in notifications(app))


async def test_d_past_max_prompts_notifies(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        limit = app.session.config.prompt.max_prompts
        for _ in range(limit + 1):
            await pilot.press("d")
            await settle(app, pilot)
        assert app.session.count == limit
        assert any("max_prompts" in m for m in notifications(app))


async def test_mode_cycle_and_zscores_and_cursor_toggle(app):
    from explorer.analyses import analysis_names

    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        seen = [app.session.mode]
        for _ in range(len(analysis_names())):
            await pilot.press("e")
            await settle(app, pilot)
            seen.append(app.session.mode)
        assert {"plain", "probability", "entropy", "energy"} <= set(seen)
        assert app.mode_result is not None or app.mode_error is not None
        table = app.query_one(TokenTable)
        cols = len(table.columns)
        await pilot.press("z")
        assert len(table.columns) == cols + 1 and app.session.show_zscores
        await pilot.press("z")
        assert len(table.columns) == cols
        await pilot.press("c")
        assert not app.session.cursor_visible
        await pilot.press("c")
        assert app.session.cursor_visible


async def test_cursor_keys(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        n = len(app.session.current.ids)
        assert app.session.cursor_index() == n - 1
        await pilot.press("ctrl+k")
        assert app.session.cursor_index() == n - 2
        await pilot.press("ctrl+j")
        assert app.session.cursor_index() == n - 1
        await pilot.press("home")
        assert app.session.cursor_index() == 0
        await pilot.press("ctrl+w")
        assert app.session.cursor_index() == 1
        await pilot.press("end")
        assert app.session.cursor_index() == n - 1
        await pilot.press("ctrl+0")
        assert app.session.cursor_index() == 0
        await pilot.press("ctrl+dollar_sign")
        assert app.session.cursor_index() == n - 1
        await pilot.press("ctrl+b")
        assert app.session.cursor_index() == n - 2


async def test_reset_and_save(app, tmp_path):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        original = list(app.session.current.ids)
        await pilot.press("l")
        await settle(app, pilot)
        await pilot.press("l")
        await settle(app, pilot)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert app.session.current.ids == original
        await pilot.press("x")
        await pilot.pause()
        saved = list((tmp_path / "data" / "prompts").glob("*.json"))
        assert len(saved) == 1
        assert any("Saved to" in m for m in notifications(app))


async def test_save_failure_notifies(app, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the data directory should be")
    monkeypatch.setenv("TOKEN_EXPLORER_DATA_DIR", str(blocker / "sub"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("x")
        await pilot.pause()
        assert any("Cannot write" in m for m in notifications(app))
    assert blocker.read_text().startswith("a file")


async def test_help_screen_and_quit(app):
    from explorer.ui.screens.help import HelpScreen

    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


async def test_p_without_layer_prob_explains(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await pilot.pause()
        assert notifications(app), "p did nothing visible"


async def test_markup_and_escapes_in_prompt_are_text(tiny_sp_wrapper, test_config):
    from explorer.engine.session import Session
    from explorer.ui.widgets.prompt_view import PromptView

    ids = tiny_sp_wrapper.encode("the [/b] cat [bold] \\x1b")
    app = ExplorerApp(Session(tiny_sp_wrapper, test_config, prompts=[ids]), autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = app.query_one(PromptView).query_one("#prompt-text").render()
        assert "[/b]" in str(text) and "[bold]" in str(text)


async def test_autosave_and_resume(tiny_session, tmp_path):
    from explorer.io.session_store import load_saved_session

    app = ExplorerApp(tiny_session, autosave=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("l")
        await settle(app, pilot)
        await pilot.press("d", "l")
        await settle(app, pilot)
        expected = [list(e.ids) for e in app.session.prompts]
        app._autosaver.flush()
    saved = load_saved_session()  # the newest file of the session history
    assert [p.ids for p in saved.prompts] == expected


async def test_engine_error_becomes_notification(app, monkeypatch):
    from explorer.errors import InputError

    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)

        def boom(snapshot=None):
            raise InputError("the model refused")

        monkeypatch.setattr(app.session, "compute", boom)
        await pilot.press("h")
        await settle(app, pilot)
        assert any("the model refused" in m for m in notifications(app))
