"""Regex-constrained stepping with llguidance: masks at the right places, completion, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.engine.decoding.constraint import compile_regex, read_regex_file
from explorer.engine.decoding.generate import generate_tokens
from explorer.engine.decoding.pipeline import DecodingSettings, SeededSampler, process_logits
from explorer.engine.trace import Trace
from explorer.errors import InputError

DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
ROOT = Path(__file__).resolve().parents[2]
DIGITS = [str(d) for d in range(10)]


def names(tok, ids):
    return sorted(tok.convert_ids_to_tokens(list(ids)))


def test_date_regex_allows_digits_and_dashes_at_the_right_places(tiny_wrapper, tiny_tokenizer):
    compiled = compile_regex(tiny_wrapper, DATE)
    tracker = compiled.new_tracker()
    text = "2 0 2 4 - 0 5 - 1 7".split()
    ids = tiny_tokenizer.convert_tokens_to_ids(text)
    for k in range(len(ids)):
        state = tracker.step(ids[:k])
        expected = ["-"] if k in (4, 7) else DIGITS
        assert names(tiny_tokenizer, state.allowed_ids()) == sorted(expected), k
        assert not state.accepting and not state.finished
    done = tracker.step(ids)
    assert done.accepting and done.finished  # the constraint is released
    assert done.allowed_ids() == [tiny_tokenizer.eos_token_id]


def test_pop_rolls_back_and_bad_token_is_one_sentence(tiny_wrapper, tiny_tokenizer):
    tracker = compile_regex(tiny_wrapper, DATE).new_tracker()
    ids = tiny_tokenizer.convert_tokens_to_ids("1 9 9 9 -".split())
    assert names(tiny_tokenizer, tracker.step(ids).allowed_ids()) == sorted(DIGITS)
    assert names(tiny_tokenizer, tracker.step(ids[:4]).allowed_ids()) == ["-"]  # popped the dash
    bad = tracker.step(ids[:2] + [tiny_tokenizer.convert_tokens_to_ids("cat")])
    assert bad.allowed is None and "does not fit" in bad.error and bad.error.count(".") <= 2
    assert names(tiny_tokenizer, tracker.step(ids[:2]).allowed_ids()) == sorted(DIGITS)  # recovers


@pytest.mark.parametrize("regex, words", [("(", "not valid: unclosed group"), ("[z-a]", "not valid"),
                                          ("Z+", "No token of this model can start"), ("", "empty"),
                                          ("   ", "empty")])
def test_bad_regexes_are_one_clear_sentence(regex, words, tiny_wrapper):
    with pytest.raises(InputError) as err:
        compile_regex(tiny_wrapper, regex)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_constraint_in_the_pipeline(tiny_wrapper, tiny_tokenizer):
    ids = tiny_tokenizer("<bos> once upon a time", add_special_tokens=False)["input_ids"]
    trace = Trace(tiny_wrapper)
    trace.extend(ids)
    allowed = compile_regex(tiny_wrapper, DATE).new_tracker().step([]).allowed_ids()
    step = process_logits(trace.last_row(), trace.ids, DecodingSettings(), allowed_ids=allowed)
    digits = set(tiny_tokenizer.convert_tokens_to_ids(DIGITS))
    assert {i for i in range(step.probs.shape[-1]) if step.probs[i] > 0} == digits
    assert all(step.removed_by(i) == "regex" for i in range(step.probs.shape[-1]) if i not in digits)
    assert float(step.probs.sum()) == pytest.approx(1.0, abs=1e-5)


def test_generation_under_the_date_regex(tiny_wrapper, tiny_tokenizer):
    ids = tiny_tokenizer("<bos> once upon a time", add_special_tokens=False)["input_ids"]
    tracker = compile_regex(tiny_wrapper, DATE).new_tracker()
    r = generate_tokens(tiny_wrapper, ids, DecodingSettings(temperature=1.5), 30, SeededSampler(1), constraint=tracker)
    text = "".join(tiny_tokenizer.convert_ids_to_tokens(r.new_ids))
    import re

    assert re.fullmatch(DATE, text), text
    assert r.stopped == "constraint"


@pytest.mark.integration
def test_prompts_date_regex_file_on_the_bundled_model(bundled_wrapper):
    regex = read_regex_file(ROOT / "prompts" / "date.regex")
    assert regex == DATE
    tracker = compile_regex(bundled_wrapper, regex).new_tracker()
    first = tracker.step([])
    texts = {bundled_wrapper.decode([i]) for i in first.allowed_ids()}
    assert texts and all(t and t[0] in "0123456789" for t in texts)
    ids = bundled_wrapper.tokenizer("2024-05-17", add_special_tokens=False)["input_ids"]
    assert tracker.step(ids[:4]).allowed_ids() and {bundled_wrapper.decode([i])[0]
                                                    for i in tracker.step(ids[:4]).allowed_ids()} == {"-"}
    assert tracker.step(ids).finished


def test_regex_file_errors(tmp_path):
    with pytest.raises(InputError, match="No regex file"):
        read_regex_file(tmp_path / "missing.regex")
    empty = tmp_path / "e.regex"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(InputError, match="holds no pattern"):
        read_regex_file(empty)
