"""Trace: incremental KV-cache stepping equals a full forward pass; pops crop; stats are right."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.engine.trace import Trace
from explorer.engine.view import build_view

IDS = [1, 4, 5, 6, 7, 4, 8, 9, 10, 5, 6, 7, 11, 12]


def full_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()  # [n, vocab]


@pytest.mark.parametrize("wrapper_name", ["tiny_wrapper", "tiny_gemma_wrapper"])
def test_incremental_equals_full_pass(request, wrapper_name):
    w = request.getfixturevalue(wrapper_name)
    trace = Trace(w)
    trace.extend(IDS[:3])
    for t in IDS[3:]:  # one token at a time, past Gemma's sliding window of 4
        trace.extend([t])
    ref = full_logits(w.model, IDS)
    assert torch.allclose(trace.last_row(), ref[-1], atol=1e-5)
    lse = torch.logsumexp(ref, -1)
    for i in range(1, len(IDS)):
        assert trace.actual_logp(i) == pytest.approx(float(ref[i - 1, IDS[i]] - lse[i - 1]), abs=1e-5)


@pytest.mark.parametrize("wrapper_name", ["tiny_wrapper", "tiny_gemma_wrapper"])
def test_pop_then_append_matches(request, wrapper_name):
    w = request.getfixturevalue(wrapper_name)
    trace = Trace(w)
    trace.extend(IDS)
    trace.truncate(5)
    assert trace.ids == IDS[:5]
    assert torch.allclose(trace.last_row(), full_logits(w.model, IDS[:5])[-1], atol=1e-5)
    trace.extend([13, 14])
    ref = full_logits(w.model, IDS[:5] + [13, 14])
    assert torch.allclose(trace.last_row(), ref[-1], atol=1e-5)


def test_pop_within_recent_rows_needs_no_forward(tiny_wrapper):
    trace = Trace(tiny_wrapper)
    trace.extend(IDS)
    calls = trace.forward_calls
    trace.truncate(len(IDS) - 1)
    assert trace.forward_calls == calls
    trace.truncate(2)  # far back: one one-token pass recovers the row
    assert trace.forward_calls == calls + 1


def test_stats_agree_with_direct_softmax(tiny_wrapper):
    trace = Trace(tiny_wrapper)
    trace.extend(IDS)
    ref = full_logits(tiny_wrapper.model, IDS)
    p = ref.softmax(-1)
    for pos in (0, 5, len(IDS) - 1):
        h = float(-(p[pos] * p[pos].log()).sum())
        assert trace.entropy[pos] == pytest.approx(h, rel=1e-5)
        assert -trace.logsumexp[pos] == pytest.approx(float(-torch.logsumexp(ref[pos], -1)), rel=1e-6)
    view = build_view(trace, top_n=5)
    # Identity at T = 1: log p_y = f_y + E (SCIENCE.md 5.3).
    for tok in view.tokens[1:]:
        assert tok.logprob == pytest.approx(tok.logit + tok.energy, abs=1e-5)
    probs = [c.prob for c in view.candidates]
    assert probs == sorted(probs, reverse=True)
    assert probs[0] == pytest.approx(float(p[-1].max()), rel=1e-5)
    assert view.tokens[0].prob is None


def test_uniform_distribution_entropy_is_log_v():
    from explorer.engine.stats import row_stats

    v = 1000
    stats = row_stats(torch.zeros(1, v))
    assert float(stats.entropy[0]) == pytest.approx(math.log(v), rel=1e-6)
    assert float(stats.varentropy[0]) == pytest.approx(0.0, abs=1e-6)


def test_masked_logits_give_finite_entropy():
    from explorer.engine.stats import row_stats

    z = torch.tensor([[0.0, float("-inf"), 0.0]])
    stats = row_stats(z)
    assert float(stats.entropy[0]) == pytest.approx(math.log(2), rel=1e-6)


def test_clone_is_independent(tiny_wrapper):
    trace = Trace(tiny_wrapper)
    trace.extend(IDS[:6])
    other = trace.clone()
    other.extend([9])
    trace.extend([10])
    assert trace.ids[-1] == 10 and other.ids[-1] == 9
    assert torch.allclose(other.last_row(), full_logits(tiny_wrapper.model, IDS[:6] + [9])[-1], atol=1e-5)
    assert torch.allclose(trace.last_row(), full_logits(tiny_wrapper.model, IDS[:6] + [10])[-1], atol=1e-5)


def test_context_limit_is_a_clear_error(tiny_wrapper):
    from explorer.errors import InputError

    trace = Trace(tiny_wrapper)
    with pytest.raises(InputError, match="context"):
        trace.extend([4] * (tiny_wrapper.context_length + 1))
