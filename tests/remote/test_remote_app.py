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
