"""Pilot tests of the decoding lab: the lab table equals decoding.lab_view, keys change settings,
bans and biases, seeded sampling, generation, the regex constraint and the beam screen."""

from __future__ import annotations

import pytest

from explorer.engine.decoding.settings import DecodingSettings
from explorer.ui.app import ExplorerApp
from explorer.ui.features.decoding_lab import GENERATE_N, LAB_COLUMNS, prob_text
from explorer.ui.widgets.token_table import TokenTable
from tests.ui.helpers import notifications, settle

SIZE = (120, 40)


@pytest.fixture
def app(tiny_session):
    return ExplorerApp(tiny_session, autosave=False)


def expected_view(app, settings, allowed=None, order="raw"):
    from explorer.engine.decoding import pipeline as decoding

    s = app.session
    trace = s.trace_for(*s.snapshot())
    return decoding.lab_view(s.wrapper, trace, settings, s.config.display.tokens_to_show,
                             allowed_ids=allowed, order=order)


def column(table: TokenTable, key: str) -> list[str]:
    return [str(table.get_cell_at((r, [k.value for k in table.columns].index(key)))) for r in range(table.row_count)]


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
        assert column(table, "lab") == lab_column_expected(view)
        # neutral settings: processed = raw
        assert all(abs(r.processed_prob - r.raw_prob) < 1e-6 for r in view.rows)
        assert app.query_one("#lab-panel").display
        await pilot.press("D")
        await settle(app, pilot)
        assert [k.value for k in table.columns] == plain
        assert not app.query_one("#lab-panel").display


def lab_column_expected(view) -> list[str]:
    return ["—" if r.removed_by else prob_text(r.processed_prob) for r in view.rows]


async def test_temperature_and_top_k_rescore_like_lab_view(app):
    async with app.run_test(size=SIZE) as pilot:
        await open_lab(app, pilot)
        table = app.query_one(TokenTable)
        await pilot.press("equals_sign")  # temperature 1 -> 1.25
        await pilot.press("right_square_bracket", "plus", "plus", "equals_sign")  # top-k 0 -> 1 -> 2 -> 3
        await settle(app, pilot)
        settings = DecodingSettings(temperature=1.25, top_k=3)
        assert app.lab_settings == settings
        want = expected_view(app, settings)
        got = app._lab_result.view
        assert [(r.id, r.removed_by) for r in got.rows] == [(r.id, r.removed_by) for r in want.rows]
        assert [r.processed_prob for r in got.rows] == pytest.approx([r.processed_prob for r in want.rows], abs=1e-7)
        assert column(table, "lab") == lab_column_expected(want)
        assert column(table, "cut")[3:] == ["top-k"] * (len(want.rows) - 3)
        assert sum(1 for r in got.rows if r.removed_by is None) == 3 == got.survivors
        # a temperature of 1.25 flattens: the top token's processed share (among all) is below its top-3 renormalised raw one
        panel = str(app.query_one("#lab-text").render())
        assert f"3 of {got.vocab_size} tokens can be chosen" in panel
        # 0 resets the selected setting (top-k)
        await pilot.press("0")
        await settle(app, pilot)
        assert app.lab_settings == DecodingSettings(temperature=1.25)


