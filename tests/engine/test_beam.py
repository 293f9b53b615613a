"""Beam search agrees with model.generate(num_beams=...) and its step records add up."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.engine.decoding.beam import beam_search
from explorer.engine.model import ModelWrapper
from explorer.engine.trace import Trace
from explorer.errors import InputError

PROMPT = "<bos> once upon a time there was a big dog"


def reference(model, ids, *, num_beams, length_penalty, max_new_tokens, early_stopping, eos):
    x = torch.tensor([ids])
    out = model.generate(x, attention_mask=torch.ones_like(x), num_beams=num_beams, do_sample=False,
                         length_penalty=length_penalty, max_new_tokens=max_new_tokens, early_stopping=early_stopping,
                         output_scores=True, return_dict_in_generate=True, pad_token_id=3, eos_token_id=eos)
    return out.sequences[0].tolist(), float(out.sequences_scores[0])


CASES = [  # (num_beams, length_penalty, max_new_tokens, early_stopping)
    (4, 1.0, 10, False), (3, 0.5, 8, True), (5, 2.0, 12, "never"), (2, -1.0, 6, False), (6, 1.0, 15, True),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("eos_word", ["<eos>", ":", "is"])
def test_winner_equals_generate(case, eos_word, tiny_llama, tiny_tokenizer):
    """With a frequent word as EOS, hypotheses finish early and the early-stopping rules matter."""
    num_beams, lp, max_new, early = case
    eos = tiny_tokenizer.convert_tokens_to_ids(eos_word)
    wrapper = ModelWrapper(tiny_llama, tiny_tokenizer, name="tiny", device="cpu")
    wrapper.eos_ids = (eos,)
    ids = tiny_tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    ours = beam_search(wrapper, ids, num_beams=num_beams, length_penalty=lp, max_new_tokens=max_new,
                       early_stopping=early)
    seq, score = reference(tiny_llama, ids, num_beams=num_beams, length_penalty=lp, max_new_tokens=max_new,
                           early_stopping=early, eos=eos)
    assert ours.winner_ids == seq
    assert ours.winner.score == pytest.approx(score, abs=1e-5)


def test_some_case_finishes_on_eos(tiny_llama, tiny_tokenizer):
    """Guard that the EOS cases above really exercise early finishing."""
    wrapper = ModelWrapper(tiny_llama, tiny_tokenizer, name="tiny", device="cpu")
    wrapper.eos_ids = (tiny_tokenizer.convert_tokens_to_ids(":"),)
    ids = tiny_tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    r = beam_search(wrapper, ids, num_beams=3, length_penalty=0.5, max_new_tokens=12, early_stopping=True)
    assert r.winner.ended_with_eos and len(r.winner.tokens) < 12
    assert r.stopped in ("all beams done", "no better beam possible")


def test_step_records_add_up(tiny_wrapper, tiny_tokenizer):
    ids = tiny_tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    r = beam_search(tiny_wrapper, ids, num_beams=3, length_penalty=1.5, max_new_tokens=6)
    assert len(r.steps) == 6 and r.stopped == "max_new_tokens"
    for st in r.steps:
        assert len(st.candidates) == 2 * 3
        assert [c.cum_logprob for c in st.candidates] == sorted((c.cum_logprob for c in st.candidates), reverse=True)
        for c in st.candidates:
            assert len(c.tokens) == st.index
            assert c.cum_logprob == pytest.approx(sum(c.token_logprobs), abs=1e-4)
            assert c.score == pytest.approx(c.cum_logprob / st.index ** 1.5, rel=1e-5)
        statuses = {c.status for c in st.candidates}
        assert statuses <= {"running", "finished", "dropped"}
        assert len(st.dropped) == sum(c.status == "dropped" for c in st.candidates)
        if st.index < 6:
            assert len(st.running) == 3
    # each running beam extends a beam of the previous step
    for prev, st in zip(r.steps, r.steps[1:]):
        for c in st.candidates:
            assert c.tokens[:-1] == prev.running[c.parent].tokens
    # per-token log p are real log-probabilities of the model
    x = torch.tensor([ids + list(r.winner.tokens)])
    with torch.no_grad():
        logp = torch.log_softmax(tiny_wrapper.model(x).logits[0].float(), -1)
    n = len(ids)
    for k, (t, lp) in enumerate(zip(r.winner.tokens, r.winner.token_logprobs)):
        assert lp == pytest.approx(float(logp[n - 1 + k, t]), abs=1e-4)
    assert r.winner in r.finished and r.finished[0] == r.winner
    assert math.isfinite(r.winner.score)


def test_reusing_a_trace_gives_the_same_result(tiny_wrapper, tiny_tokenizer):
    ids = tiny_tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    trace = Trace(tiny_wrapper)
    trace.extend(ids)
    a = beam_search(tiny_wrapper, ids, num_beams=4, max_new_tokens=5, trace=trace)
    b = beam_search(tiny_wrapper, ids, num_beams=4, max_new_tokens=5)
    assert a.winner_ids == b.winner_ids and a.winner.score == pytest.approx(b.winner.score, abs=1e-5)
    assert trace.ids == ids  # untouched


@pytest.mark.parametrize("kwargs, words", [({"num_beams": 0}, "num_beams"), ({"max_new_tokens": 0}, "max_new_tokens"),
                                           ({"length_penalty": float("nan")}, "length_penalty"),
                                           ({"early_stopping": "maybe"}, "early_stopping")])
def test_bad_settings(kwargs, words, tiny_wrapper):
    with pytest.raises(InputError, match=words):
        beam_search(tiny_wrapper, [1, 4], **kwargs)


@pytest.mark.integration
def test_bundled_model_agrees_with_generate(bundled_wrapper):
    w = bundled_wrapper
    ids = w.encode("The capital of France is")
    ours = beam_search(w, ids, num_beams=3, length_penalty=1.0, max_new_tokens=8)
    x = torch.tensor([ids])
    out = w.model.generate(x, attention_mask=torch.ones_like(x), num_beams=3, do_sample=False, length_penalty=1.0,
                           max_new_tokens=8, early_stopping=False, output_scores=True, return_dict_in_generate=True,
                           eos_token_id=list(w.eos_ids), pad_token_id=w.tokenizer.pad_token_id or w.eos_ids[0])
    assert ours.winner_ids == out.sequences[0].tolist()
    assert ours.winner.score == pytest.approx(float(out.sequences_scores[0]), abs=1e-4)
    assert "Paris" in w.decode(ours.winner.tokens)
