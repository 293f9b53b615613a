"""Decoding lab: the pipeline equals generate()'s scores, stage records are right, sampling replays."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.engine.decoding.generate import generate_tokens
from explorer.engine.decoding.pipeline import (DecodingSettings, SeededSampler, lab_view, process_logits,
                                      sample_next)
from explorer.engine.trace import Trace
from explorer.errors import InputError

PROMPT = "<bos> once upon a time there was a big dog . the dog"
EOS = (2,)


def prompt_ids(tok):
    return tok(PROMPT, add_special_tokens=False)["input_ids"]


def generate_scores(model, ids, settings: DecodingSettings) -> torch.Tensor:
    """What model.generate() itself computes as the processed scores of the first new token."""
    x = torch.tensor([ids])
    out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=1, output_scores=True,
                         output_logits=True, return_dict_in_generate=True, pad_token_id=3,
                         **settings.generate_kwargs())
    return out.logits[0][0], out.scores[0][0]


# Values chosen so that each filter removes some tokens of the tiny model's flat distribution.
STRATEGIES = {
    "temperature": (DecodingSettings(temperature=0.5), None),
    "top_k": (DecodingSettings(top_k=5), "top_k"),
    "top_p": (DecodingSettings(top_p=0.5), "top_p"),
    "min_p": (DecodingSettings(min_p=0.9), "min_p"),
    "typical_p": (DecodingSettings(typical_p=0.5), "typical_p"),
    "repetition_penalty": (DecodingSettings(repetition_penalty=1.8), None),
    "epsilon": (DecodingSettings(epsilon=0.02), "epsilon"),
    "eta": (DecodingSettings(eta=0.9), "eta"),
    "combined": (DecodingSettings(temperature=0.8, top_k=30, top_p=0.9, min_p=0.05, typical_p=0.95,
                                  repetition_penalty=1.3, epsilon=0.005, eta=0.01, bans=[5], biases={6: 1.5}), "top_k"),
    "greedy_with_penalty_ban_bias": (DecodingSettings(do_sample=False, repetition_penalty=1.5, bans=[[9, 24], 7],
                                                      biases={(24,): -0.5, (10, 11): 2.0}), "ban"),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_processed_equals_generate(name, tiny_llama, tiny_tokenizer):
    settings, remover = STRATEGIES[name]
    ids = prompt_ids(tiny_tokenizer)
    raw, ref = generate_scores(tiny_llama, ids, settings)
    step = process_logits(raw, ids, settings, eos_ids=EOS)
    assert torch.equal(torch.isfinite(step.scores), torch.isfinite(ref))
    assert torch.allclose(step.probs, ref.softmax(-1), atol=1e-6)
    assert torch.allclose(step.raw_probs, raw.softmax(-1), atol=1e-7)
    assert step.probs.sum() == pytest.approx(1.0, abs=1e-5)
    # The records agree with the scores: removed <=> -inf, and the named stage did it.
    removed = step.removed_stage >= 0
    assert torch.equal(removed, ~torch.isfinite(step.scores))
    assert step.survivors == int((~removed).sum())
    if remover is not None:
        summary = {s.name: s for s in step.stages}
        assert summary[remover].removed > 0
        assert any(step.removed_by(t) == remover for t in range(step.scores.shape[-1]))
    else:
        assert not removed.any()
        assert not torch.allclose(step.probs, step.raw_probs, atol=1e-4)  # the stage changed the distribution


def test_pipeline_order_is_transformers_order():
    s = DecodingSettings(temperature=0.8, top_k=30, top_p=0.9, min_p=0.05, typical_p=0.95, repetition_penalty=1.3,
                         epsilon=0.005, eta=0.01, bans=[5], biases={6: 1.5})
    step = process_logits(torch.randn(50), [1, 4, 5], s, eos_ids=EOS, allowed_ids=list(range(10, 40)))
    assert [st.name for st in step.stages] == ["sequence_bias", "repetition_penalty", "ban", "regex", "temperature",
                                               "top_k", "top_p", "min_p", "typical_p", "epsilon", "eta"]
    assert [st.processor for st in step.stages][:4] == ["SequenceBiasLogitsProcessor", "RepetitionPenaltyLogitsProcessor",
                                                        "NoBadWordsLogitsProcessor", "PrefixConstrainedLogitsProcessor"]


# ------------------------------------------------------------------ hand-made logits
def logits_of(probs):
    return torch.tensor([math.log(p) for p in probs])


def test_top_k_keeps_k():
    step = process_logits(torch.tensor([3.0, 2.0, 1.0, 0.0]), [0], DecodingSettings(top_k=2))
    assert step.survivors == 2
    assert [step.removed_by(i) for i in range(4)] == [None, None, "top_k", "top_k"]
    p = torch.tensor([3.0, 2.0]).softmax(-1)
    assert step.probs[:2].tolist() == pytest.approx(p.tolist())


def test_top_p_mass_and_stage_numbers():
    step = process_logits(logits_of([0.5, 0.3, 0.15, 0.05]), [0], DecodingSettings(top_p=0.8))
    # ascending cumulative 0.05, 0.2, 0.5, 1.0: drop while <= 1 - 0.8
    assert step.survivors == 2
    (st,) = step.stages
    assert st.mass_kept == pytest.approx(0.8)
    assert st.raw_mass_kept == pytest.approx(0.8)
    assert step.probs[:2].tolist() == pytest.approx([0.625, 0.375])


def test_min_p_after_temperature():
    # p = [.6, .3, .1]; T = 1: threshold 0.4 * 0.6 = 0.24 keeps two tokens.
    step = process_logits(logits_of([0.6, 0.3, 0.1]), [0], DecodingSettings(min_p=0.4))
    assert step.survivors == 2
    # T = 0.5 sharpens to [.78, .20, .02]: threshold 0.31 keeps only the first.
    step = process_logits(logits_of([0.6, 0.3, 0.1]), [0], DecodingSettings(min_p=0.4, temperature=0.5))
    assert step.survivors == 1 and step.removed_by(1) == "min_p"


def test_temperature_scales_logits():
    z = torch.tensor([1.0, 2.0, 4.0])
    step = process_logits(z, [0], DecodingSettings(temperature=2.0))
    assert step.probs.tolist() == pytest.approx((z / 2).softmax(-1).tolist())
    assert step.raw_probs.tolist() == pytest.approx(z.softmax(-1).tolist())


def test_repetition_penalty_divides_positive_multiplies_negative():
    step = process_logits(torch.tensor([2.0, -2.0, 1.0]), [0, 1], DecodingSettings(repetition_penalty=2.0))
    assert step.scores.tolist() == pytest.approx([1.0, -4.0, 1.0])


def test_epsilon_that_would_remove_everything_keeps_one_and_says_so():
    step = process_logits(torch.tensor([0.0, 0.1, 0.2, 0.3]), [0], DecodingSettings(epsilon=0.5))
    assert step.greedy_token() == 3
    assert step.survivors == 1
    (st,) = step.stages
    assert st.kept_by_floor
    assert any("would remove every token" in n for n in step.notes)


def test_eta_cutoff_by_hand():
    probs = [0.7, 0.2, 0.06, 0.03, 0.01]
    h = -sum(p * math.log(p) for p in probs)
    cut = min(0.3, math.sqrt(0.3) * math.exp(-h))  # = 0.108...
    step = process_logits(logits_of(probs), [0], DecodingSettings(eta=0.3))
    assert [step.removed_by(i) for i in range(5)] == [None if p >= cut else "eta" for p in probs]
    assert not step.stages[0].kept_by_floor  # e^-H <= max p, so eta never empties the table


def test_multi_token_bias_needs_its_prefix():
    s = DecodingSettings(biases={(5, 6): 3.0})
    z = torch.zeros(10)
    assert process_logits(z, [1, 5], s).scores[6] == pytest.approx(3.0)
    assert process_logits(z, [1, 4], s).scores[6] == pytest.approx(0.0)


def test_multi_token_ban_needs_its_prefix():
    s = DecodingSettings(bans=[(5, 6)])
    z = torch.zeros(10)
    assert process_logits(z, [1, 5], s).removed_by(6) == "ban"
    assert process_logits(z, [1, 4], s).removed_by(6) is None


def test_eos_is_never_banned_like_transformers():
    step = process_logits(torch.zeros(5), [0], DecodingSettings(bans=[2, 3]), eos_ids=EOS)
    assert step.removed_by(3) == "ban"
    assert step.removed_by(2) is None
    assert any("end-of-sequence" in n for n in step.notes)


def test_banning_every_token_falls_back_to_raw_argmax():
    z = torch.tensor([0.0, 3.0, 1.0])
    step = process_logits(z, [0], DecodingSettings(bans=[0, 1, 2]))
    assert step.survivors == 1 and step.greedy_token() == 1
    assert step.stages[-1].name == "fallback"
    assert any("removed every token" in n for n in step.notes)


def test_ban_removes_and_boost_moves_up_on_the_model(tiny_wrapper, tiny_tokenizer):
    ids = prompt_ids(tiny_tokenizer)
    trace = Trace(tiny_wrapper)
    trace.extend(ids)
    raw = trace.last_row()
    top, low = int(raw.argmax()), int(raw.argmin())
    banned = process_logits(raw, ids, DecodingSettings(bans=[top]), eos_ids=tiny_wrapper.eos_ids)
    assert banned.probs[top] == 0 and banned.removed_by(top) == "ban"
    assert banned.greedy_token() != top
    boosted = process_logits(raw, ids, DecodingSettings(biases={low: 5.0}), eos_ids=tiny_wrapper.eos_ids)
    assert boosted.probs[low] > boosted.raw_probs[low] * 10
    assert boosted.greedy_token() == low


def test_lab_view_rows(tiny_wrapper, tiny_tokenizer):
    ids = prompt_ids(tiny_tokenizer)
    trace = Trace(tiny_wrapper)
    trace.extend(ids)
    raw = trace.last_row()
    low = int(raw.argmin())
    settings = DecodingSettings(top_k=3, biases={low: -1.0})
    view = lab_view(tiny_wrapper, trace, settings, top_n=5)
    assert len(view.rows) == 6  # top 5 plus the biased token outside them
    assert [r.rank for r in view.rows[:5]] == [1, 2, 3, 4, 5]
    assert [r.removed_by for r in view.rows[:5]] == [None, None, None, "top_k", "top_k"]
    assert view.rows[-1].id == low and view.rows[-1].removed_by == "top_k"
    assert sum(r.processed_prob for r in view.rows) == pytest.approx(1.0, abs=1e-5)
    assert view.survivors == 3


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("kwargs, words", [
    ({"temperature": 0}, "greater than 0"), ({"temperature": -1}, "greater than 0"),
    ({"temperature": float("nan")}, "greater than 0"), ({"top_k": -1}, "at least 0"),
    ({"top_p": 0}, "(0, 1]"), ({"top_p": 1.5}, "(0, 1]"), ({"min_p": 1.2}, "[0, 1]"),
    ({"typical_p": 0}, "(0, 1]"), ({"repetition_penalty": 0}, "greater than 0"),
    ({"epsilon": 1.0}, "[0, 1)"), ({"eta": -0.1}, "[0, 1)"), ({"biases": {3: float("inf")}}, "finite"),
    ({"bans": [[]]}, "empty"), ({"bans": [-4]}, "never negative"),
])
def test_out_of_range_settings_are_refused_with_the_range(kwargs, words):
    with pytest.raises(InputError) as err:
        DecodingSettings(**kwargs)
    assert words in str(err.value)


def test_ids_outside_vocab_refused():
    with pytest.raises(InputError, match="outside the vocabulary"):
        process_logits(torch.zeros(5), [0], DecodingSettings(bans=[7]))


def test_settings_editing_round_trip():
    s = DecodingSettings().with_ban(5).with_bias(7, 2.0).with_bias((3, 4), -1.0)
    assert s.bans == ((5,),) and dict(s.biases) == {(7,): 2.0, (3, 4): -1.0}
    s = s.without_ban(5).with_bias(7, 0)
    assert s.bans == () and dict(s.biases) == {(3, 4): -1.0}
    assert DecodingSettings().is_neutral() and not s.is_neutral()
    hash(s)  # frozen and hashable


# ------------------------------------------------------------------ sampling
def test_seeded_sampler_replays(tiny_wrapper, tiny_tokenizer):
    ids = prompt_ids(tiny_tokenizer)
    settings = DecodingSettings(temperature=1.3)
    a = generate_tokens(tiny_wrapper, ids, settings, 10, SeededSampler(42), stop_at_eos=False)
    b = generate_tokens(tiny_wrapper, ids, settings, 10, SeededSampler(42), stop_at_eos=False)
    c = generate_tokens(tiny_wrapper, ids, settings, 10, SeededSampler(43), stop_at_eos=False)
    assert a.new_ids == b.new_ids and len(a.new_ids) == 10
    assert a.new_ids != c.new_ids


def test_sampler_state_restores(tiny_wrapper, tiny_tokenizer):
    trace = Trace(tiny_wrapper)
    trace.extend(prompt_ids(tiny_tokenizer))
    sampler = SeededSampler(5)
    sample_next(tiny_wrapper, trace, DecodingSettings(), sampler)
    state = sampler.get_state()
    first = [sample_next(tiny_wrapper, trace, DecodingSettings(), sampler)[0] for _ in range(5)]
    sampler.set_state(state)
    again = [sample_next(tiny_wrapper, trace, DecodingSettings(), sampler)[0] for _ in range(5)]
    assert first == again and sampler.draws == 6


@pytest.mark.parametrize("settings", [DecodingSettings(),
                                      DecodingSettings(temperature=0.7, top_k=20, top_p=0.9, repetition_penalty=1.3),
                                      DecodingSettings(min_p=0.8, typical_p=0.7, epsilon=0.01, eta=0.5)])
@pytest.mark.parametrize("seed", [0, 7])
def test_seeded_generation_equals_generate_with_the_same_seed(settings, seed, tiny_wrapper, tiny_llama, tiny_tokenizer):
    """Our generator seeded with s draws what generate() draws after torch.manual_seed(s)."""
    ids = prompt_ids(tiny_tokenizer)
    ours = generate_tokens(tiny_wrapper, ids, settings, 12, SeededSampler(seed))
    torch.manual_seed(seed)
    x = torch.tensor([ids])
    ref = tiny_llama.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=12, pad_token_id=3,
                              **settings.generate_kwargs())
    assert ours.new_ids == ref[0, len(ids):].tolist()


def test_generate_continues_a_trace_without_changing_it(tiny_wrapper, tiny_tokenizer):
    ids = prompt_ids(tiny_tokenizer)
    trace = Trace(tiny_wrapper)
    trace.extend(ids)
    calls = trace.forward_calls
    a = generate_tokens(tiny_wrapper, ids, DecodingSettings(), 6, SeededSampler(3), trace=trace, stop_at_eos=False)
    b = generate_tokens(tiny_wrapper, ids, DecodingSettings(), 6, SeededSampler(3), stop_at_eos=False)
    assert a.new_ids == b.new_ids
    assert trace.ids == ids and trace.forward_calls == calls


def test_greedy_generation_is_argmax(tiny_wrapper, tiny_llama, tiny_tokenizer):
    ids = prompt_ids(tiny_tokenizer)
    ours = generate_tokens(tiny_wrapper, ids, DecodingSettings(do_sample=False), 8, SeededSampler(0))
    x = torch.tensor([ids])
    ref = tiny_llama.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=8, do_sample=False, pad_token_id=3)
    assert ours.new_ids == ref[0, len(ids):].tolist()


def test_generate_count_checked(tiny_wrapper):
    with pytest.raises(InputError, match="between 1 and 4096"):
        generate_tokens(tiny_wrapper, [1, 4], DecodingSettings(), 0, SeededSampler(0))


def test_processed_order_ranks_removed_rows_by_raw_probability_below_the_survivors():
    """r in the lab: with top-k 3, rows 4.. are removed (processed p 0) and must follow raw p."""
    from explorer.engine.decoding.pipeline import lab_rows

    logits = torch.tensor([0.5, 3.0, -1.0, 2.0, 1.0, 0.0, 2.5, -2.0])
    step = process_logits(logits, [0], DecodingSettings(top_k=3))
    rows = lab_rows(step, str, 8, order="processed")
    survivors = [r for r in rows if r.removed_by is None]
    removed = [r for r in rows if r.removed_by is not None]
    assert [r.id for r in rows[:3]] == [r.id for r in survivors] == [1, 6, 3]
    # independent: the removed ids sorted by their raw logit, highest first
    assert [r.id for r in removed] == sorted(set(range(8)) - {1, 6, 3}, key=lambda i: -float(logits[i]))