async def test_out_of_range_values_are_refused_with_the_range(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("minus")  # lab off: explains itself
        await pilot.pause()
        assert any("press D" in m for m in notifications(app))
        await open_lab(app, pilot)
        await pilot.press("right_square_bracket", "minus")  # top-k below 0
        await pilot.pause()
        assert any("top-k must be a whole number of at least 0" in m for m in notifications(app))
        await pilot.press("right_square_bracket", "equals_sign")  # top-p above 1
        await pilot.pause()
        assert any("top-p must be in (0, 1]" in m for m in notifications(app))
        await pilot.press("left_square_bracket", "left_square_bracket")
        for _ in range(25):  # temperature x1.25 until past 100
            await pilot.press("equals_sign")
        await pilot.pause()
        assert any("temperature must be greater than 0 and at most 100" in m for m in notifications(app))
        await settle(app, pilot)
        assert app.lab_settings.top_k == 0 and app.lab_settings.top_p == 1.0
        assert 80 < app.lab_settings.temperature <= 100
        assert not notifications(app, "error")


async def test_ban_removes_the_token_and_unban_restores_it(app):
    async with app.run_test(size=SIZE) as pilot:
        await open_lab(app, pilot)
        table = app.query_one(TokenTable)
        top = app._lab_result.view.rows[0]
        await pilot.press("b")
        await settle(app, pilot)
        assert app.lab_settings.bans == ((top.id,),)
        row = next(r for r in app._lab_result.view.rows if r.id == top.id)
        assert row.removed_by == "ban" and row.processed_prob == 0.0
        assert expected_view(app, app.lab_settings).rows[0].removed_by == "ban"
        assert column(table, "cut")[table.cursor_row] == "ban"  # the cursor stays on the banned token
        panel = str(app.query_one("#lab-text").render())
        assert "Banned:" in panel and str(top.id) in panel
        await pilot.press("b")
        await settle(app, pilot)
        assert app.lab_settings.bans == ()
        assert app._lab_result.view.rows[0].removed_by is None


async def test_boost_moves_the_token_up(app):
    async with app.run_test(size=SIZE) as pilot:
        await open_lab(app, pilot)
        table = app.query_one(TokenTable)
        await pilot.press("r")  # rank rows by processed probability
        await settle(app, pilot)
        for _ in range(5):
            await pilot.press("j")
        target = app._lab_result.view.rows[5]
        before = target.processed_prob
        await pilot.press("B", "B", "B")
        await settle(app, pilot)
        assert dict(app.lab_settings.biases) == {(target.id,): 6.0}
        rows = app._lab_result.view.rows
        after = next(r for r in rows if r.id == target.id)
        assert after.processed_prob > before
        assert after.processed_prob == pytest.approx(
            next(r for r in expected_view(app, app.lab_settings, order="processed").rows if r.id == target.id).processed_prob)
        assert rows[0].id == target.id  # +6 logits puts it first on the tiny model
        assert table.cursor_row == 0  # the cursor followed it
        assert "+6" in str(table.get_cell_at((0, 1)))
        assert "Biased:" in str(app.query_one("#lab-text").render())
        await pilot.press("V", "V", "V")  # back to no bias: the list empties
        await settle(app, pilot)
        assert app.lab_settings.biases == ()


async def test_n_samples_and_the_seed_replays(tiny_sp_wrapper, test_config):
    from explorer.engine.session import Session

    drawn = []
    for _ in range(2):
        app = ExplorerApp(Session(tiny_sp_wrapper, test_config, seed=7), autosave=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            before = list(app.session.current.ids)
            await pilot.press("n")
            await settle(app, pilot)
            await pilot.press("n")
            await settle(app, pilot)
            ids = app.session.current.ids
            assert len(ids) == len(before) + 2 and ids[:len(before)] == before
            assert app.view.ids == tuple(ids)
            assert app._lab_sampler.draws == 2
            drawn.append(ids[len(before):])
    assert drawn[0] == drawn[1]


async def test_n_draws_what_the_engine_draws(app):
    from explorer.engine.decoding.pipeline import SeededSampler, sample_next

    async with app.run_test(size=SIZE) as pilot:
        await open_lab(app, pilot)
        await pilot.press("plus", "plus")  # temperature 1.56
        await settle(app, pilot)
        s = app.session
        want, _ = sample_next(s.wrapper, s.trace_for(*s.snapshot()), app.lab_settings, SeededSampler(s.seed))
        await pilot.press("n")
        await settle(app, pilot)
        assert s.current.ids[-1] == want
        assert "Sampled" in str(app.query_one("#lab-text").render())


async def test_N_appends_what_generate_tokens_makes(app):
    from explorer.engine.decoding.generate import generate_tokens
    from explorer.engine.decoding.pipeline import SeededSampler

    async with app.run_test(size=SIZE) as pilot:
        await open_lab(app, pilot)
        await pilot.press("right_square_bracket", "equals_sign", "equals_sign", "equals_sign", "equals_sign")  # top-k 5
        await settle(app, pilot)
        s = app.session
        prompt = list(s.current.ids)
        want = generate_tokens(s.wrapper, prompt, app.lab_settings, GENERATE_N, SeededSampler(s.seed))
        await pilot.press("N")
        await settle(app, pilot)
        assert 1 <= len(want.new_ids) <= GENERATE_N
        assert s.current.ids == prompt + want.new_ids
        assert app.view.ids == tuple(s.current.ids)
        assert any("Generated" in m for m in notifications(app))


async def test_escape_stops_generation(app, monkeypatch):
    import threading

    from explorer.engine.decoding import generate as decoding

    real = decoding.generate_tokens
    release = threading.Event()

    def held(*args, on_token=None, **kwargs):
        def on_token_then_wait(i, token):
            on_token(i, token)
            release.wait(10)  # hold the worker after its first token until the test has pressed Esc

        return real(*args, on_token=on_token_then_wait, **kwargs)

    monkeypatch.setattr(decoding, "generate_tokens", held)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = list(app.session.current.ids)
        await pilot.press("N")
        await pilot.pause()
        await pilot.press("n")  # one run at a time
        await pilot.press("escape")
        await pilot.pause()
        release.set()
        await settle(app, pilot)
        assert len(app.session.current.ids) == len(prompt) + 1
        msgs = notifications(app)
        assert any("Still generating" in m for m in msgs)
        assert any("stopped by Esc" in m for m in msgs)
        await pilot.press("escape")  # nothing to stop: says so
        await pilot.pause()
        assert any("Nothing to stop" in m for m in notifications(app))


async def test_beam_screen_shows_beam_searchs_winner_and_opens_it(app):
    from textual.widgets import Tree

    from explorer.engine.decoding.beam import beam_search
    from explorer.ui.screens.beam import BeamScreen

    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.session
        prompt = list(s.current.ids)
        want = beam_search(s.wrapper, prompt, num_beams=4, length_penalty=1.0, max_new_tokens=20)
        await pilot.press("o")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, BeamScreen)
        await settle(screen, pilot)
        got = screen.result
        assert got is not None
        assert got.winner.tokens == want.winner.tokens
        assert got.winner.score == pytest.approx(want.winner.score, abs=1e-5)
        assert len(got.steps) == len(want.steps)
        tree = screen.query_one(Tree)
        assert tree.cursor_node.data == got.winner  # the cursor starts on the winner
        assert "Winner" in str(screen.query_one("#beam-header").render())
        assert "score =" in str(screen.query_one("#beam-details").render())
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, BeamScreen)
        assert s.count == 2 and s.index == 1
        assert s.current.ids == want.winner_ids
        assert app.view.ids == tuple(want.winner_ids)


