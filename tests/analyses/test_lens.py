"""Logit lens: the last layer equals the model's own next-token distribution (KL < 1e-5), with and
without Gemma's soft-cap; per-layer readouts are consistent; the lens normalises once."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.analyses.layer_correlation import LayerCorrelationMode
from explorer.analyses.layer_prob import LayerProbMode
from explorer.analyses.lens import actual_token_probs, lens_at_position
from explorer.engine.capture import capture_residuals
from tests.analyses.helpers import TINY_IDS, make_ctx

WRAPPERS = ["tiny_wrapper", "tiny_gemma_wrapper"]


@pytest.mark.parametrize("name", WRAPPERS)
@pytest.mark.parametrize("cursor", [1, 6, len(TINY_IDS) - 1])
def test_lens_last_layer_matches_model(request, name, cursor):
    w = request.getfixturevalue(name)
    result = LayerProbMode().compute(make_ctx(w, TINY_IDS, cursor))
    assert result.checks["lens_kl_last"] < 1e-5
    assert result.checks["max_prob_diff_last_layer_vs_trace"] < 1e-5
    L = w.n_layers
    assert len(result.layers["prob"]) == L + 1
    assert result.layers["kl_from_final"][-1] == pytest.approx(0.0, abs=1e-9)
    assert result.layers["prob"][-1] == pytest.approx(make_ctx(w, TINY_IDS).view.tokens[cursor].prob, abs=1e-5)


def test_lens_readouts_by_hand(tiny_gemma_wrapper):
    """Layer 1 of the tiny Gemma by hand: final norm, unembedding, soft-cap, softmax."""
    w = tiny_gemma_wrapper
    cap = capture_residuals(w, TINY_IDS, logit_positions=(5,))
    lens = lens_at_position(w, cap, 5, TINY_IDS[6])
    with torch.no_grad():
        z = w.model.lm_head(w.model.model.norm(cap.resid[1, 5])).double()
    c = w.config.final_logit_softcapping
    p = torch.softmax(c * torch.tanh(z / c), -1)
    assert lens.prob[1] == pytest.approx(float(p[TINY_IDS[6]]), rel=1e-5)
    assert lens.top1[1] == int(p.argmax())
    assert lens.rank[1] == int((p > p[TINY_IDS[6]]).sum()) + 1
    assert lens.entropy_bits[1] == pytest.approx(float(-(p * p.log()).sum() / math.log(2)), rel=1e-6)


def test_crystallisation_layer_definition(tiny_wrapper):
    cap = capture_residuals(tiny_wrapper, TINY_IDS, logit_positions=(9,))
    lens = lens_at_position(tiny_wrapper, cap, 9, TINY_IDS[10])
    c = lens.crystallisation
    assert c is not None  # the last layer always agrees with itself
    assert all(t == lens.top1[-1] for t in lens.top1[c:])
    assert c == 0 or lens.top1[c - 1] != lens.top1[-1]


def test_actual_token_probs_chunks_agree(tiny_wrapper, monkeypatch):
    cap = capture_residuals(tiny_wrapper, TINY_IDS)
    whole = actual_token_probs(tiny_wrapper, cap, [0, 2])
    monkeypatch.setattr("explorer.analyses.lens.ROWS_PER_CHUNK", 3)
    chunked = actual_token_probs(tiny_wrapper, cap, [0, 2])
    assert torch.isnan(whole[:, 0]).all()
    assert torch.allclose(whole[:, 1:], chunked[:, 1:], atol=1e-9)


@pytest.mark.parametrize("name", WRAPPERS)
def test_layer_correlation_normalisation(request, name):
    w = request.getfixturevalue(name)
    r = LayerCorrelationMode().compute(make_ctx(w, TINY_IDS, params={"layer": -1}))
    heat = r.extra["heatmap"]
    for i, (q_row, p_row) in enumerate(zip(heat["normalised"], heat["prob"])):
        if i == 0:
            assert all(v is None for v in q_row)
            continue
        peak = max(p_row)
        assert max(q_row) == pytest.approx(1.0)
        assert q_row == pytest.approx([p / peak for p in p_row])
    assert r.checks["lens_kl_last"] < 1e-5
    assert r.layers["pearson_with_final"][-1] == pytest.approx(1.0)


@pytest.mark.integration
def test_bundled_lens_matches_model(bundled_wrapper):
    ids = bundled_wrapper.encode("The capital of France is Paris")
    for cursor in (3, len(ids) - 1):
        r = LayerProbMode().compute(make_ctx(bundled_wrapper, ids, cursor))
        assert r.checks["lens_kl_last"] < 1e-5
        assert r.checks["max_prob_diff_last_layer_vs_trace"] < 1e-4
    assert r.extra["top1_text"][-1] == " Paris"
    assert r.extra["crystallisation_layer"] is not None


def test_rank_ties_are_broken_by_token_id(tiny_wrapper, monkeypatch):
    """Equal logits: the lower token id ranks first, for the rank and the top-1 alike."""
    cap = capture_residuals(tiny_wrapper, TINY_IDS)
    layers, vocab = cap.resid.shape[0], cap.logits.shape[-1]
    z = torch.zeros(layers, vocab)
    z[:, [4, 7, 9]] = 2.0  # a three-way tie at the top
    monkeypatch.setattr("explorer.analyses.lens.lens_logits", lambda _w, _r: z.clone())
    pos = len(TINY_IDS) - 1
    assert lens_at_position(tiny_wrapper, cap, pos, 4).rank == [1] * layers
    assert lens_at_position(tiny_wrapper, cap, pos, 7).rank == [2] * layers
    lens = lens_at_position(tiny_wrapper, cap, pos, 9)
    assert lens.rank == [3] * layers and lens.top1 == [4] * layers
    assert lens_at_position(tiny_wrapper, cap, pos, 0).rank == [4] * layers  # first of the zeros
