"""Issue 13 §2: edit the prompt in the app (i), rewind to the cursor (H), branch (y), the list (P)."""

from __future__ import annotations

from explorer.ui.app import ExplorerApp
from explorer.ui.features.prompt_editing import retokenize
from explorer.ui.screens.prompt_screens import PromptEditor, PromptList
from tests.ui.helpers import settle, status_text, text_of

SIZE = (120, 36)


def test_retokenize_keeps_the_ids_before_the_first_change(tiny_wrapper):
    w = tiny_wrapper
    # ids the tokenizer would not produce for this text: appended one by one, as in the app
    ids = w.encode("Once upon a time")
    text = w.decode(ids)
    new = retokenize(w, ids, text + " there")
    assert new[: len(ids)] == ids  # untouched prefix, id for id
    assert w.decode(new) == text + " there"
    assert text.endswith(" time")
    changed = retokenize(w, ids, text[: -len(" time")] + " upon")  # the last word replaced
    assert changed[:-1] == ids[:-1] and w.decode(changed) == text[: -len(" time")] + " upon"


async def test_i_edits_H_rewinds_y_branches_P_lists(tiny_session):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        w = app.session.wrapper
        ids = list(app.session.current.ids)
        # i: the editor holds the prompt; typed text is appended after Ctrl+s
        await pilot.press("i")
        await settle(app, pilot)
        assert isinstance(app.screen, PromptEditor)
        assert app.screen.query_one("TextArea").text == w.decode(ids)
        await pilot.press("end", "ctrl+end")
        await pilot.press(*" cat")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        edited = list(app.session.current.ids)
        assert edited[: len(ids)] == ids and w.decode(edited) == w.decode(ids) + " cat"
        assert f"{len(edited)} tokens" in status_text(app)
        # y: branch at the cursor (token 2) into a new entry; H: rewind the branch to token 1
        await pilot.press("home", "ctrl+j")
        await settle(app, pilot)
        await pilot.press("O")
        await settle(app, pilot)
        assert app.session.count == 2 and app.session.current.ids == edited[:2]
        assert app.session.prompts[0].ids == edited  # the original entry is untouched
        await pilot.press("home", "H")
        await settle(app, pilot)
        assert app.session.current.ids == edited[:1]
        assert "1 token │" in status_text(app)
        # P: the list shows each entry's first words; Enter switches
        await pilot.press("P")
        await settle(app, pilot)
        assert isinstance(app.screen, PromptList)
        shown = str(app.screen.query_one("OptionList").get_option_at_index(0).prompt)
        assert " ".join(w.decode(edited).split())[:20] in shown
        await pilot.press("up", "enter")
        await settle(app, pilot)
        assert app.session.index == 0 and "Prompt 1/2" in status_text(app)