async def test_beam_screen_settings_and_max_prompts(app):
    from explorer.ui.screens.beam import BeamScreen

    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.session
        while s.count < s.config.prompt.max_prompts:
            s.add_prompt()
        await pilot.press("o")
        await settle(app, pilot)
        screen = app.screen
        await settle(screen, pilot)
        await pilot.press("equals_sign")  # 5 beams: searched again
        await settle(screen, pilot)
        assert screen.result.num_beams == 5
        await pilot.press("right_square_bracket", "right_square_bracket", "minus", "minus")  # max new tokens 20 -> 10
        await settle(screen, pilot)
        assert screen.result.max_new_tokens == 10 and len(screen.result.steps) <= 10
        await pilot.press("left_square_bracket", "left_square_bracket")
        for _ in range(20):
            await pilot.press("minus")  # beams 5 -> ... -> 0 is refused with the range
        await pilot.pause()
        assert any("num_beams must be a whole number from 1 to 64" in m for m in notifications(app))
        await pilot.press("enter")  # the session is full: says so and stays
        await pilot.pause()
        assert any("max_prompts" in m for m in notifications(app))
        assert isinstance(app.screen, BeamScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, BeamScreen)
        assert s.count == s.config.prompt.max_prompts


DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
DIGITS = {str(d) for d in range(10)}


