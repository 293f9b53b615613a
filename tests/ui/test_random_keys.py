"""Thousands of random keys from the key map, across all modes, on the tiny model: never an error."""

from __future__ import annotations

import random

from explorer.ui.app import ExplorerApp
from explorer.ui.keymap import KEYMAP
from tests.ui.helpers import notifications

N_KEYS = 2000


def key_pool() -> list[str]:
    keys = []
    for spec in KEYMAP:
        if spec.action in ("quit",):
            continue
        keys.extend(spec.keys.split(","))
    return keys + ["escape", "tab", "enter"]


async def test_random_keys_never_fail(tiny_session, monkeypatch, tmp_path):
    rng = random.Random(1234)
    pool = key_pool()
    app = ExplorerApp(tiny_session, autosave=True)
    errors = []
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        for i in range(N_KEYS):
            await pilot.press(rng.choice(pool))
            if i % 50 == 0:
                await app.workers.wait_for_complete()
                await pilot.pause()
                errors += notifications(app, "error")
        await app.workers.wait_for_complete()
        await pilot.pause()
        errors += notifications(app, "error")
        assert app.is_running
        # the state is still coherent: the view matches the session once idle
        if not app._pending:
            assert app.view.ids == tuple(app.session.current.ids)
    assert not errors, errors[:5]
