"""Per-head-per-source attention terms sum to the attention output; proximity contributions sum to 1."""

from __future__ import annotations

import pytest
import torch

from explorer.engine.capture import capture_attentions, capture_residuals
from explorer.engine.contributions import attention_terms, proximity_contributions
from tests.analyses.helpers import TINY_IDS


def _check_all_blocks(wrapper, ids, queries):
    cap = capture_residuals(wrapper, ids, sublayers=True)
    worst = 0.0
    for t in queries:
        att = capture_attentions(wrapper, ids, query=t)
        for b in range(cap.n_layers):
            split = attention_terms(wrapper, b, cap.resid[b], att.rows[b], t, cap.attn_out[b, t])
            assert split.terms.shape == (att.n_heads, t + 1, cap.resid.shape[-1])
            worst = max(worst, split.identity_error)
    return worst


@pytest.mark.parametrize("name", ["tiny_wrapper", "tiny_gemma_wrapper"])
def test_attention_output_is_the_sum_of_its_head_source_terms(request, name):
    w = request.getfixturevalue(name)
    assert _check_all_blocks(w, TINY_IDS, (0, 5, len(TINY_IDS) - 1)) < 1e-4


@pytest.mark.integration
def test_bundled_attention_output_is_the_sum_of_its_head_source_terms(bundled_wrapper):
    ids = bundled_wrapper.encode("The capital of France is Paris, and the capital of Italy is")
    assert _check_all_blocks(bundled_wrapper, ids, (0, 4, len(ids) - 1)) < 1e-4


def test_proximity_contributions_sum_to_one_and_threshold():
    whole = torch.tensor([1.0, 2.0, -1.0])
    parts = torch.tensor([[1.0, 1.5, -1.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0]])
    c = proximity_contributions(whole, parts)
    assert not c.degenerate and float(c.shares.sum()) == pytest.approx(1.0)
    # prox: ‖x‖₁ = 4; part 0: 4 − 0.5 = 3.5; part 1: 4 − 3.5 = 0.5; part 2: 0 → ε
    assert c.raw[0] == pytest.approx(3.5 / 4.0, rel=1e-5) and c.raw[1] == pytest.approx(0.5 / 4.0, rel=1e-5)
    cut = proximity_contributions(whole, parts, threshold=0.2)
    assert cut.shares.tolist() == [1.0, 0.0, 0.0]


def test_degenerate_split_says_so():
    whole = torch.tensor([1.0, -1.0])
    parts = torch.tensor([[-1.0, 1.0], [0.0, 0.0]])  # nothing points towards the whole
    c = proximity_contributions(whole, parts)
    assert c.degenerate and float(c.shares.sum()) == 0.0
