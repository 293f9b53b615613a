"""Background work: abandoned work is stopped, a result for an old state is dropped, Esc stops
what runs, the status bar says what runs (issue 13 §1, issue 14 §10)."""

from __future__ import annotations

import asyncio

from explorer.analyses import analysis_names
from explorer.config import Config, DisplaySection, PromptSection
from explorer.engine.session import Session
from explorer.ui.app import ExplorerApp
from tests.ui.helpers import footer_keys, notifications, panel_text, press_e_until, settle, status_text

SIZE = (140, 50)


def long_session(wrapper, n_tokens: int = 40) -> Session:
    config = Config(prompt=PromptSection(example_prompt="once upon a time", max_prompts=4),
                    display=DisplaySection(tokens_to_show=10, cache_size=8), source="<test>")
    base = wrapper.tokenizer("once upon a time there was a little dog and a cat")["input_ids"]
    ids = (base * (n_tokens // len(base) + 1))[:n_tokens]
    return Session(wrapper, config, prompts=[ids], seed=0)


def count_forwards(model, monkeypatch) -> list[int]:
    """Counts the model's forward calls (a one-element list, incremented in place)."""
    calls = [0]
    real = model.forward

    def counted(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counted)
    return calls


async def test_append_lands_soon_after_running_through_every_mode(tiny_sp_wrapper, monkeypatch):
    session = long_session(tiny_sp_wrapper)
    app = ExplorerApp(session, autosave=False, layer_prob=True)
    calls = count_forwards(tiny_sp_wrapper.model, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        landed: list[int] = []
        app.extensions.step_listeners.append(lambda: landed.append(calls[0]))
        await pilot.press(*(["e"] * len(analysis_names())))  # every mode, without waiting for any
        before = calls[0]
        await pilot.press("l")
        for _ in range(400):
            if landed:
                break
            await asyncio.sleep(0.05)
        assert landed, "the append never landed"
        # The step is one or two forward passes; a stale mode job may finish the batch it is in.
        assert landed[0] - before <= 8, f"{landed[0] - before} forward passes before the append landed"
        assert len(app.session.current.ids) == 41
        await settle(app, pilot)
        assert not notifications(app, "error")


async def test_moving_the_cursor_while_a_step_computes_is_no_error(tiny_session):
    """Issue 14 §10: the cursor moved past the old view while the step computed -> IndexError."""
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press_e_until(app, pilot, "Local bias")
        n = len(app.session.current.ids)
        lock = app.session.wrapper.lock
        lock.acquire()  # the step cannot compute until we let it
        try:
            await pilot.press("l")
            await pilot.press("end", "ctrl+k", "ctrl+j")
            await pilot.pause()
        finally:
            lock.release()
        await settle(app, pilot)
        assert not notifications(app, "error")
        assert len(app.session.current.ids) == n + 1
        assert f"Token {n + 1}/{n + 1}" in panel_text(app)  # the panel belongs to the new prompt


async def test_escape_stops_a_mode_computation_and_the_footer_shows_stop_only_then(tiny_session, monkeypatch):
    import explorer.analyses.attribution as attribution

    started = []

    def slow_ig(*args, should_stop=None, **kwargs):
        import time

        from explorer.engine.cancel import check

        started.append(True)
        while True:  # a long computation that polls its stop check, as integrated gradients does
            check(should_stop)
            time.sleep(0.01)

    monkeypatch.setattr(attribution, "integrated_gradients", slow_ig)
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "escape" not in footer_keys(app)
        for _ in range(20):
            if "Mode: Gradient attribution" in status_text(app):
                break
            await pilot.press("e")
            for _ in range(100):  # the cheap modes finish; attribution runs until stopped
                if started or not app.jobs.running:
                    break
                await asyncio.sleep(0.02)
        for _ in range(100):
            if started:
                break
            await asyncio.sleep(0.02)
        await pilot.pause()
        assert "computing Gradient attribution" in status_text(app)
        assert "escape" in footer_keys(app)
        await pilot.press("escape")
        await settle(app, pilot)
        assert "Stopped (Esc)" in panel_text(app)
        assert "computing" not in status_text(app)
        assert "escape" not in footer_keys(app)
        await pilot.press("escape")
        await pilot.pause()
        assert any("Nothing to stop" in m for m in notifications(app))
