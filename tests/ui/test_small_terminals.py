"""Issue 13 §4: small terminals keep the prompt visible, panels scroll with the keyboard, the
next-token table fits (long tokens clipped) and widens on wide terminals."""

from __future__ import annotations

import pytest

from explorer.ui.app import ExplorerApp
from explorer.ui.render import MAX_TOKEN_CELL, token_cell
from explorer.ui.widgets.mode_panel import ModePanel
from explorer.ui.widgets.prompt_view import PromptView
from explorer.ui.widgets.token_table import TokenTable
from tests.ui.helpers import press_e_until, settle


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_opening_the_lab_keeps_three_lines_of_prompt(tiny_session, size):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await press_e_until(app, pilot, "Guiding tokens")  # a tall mode panel
        await pilot.press("D")
        await settle(app, pilot)
        assert app.query_one(PromptView).content_region.height >= 3
        assert app.query_one("#lab-panel").region.height >= 3  # and the lab is there too


async def test_J_K_scroll_the_mode_panel_and_pgdn_the_lab(tiny_session):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press_e_until(app, pilot, "Guiding tokens")
        panel = app.query_one(ModePanel)
        assert panel.max_scroll_y > 0, "the test needs a panel taller than its space"
        await pilot.press("J")
        await pilot.pause()
        assert panel.scroll_y > 0
        await pilot.press("K")
        await pilot.pause()
        assert panel.scroll_y == 0
        await pilot.press("D")
        await settle(app, pilot)
        lab = app.query_one("#lab-panel")
        assert lab.max_scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert lab.scroll_y > 0


def test_long_tokens_are_clipped_with_an_ellipsis():
    dashes = "-" * 27
    cell = token_cell(dashes, "normal")
    assert cell.plain == "-" * (MAX_TOKEN_CELL - 1) + "…" and len(cell.plain) == MAX_TOKEN_CELL
    assert token_cell("short", "normal").plain == "short"


async def test_the_table_widens_on_wide_terminals(tiny_session):
    widths = {}
    for size in [(100, 30), (170, 50)]:
        app = ExplorerApp(tiny_session, autosave=False)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            widths[size[0]] = app.query_one(TokenTable).region.width
    assert widths[100] == 52 and widths[170] > 52
