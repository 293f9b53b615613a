"""The app on a served model: same screen, the table from the server, stepping with l/h."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.remote]


async def test_the_app_steps_through_a_served_model(remote_engine, test_config):
    from explorer.engine.session import Session
    from explorer.ui.app import ExplorerApp
    from explorer.ui.widgets.token_table import TokenTable

    session = Session(remote_engine, test_config, prompts=[remote_engine.encode("The capital of France is")])
    app = ExplorerApp(session, autosave=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        table = app.query_one(TokenTable)
        assert table.row_count == min(test_config.display.tokens_to_show, remote_engine.top_k)
        n = len(session.current.ids)
        await pilot.press("l")  # append the highlighted (top) token: one request to the server
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert len(session.current.ids) == n + 1
        assert remote_engine.decode(session.current.ids[-1:]) == " Paris"
        await pilot.press("h")
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert len(session.current.ids) == n


async def test_lab_says_what_is_missing_and_generation_runs_on_the_server(remote_engine, test_config):
    """D refuses with the capability it lacks; g generates through the server (same tokens as greedy there)."""
    from explorer.engine.remote.generate import generate_remote
    from explorer.engine.session import Session
    from explorer.ui.app import ExplorerApp

    ids = remote_engine.encode("The capital of France is")
    session = Session(remote_engine, test_config, prompts=[list(ids)])
    app = ExplorerApp(session, autosave=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        await pilot.press("D")
        await pilot.pause()
        assert any("Not available from this engine: needs full logits" in n.message for n in app._notifications)
        assert not app.lab_on
        await pilot.press("g")  # greedy generation, one request per token
        for _ in range(20):
            await app.workers.wait_for_complete()
            await pilot.pause()
            if len(session.current.ids) > len(ids):
                break
        expected = list(ids) + generate_remote(remote_engine, list(ids), len(session.current.ids) - len(ids)).new_ids
        assert len(session.current.ids) > len(ids)
        assert list(session.current.ids) == list(expected)
