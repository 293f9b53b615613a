"""The app saves cursor moves and the layer view at once, and says at once when saving fails."""

from __future__ import annotations

from explorer.io.session_store import load_saved_session
from explorer.paths import sessions_dir
from explorer.ui.app import ExplorerApp

SIZE = (120, 40)


async def _settle(app, pilot):
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def test_cursor_and_layer_view_are_saved_without_another_change(tiny_session):
    app = ExplorerApp(tiny_session, autosave=True, layer_prob=True)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        assert not sessions_dir().exists()  # the session as opened adds no file
        await pilot.press("home")
        await pilot.press("p")
        await _settle(app, pilot)
        app._autosaver.flush()  # what a kill -9 now would leave on disk
        saved = load_saved_session()
    assert saved.prompts[saved.index].cursor == 0
    assert saved.mode == "layer_prob"


async def test_saving_failure_is_notified_at_once_and_named_on_quit(tiny_session, tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "blocked"
    blocked.write_text("x")  # a file where the data folder should be: every write fails
    monkeypatch.setenv("TOKEN_EXPLORER_DATA_DIR", str(blocked))
    app = ExplorerApp(tiny_session, autosave=True)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("home")
        await _settle(app, pilot)
        app._autosaver.flush()
        await _settle(app, pilot)
        assert any(n.title == "Saving failed" and str(blocked) in n.message for n in app._notifications)
        await app.action_quit()
    assert app.return_code == 1
    err = capsys.readouterr().err  # Textual prints the exit message when the screen closes
    assert "Not saved: The session could not be saved" in err


async def test_mode_options_are_saved_and_restored(tiny_session):
    app = ExplorerApp(tiny_session, autosave=True)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        app.mode_params.setdefault("sae_features", {})["layer"] = 1  # what p does in the SAE mode
        app._autosave()
        app._autosaver.flush()
    saved = load_saved_session()
    assert saved.view["mode_params"]["sae_features"] == {"layer": 1}
    tiny_session.saved_view = saved.view  # what build_session sets on --resume
    again = ExplorerApp(tiny_session, autosave=False)
    async with again.run_test(size=SIZE) as pilot:
        await _settle(again, pilot)
        assert again.mode_params["sae_features"] == {"layer": 1}
