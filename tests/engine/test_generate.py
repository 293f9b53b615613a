"""Generation with logprobs: incremental cache parity, seeded sampling, forced guides, the JSONL record."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.engine.decoding.generate import generate, logprob_record, trace_steps
from explorer.engine.trace import Trace
from explorer.errors import InputError
from tests.engine.tree_compare import one_torch_thread

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


def _full_logprobs(wrapper, ids):
    with torch.inference_mode():
        logits = wrapper.model(torch.tensor([ids])).logits[0].float()  # [n, vocab]
    return torch.log_softmax(logits, dim=-1)


def test_greedy_steps_match_a_full_forward(tiny_wrapper):
    prompt = tiny_wrapper.encode("once upon a time")
    gen = generate(tiny_wrapper, prompt, 6, eos_ids=())
    assert len(gen.steps) == 6 and gen.stop_reason == "length"
    logp = _full_logprobs(tiny_wrapper, prompt + gen.new_ids)
    for k, step in enumerate(gen.steps):
        row = logp[len(prompt) - 1 + k]
        assert step.token_id == int(row.argmax())
        assert step.logprob == pytest.approx(float(row[step.token_id]), abs=1e-5)
        assert list(step.top_ids[:5]) == row.topk(5).indices.tolist()


def test_sampling_is_replayed_by_its_seed(tiny_wrapper):
    prompt = tiny_wrapper.encode("the cat")
    a = generate(tiny_wrapper, prompt, 12, sample=True, seed=7, eos_ids=())
    b = generate(tiny_wrapper, prompt, 12, sample=True, seed=7, eos_ids=())
    c = generate(tiny_wrapper, prompt, 12, sample=True, seed=8, eos_ids=())
    assert a.new_ids == b.new_ids
    assert a.new_ids != c.new_ids  # a flat 55-token distribution: 12 equal draws by chance is ~impossible


def test_forced_tokens_come_first_and_are_scored(tiny_wrapper):
    prompt = tiny_wrapper.encode("once upon")
    forced = tiny_wrapper.encode("a time")
    gen = generate(tiny_wrapper, prompt, 3, forced_ids=forced, eos_ids=())
    assert gen.new_ids[: len(forced)] == forced
    assert [s.forced for s in gen.steps] == [True] * len(forced) + [False] * 3
    logp = _full_logprobs(tiny_wrapper, prompt + gen.new_ids)
    for k, step in enumerate(gen.steps):
        assert step.logprob == pytest.approx(float(logp[len(prompt) - 1 + k, step.token_id]), abs=1e-5)


def test_generation_stops_at_end_of_sequence(tiny_wrapper):
    prompt = tiny_wrapper.encode("once upon")
    first = generate(tiny_wrapper, prompt, 1, eos_ids=()).new_ids[0]
    gen = generate(tiny_wrapper, prompt, 10, eos_ids=(first,))
    assert gen.new_ids == [first] and gen.stop_reason == "eos"


def test_record_format_and_percent(tiny_wrapper):
    prompt = tiny_wrapper.encode("once upon a time")
    gen = generate(tiny_wrapper, prompt, 4, eos_ids=())
    rec = logprob_record(tiny_wrapper, "once upon a time", gen.steps, top=3)
    assert set(rec) == {"schema_version", "prompt", "response", "data"} and rec["schema_version"] == 1
    assert len(rec["data"]) == 4
    for entry, step in zip(rec["data"], gen.steps):
        assert set(entry) == {"token", "logprob", "prob", "other_tokens"}
        assert entry["prob"] == pytest.approx(100 * math.exp(entry["logprob"]))
        assert 0 < entry["prob"] <= 100
        assert len(entry["other_tokens"]) == 3
        assert entry["other_tokens"][0]["prob"] >= entry["prob"] - 1e-9  # the top alternative is the most likely
        for alt in entry["other_tokens"]:
            assert set(alt) == {"token", "logprob", "prob"}
            assert alt["prob"] == pytest.approx(100 * math.exp(alt["logprob"]))
    with pytest.raises(InputError):
        logprob_record(tiny_wrapper, "p", gen.steps, top=21)


def test_trace_export_matches_generation(tiny_wrapper):
    prompt = tiny_wrapper.encode("once upon a time")
    gen = generate(tiny_wrapper, prompt, 5, eos_ids=())
    trace = Trace(tiny_wrapper)
    with tiny_wrapper.lock:
        trace.extend(prompt + gen.new_ids)
    steps = trace_steps(trace, len(prompt))
    assert [s.token_id for s in steps] == gen.new_ids
    for a, b in zip(steps, gen.steps):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-5)
        assert a.top_ids[:5] == b.top_ids[:5]
        assert a.top_logprobs[0] == pytest.approx(b.top_logprobs[0], abs=1e-5)
    with pytest.raises(InputError):
        trace_steps(trace, 0)


def test_log_prob_and_lab_generation_share_one_loop(tiny_wrapper):
    """Same seed, neutral settings: generate() and the lab's generate_tokens() choose the same tokens,
    and the probabilities they report agree (exp(logprob) = raw prob)."""
    from explorer.engine.decoding.generate import generate_tokens
    from explorer.engine.decoding.pipeline import SeededSampler
    from explorer.engine.decoding.settings import DecodingSettings

    ids = tiny_wrapper.encode("the cat sat on")
    for sample in (False, True):
        for seed in (0, 5):
            plain = generate(tiny_wrapper, ids, 12, sample=sample, seed=seed, eos_ids=())
            lab = generate_tokens(tiny_wrapper, ids, DecodingSettings(do_sample=sample), 12, SeededSampler(seed),
                                  stop_at_eos=False)
            assert [s.token_id for s in plain.steps] == lab.new_ids
            for s, t in zip(plain.steps, lab.tokens):
                assert math.exp(s.logprob) == pytest.approx(t.raw_prob, rel=1e-4)


def test_generation_stops_when_the_sequence_fills_the_context(tiny_wrapper):
    from explorer.engine.decoding.generate import generate_tokens
    from explorer.engine.decoding.pipeline import SeededSampler
    from explorer.engine.decoding.settings import DecodingSettings

    limit = tiny_wrapper.context_length
    ids = (tiny_wrapper.encode("the cat sat on") * limit)[: limit - 5]
    plain = generate(tiny_wrapper, ids, 50, eos_ids=())
    lab = generate_tokens(tiny_wrapper, ids, DecodingSettings(), 50, SeededSampler(0), stop_at_eos=False)
    for stop, n in ((plain.stop_reason, len(plain.steps)), (lab.stopped, len(lab.tokens))):
        assert stop == "context" and len(ids) + n == limit
