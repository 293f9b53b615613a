"""Recorded captures equal a full capture pass after any walk of appends, pops, switches and duplicates.

The models run sdpa where transformers has it (as the app does): the attention the recorder computes from the KV
cache is compared with the eager capture pass, which switches the model to eager.
"""

from __future__ import annotations

import copy
import random

import pytest
import torch

from explorer.analyses.lens import actual_token_probs
from explorer.engine.capture import capture_attentions, capture_residuals
from explorer.engine.model import ModelWrapper
from explorer.engine.recorder import ATTENTION, RESID, SUBLAYERS, model_records, recorder_for, set_budget
from explorer.engine.trace import Trace

TOL = 1e-4


def _sdpa_wrapper(model, tokenizer, name):
    model = copy.deepcopy(model)
    if model._supports_sdpa:  # Gemma 2 has no sdpa path in transformers 5: it stays eager
        model.set_attn_implementation("sdpa")
    return ModelWrapper(model, tokenizer, name=name, device="cpu")


@pytest.fixture(params=["llama", "gemma"])
def wrapper(request, tiny_llama, tiny_gemma, tiny_tokenizer):
    model = tiny_llama if request.param == "llama" else tiny_gemma
    return _sdpa_wrapper(model, tiny_tokenizer, f"tiny-{request.param}-sdpa")


def _count_model_calls(wrapper) -> list[int]:
    calls = [0]
    wrapper.model.get_decoder().register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def assert_matches_capture(wrapper, trace: Trace) -> None:
    """Recorded residuals, sub-layers, attention and lens equal a fresh full pass over the same ids."""
    ids = list(trace.ids)
    rec = recorder_for(wrapper, ids)
    assert rec is not None
    positions = tuple(range(max(0, len(ids) - 3), len(ids)))
    got = rec.residual_capture(sublayers=True, logit_positions=positions)
    want = capture_residuals(wrapper, ids, sublayers=True, logit_positions=positions)
    for name in ("resid", "attn_out", "mlp_out", "resid_mid", "logits"):
        # Absolute 1e-4 on unit-scale values; SmolLM2's residual reaches |x| ~ 10², where float32
        # rounding of a cached vs a whole-prompt pass alone is ~1e-6 relative, so the bound scales.
        scale = max(1.0, float(getattr(want, name).abs().max()))
        diff = float((getattr(got, name) - getattr(want, name)).abs().max())
        assert diff <= TOL * scale, (name, diff, scale)
    query = len(ids) // 2
    att = rec.attention_capture(query, heads=True)
    eager = capture_attentions(wrapper, ids, query=query)
    assert float((att.mean - eager.mean).abs().max()) <= TOL
    assert float((att.rows - eager.rows).abs().max()) <= TOL  # per head, recomputed from records + KV cache
    layers = list(range(got.n_layers + 1))
    lens = rec.lens_probs(layers)
    ref = actual_token_probs(wrapper, want, layers)
    assert torch.allclose(lens[:, 1:], ref[:, 1:], atol=TOL, rtol=0)
    # the model's own logits of the trace's recent rows (the recorder's logits come from the final norm hook)
    assert float((got.logits[-1] - trace.last_row()).abs().max()) <= TOL


