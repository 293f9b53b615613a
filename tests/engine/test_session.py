"""Session bookkeeping: prompts, limits, cursor moves, traces reused, context limits."""

from __future__ import annotations

import pytest

from explorer.engine.session import Session
from explorer.errors import InputError


def test_append_pop_and_compute(tiny_session):
    s = tiny_session
    view = s.compute()
    n = len(view.ids)
    s.append(view.candidates[0].id)
    view2 = s.compute()
    assert view2.ids == view.ids + (view.candidates[0].id,)
    assert view2.tokens[-1].prob == pytest.approx(view.candidates[0].prob, rel=1e-5)
    s.pop()
    assert s.compute().ids == view.ids and len(view.ids) == n


def test_pop_refuses_last_token(tiny_wrapper, test_config):
    s = Session(tiny_wrapper, test_config, prompts=[[4]])
    with pytest.raises(InputError, match="at least one token"):
        s.pop()


def test_prompt_limits(tiny_session):
    s = tiny_session
    with pytest.raises(InputError, match="only prompt"):
        s.remove_prompt()
    for _ in range(s.config.prompt.max_prompts - 1):
        s.add_prompt()
    with pytest.raises(InputError, match="max_prompts"):
        s.add_prompt()
    assert s.count == s.config.prompt.max_prompts and s.index == s.count - 1
    s.next_prompt()
    assert s.index == 0
    s.prev_prompt()
    assert s.index == s.count - 1
    s.remove_prompt()
    assert s.count == s.config.prompt.max_prompts - 1


def test_duplicate_reuses_the_trace(tiny_session):
    s = tiny_session
    s.compute()
    calls_before = s.cached_trace(s.current.uid).forward_calls
    s.add_prompt()
    s.compute()
    assert s.cached_trace(s.current.uid).forward_calls == 0  # a clone, no forward pass
    assert calls_before >= 1


def test_switching_back_does_not_recompute(tiny_session):
    s = tiny_session
    s.compute()
    first = s.current.uid
    s.add_prompt()
    s.append(9)
    s.compute()
    s.prev_prompt()
    trace = s.cached_trace(first)
    calls = trace.forward_calls
    s.compute()
    assert trace.forward_calls == calls


def test_reset_restores_original(tiny_session):
    s = tiny_session
    original = list(s.current.ids)
    s.append(9)
    s.append(10)
    s.reset()
    assert s.current.ids == original


def test_cursor_moves(tiny_sp_wrapper, test_config):
    s = Session(tiny_sp_wrapper, test_config, prompts=[tiny_sp_wrapper.encode("the cat sat on the mat")])
    n = len(s.current.ids)
    assert s.cursor_index() == n - 1
    s.cursor_start()
    assert s.cursor_index() == 0
    s.cursor_next()
    assert s.cursor_index() == 1
    s.cursor_prev()
    s.cursor_prev()
    assert s.cursor_index() == 0
    s.cursor_end()
    assert s.cursor_index() == n - 1 and s.current.cursor is None
    s.cursor_next()
    assert s.cursor_index() == n - 1
    s.cursor_start()
    s.cursor_next_word()
    assert s.cursor_index() == 1
    s.cursor_prev_word()
    assert s.cursor_index() == 0


def test_long_prompt_is_cut_to_the_context_with_a_note(tiny_wrapper, test_config):
    s = Session(tiny_wrapper, test_config)
    ids = s.ids_from_text("the cat " * 100)
    assert len(ids) == tiny_wrapper.context_length - 1
    assert any("dropped" in n for n in s.notes)


def test_empty_prompt_refused(tiny_session):
    with pytest.raises(InputError, match="empty"):
        tiny_session.ids_from_text("   ")


def test_append_refuses_out_of_vocab(tiny_session):
    with pytest.raises(InputError, match="outside the vocabulary"):
        tiny_session.append(10**9)
