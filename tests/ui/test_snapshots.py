"""A few SVG snapshots of the layout (review the HTML report before --snapshot-update)."""

from __future__ import annotations

from explorer.ui.app import ExplorerApp
from tests.ui.helpers import settle

SIZE = (120, 36)


async def _settle(pilot):
    await settle(pilot.app, pilot)


def test_start_screen(snap_compare, tiny_session):
    assert snap_compare(ExplorerApp(tiny_session, autosave=False), run_before=_settle, terminal_size=SIZE)


def test_entropy_mode_with_cursor(snap_compare, tiny_session):
    async def run_before(pilot):
        await _settle(pilot)
        await pilot.press("l")
        await _settle(pilot)
        await pilot.press("e", "e", "ctrl+k", "ctrl+k", "z")
        await _settle(pilot)

    assert snap_compare(ExplorerApp(tiny_session, autosave=False), run_before=run_before, terminal_size=SIZE)


def test_help_screen(snap_compare, tiny_session):
    async def run_before(pilot):
        await _settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(ExplorerApp(tiny_session, autosave=False), run_before=run_before, terminal_size=SIZE)