@pytest.fixture
def word_app(tiny_wrapper, test_config):
    """The word-level tokenizer (tokens carry no leading space), where a date regex can match."""
    from explorer.engine.session import Session

    ids = tiny_wrapper.tokenizer("<bos> once upon a time", add_special_tokens=False)["input_ids"]
    return ExplorerApp(Session(tiny_wrapper, test_config, prompts=[ids], seed=3), autosave=False)


async def enter_regex(app, pilot, text: str) -> None:
    from textual.widgets import Input

    from explorer.ui.screens.regex_input import RegexInput

    await pilot.press("slash")
    await pilot.pause()
    assert isinstance(app.screen, RegexInput)
    app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await settle(app, pilot)


def table_tokens(app) -> set[str]:
    return {r.text.text for r in app.table_rows}


async def test_date_regex_limits_the_table_and_releases_when_complete(word_app):
    import re

    app = word_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = list(app.session.current.ids)
        await enter_regex(app, pilot, DATE)
        assert app.lab_on and app._constraint is not None
        assert table_tokens(app) == DIGITS  # only tokens that keep a date possible
        assert all(r.removed_by is None for r in app.table_rows)
        assert "regex" in [st.name for st in app._lab_result.view.stages]
        assert "10 tokens allowed" in str(app.query_one("#lab-text").render())
        for _ in range(4):  # four digits by hand, then only the dash fits
            await pilot.press("l")
            await settle(app, pilot)
        assert table_tokens(app) == {"-"}
        await pilot.press("N")  # the rest under the constraint: stops when the match is complete
        await settle(app, pilot)
        text = "".join(app.session.wrapper.tokenizer.convert_ids_to_tokens(app.session.current.ids[len(prompt):]))
        assert re.fullmatch(DATE, text), text
        assert app._constraint is None
        assert any("match complete" in m for m in notifications(app))
        assert not any(r.removed_by == "regex" for r in app.table_rows)


async def test_regex_refuses_a_token_that_breaks_it_and_n_samples_within_it(word_app):
    app = word_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await enter_regex(app, pilot, DATE)
        await pilot.press("n")
        await settle(app, pilot)
        assert app.session.wrapper.token_text(app.session.current.ids[-1]).text in DIGITS
        await pilot.press("D")  # the plain table holds words the regex refuses
        await settle(app, pilot)
        word = next(i for i, c in enumerate(app.view.candidates) if c.text.text not in DIGITS)
        for _ in range(word):
            await pilot.press("j")
        before = list(app.session.current.ids)
        await pilot.press("l")
        await settle(app, pilot)
        assert app.session.current.ids == before
        assert any("does not keep the text a match" in m for m in notifications(app))
        await enter_regex(app, pilot, "")  # an empty line releases it
        assert app._constraint is None
        assert any("released" in m for m in notifications(app))


async def test_regex_file_and_bad_regexes(word_app):
    from pathlib import Path

    app = word_app
    date_file = Path(__file__).resolve().parents[2] / "prompts" / "date.regex"
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await enter_regex(app, pilot, str(date_file))
        assert app._constraint is not None and app._constraint.compiled.regex == DATE
        await enter_regex(app, pilot, "(")
        assert app._constraint is None
        assert any("not valid" in m for m in notifications(app))
        await enter_regex(app, pilot, "Z+")
        assert any("No token of this model can start" in m for m in notifications(app))
        await enter_regex(app, pilot, "missing.regex")
        assert any("No regex file" in m for m in notifications(app))
        assert not notifications(app, "error")