def test_random_walk_matches_capture(wrapper):
    """Appends, pops, prompt switches (sync to another list) and duplicates, compared after every step."""
    model_records(wrapper).kinds.update({RESID, SUBLAYERS, ATTENTION})
    rng = random.Random(0)
    vocab = wrapper.vocab_size
    traces = [Trace(wrapper, record=True)]
    traces[0].extend([1] + [rng.randrange(4, vocab) for _ in range(5)])
    calls = _count_model_calls(wrapper)
    for step in range(40):
        trace = rng.choice(traces)
        op = rng.random()
        if op < 0.5 and len(trace) < 30:
            trace.extend([rng.randrange(4, vocab) for _ in range(rng.choice([1, 1, 1, 3]))])
        elif op < 0.75 and len(trace) > 2:
            trace.truncate(len(trace) - rng.randint(1, min(4, len(trace) - 1)))
        elif op < 0.88 and len(traces) < 4:
            traces.append(trace.clone())  # a duplicated prompt keeps its own copy of the records
        else:  # switching the trace to another prompt sharing a prefix
            target = list(trace.ids[: max(1, len(trace) // 2)]) + [rng.randrange(4, vocab) for _ in range(3)]
            trace.sync(target)
        before = calls[0]
        assert_matches_capture(wrapper, trace)
        # the captures came from the records, the comparison's own passes are the only model calls
        assert calls[0] - before == 2, step
    # Gemma's sliding window (4 tokens) is crossed: the comparison included masked keys
    assert max(len(t) for t in traces) > 8


def test_arming_late_fills_once_then_steps_incrementally(wrapper):
    trace = Trace(wrapper, record=True)
    trace.extend([1, 5, 6, 7, 8, 9])
    calls = _count_model_calls(wrapper)
    rec = recorder_for(wrapper, trace.ids)
    rec.residual_capture(sublayers=False, logit_positions=(5,))
    assert rec.rebuilds == 1 and calls[0] == 1
    for tok in (10, 11, 12):
        trace.extend([tok])
    assert calls[0] == 4  # three one-token forwards, nothing else
    rec.residual_capture(sublayers=False, logit_positions=(8,))
    assert rec.rebuilds == 1 and calls[0] == 4  # a later read uses what was recorded
    assert_matches_capture(wrapper, trace)


def test_records_survive_a_reset_and_views_survive_a_pop(wrapper):
    model_records(wrapper).kinds.add(RESID)
    trace = Trace(wrapper, record=True)
    trace.extend([1, 5, 6, 7])
    view = recorder_for(wrapper, trace.ids).residual_capture(sublayers=False, logit_positions=(3,)).resid
    kept = view.clone()
    trace.truncate(2)
    trace.extend([20, 21])  # writes where the handed-out view used to point
    assert torch.equal(view, kept)
    trace.reset()
    trace.extend([1, 8])
    assert_matches_capture(wrapper, trace)


@pytest.mark.slow  # 2,000 steps: minutes on two cores; the full run keeps it
def test_memory_bound_holds_under_a_long_random_walk(tiny_llama, tiny_tokenizer):
    wrapper = _sdpa_wrapper(tiny_llama, tiny_tokenizer, "tiny-budget")
    budget = 200 * 1024  # one 60-token trace fits (~130 KB with spare capacity), two do not
    set_budget(wrapper, budget)
    model_records(wrapper).kinds.update({RESID, SUBLAYERS, ATTENTION})
    rng = random.Random(1)
    traces = [Trace(wrapper, record=True), Trace(wrapper, record=True)]
    for t in traces:
        t.extend([1, 5])
    for _ in range(2000):
        trace = rng.choice(traces)
        if rng.random() < 0.55 and len(trace) < 60:
            trace.extend([rng.randrange(4, wrapper.vocab_size)])
        elif len(trace) > 2:
            trace.truncate(len(trace) - 1)
        assert sum(t.recorder.nbytes for t in traces) <= budget
    assert_matches_capture(wrapper, traces[0])  # an emptied recorder fills again when asked
    assert sum(t.recorder.nbytes for t in traces) <= budget


def test_work_traces_do_not_record(wrapper):
    """Generation and comparison traces (record=False) stay empty and are never read by a mode."""
    model_records(wrapper).kinds.update({RESID, ATTENTION})
    work = Trace(wrapper)
    work.extend([1, 5, 6])
    assert work.recorder.nbytes == 0
    assert recorder_for(wrapper, [1, 5, 6]) is None


@pytest.mark.integration
def test_bundled_model_records_equal_capture(bundled_wrapper):
    wrapper = bundled_wrapper
    model_records(wrapper).kinds.update({RESID, SUBLAYERS, ATTENTION})
    trace = Trace(wrapper, record=True)
    trace.extend(wrapper.encode("The capital of France is"))
    for tok in (12366, 28, 260):
        trace.extend([tok])
    trace.truncate(len(trace) - 1)
    twin = trace.clone()
    twin.extend([314])
    assert_matches_capture(wrapper, trace)
    assert_matches_capture(wrapper, twin)


def test_row_stats_in_blocks_equal_one_block():
    """Blocking the softmax temporaries (memory) changes no number."""
    from explorer.engine import stats

    torch.manual_seed(0)
    logits = torch.randn(stats.STATS_ROWS * 3 + 5, 300) * 4  # [53, 300]
    logits[2, 7] = float("-inf")
    whole = stats._block_stats(logits, 20)
    blocked = stats.row_stats(logits)
    for name in stats.RowStats.__dataclass_fields__:
        assert torch.equal(getattr(whole, name), getattr(blocked, name)), name


def test_session_modes_read_the_records_after_appends(tiny_session):
    """In a research mode, appends cost no capture pass: the modes read what the steps recorded."""
    from explorer.analyses.base import AnalysisContext
    from explorer.analyses.cache import ResultCache, compute_mode
    from explorer.analyses.registry import get_analysis

    cache = ResultCache()
    session = tiny_session
    modes = [get_analysis(m) for m in ("attention", "hidden_similarity", "residual", "layer_correlation")]

    def fill_all():
        view = session.compute()
        for mode in modes:
            compute_mode(mode, AnalysisContext(view=view, wrapper=session.wrapper, cursor=len(view.ids) - 1), cache)

    fill_all()
    rec = recorder_for(session.wrapper, session.current.ids)
    first_rebuilds = rec.rebuilds
    for tok in (5, 6, 7):
        session.append(tok)
        fill_all()
    session.pop()
    fill_all()
    assert cache.capture_builds == 0  # the fallback capture pass never ran
    assert recorder_for(session.wrapper, session.current.ids).rebuilds == first_rebuilds
    model_records(session.wrapper).kinds.clear()  # the wrapper is shared by other tests: disarm
