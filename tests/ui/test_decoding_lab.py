"""Pilot tests of the decoding lab: the lab table equals decoding.lab_view, keys change settings,
bans and biases, seeded sampling, generation, the regex constraint and the beam screen."""

from __future__ import annotations

import pytest

from explorer.engine.decoding_settings import DecodingSettings
from explorer.ui.app import ExplorerApp
from explorer.ui.features.decoding_lab import GENERATE_N, LAB_COLUMNS
from explorer.ui.widgets.token_table import TokenTable

SIZE = (120, 40)


async def settle(app, pilot):
    """Wait for workers and the messages they post (a result can start another worker)."""
    for _ in range(4):
        await app.workers.wait_for_complete()
        await pilot.pause()


@pytest.fixture
def app(tiny_session):
    return ExplorerApp(tiny_session, autosave=False)


def expected_view(app, settings, allowed=None, order="raw"):
    from explorer.engine import decoding

    s = app.session
    trace = s.trace_for(*s.snapshot())
    return decoding.lab_view(s.wrapper, trace, settings, s.config.display.tokens_to_show,
                             allowed_ids=allowed, order=order)


def column(table: TokenTable, key: str) -> list[str]:
    return [str(table.get_cell_at((r, [k.value for k in table.columns].index(key)))) for r in range(table.row_count)]


def messages_of(app) -> list[str]:
    return [n.message for n in app._notifications]


async def open_lab(app, pilot):
    await settle(app, pilot)
    await pilot.press("D")
    await settle(app, pilot)
    assert app.lab_on


async def test_lab_toggle_adds_raw_and_processed_columns(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(TokenTable)
        plain = [k.value for k in table.columns]
        assert "raw" not in plain
        await open_lab(app, pilot)
        assert [k.value for k in table.columns] == [k for _, k in LAB_COLUMNS]
        view = app._lab_result.view
        assert column(table, "lab") == [f"{r.processed_prob:.4f}" for r in view.rows]
        # neutral settings: processed = raw
        assert all(abs(r.processed_prob - r.raw_prob) < 1e-6 for r in view.rows)
        assert app.query_one("#lab-panel").display
        await pilot.press("D")
        await settle(app, pilot)
        assert [k.value for k in table.columns] == plain
        assert not app.query_one("#lab-panel").display
