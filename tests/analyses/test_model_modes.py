"""Attention, guiding tokens, similarity, residual and PCA modes checked against direct computations."""

from __future__ import annotations

import pytest
import torch

from explorer.analyses.attention import AttentionMode, attention_rollout
from explorer.analyses.embedding_pca import EmbeddingPcaMode, pca_2d
from explorer.analyses.guiding_tokens import GuidingTokensMode
from explorer.analyses.hidden_similarity import HiddenSimilarityMode
from explorer.analyses.local_bias import LocalBiasMode
from explorer.analyses.residual import ResidualMode
from explorer.errors import InputError
from tests.analyses.helpers import TINY_IDS, make_ctx

WRAPPERS = ["tiny_wrapper", "tiny_gemma_wrapper"]


def eager_attentions(model, ids):
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).float()  # [L, H, n, n]


@pytest.mark.parametrize("name", WRAPPERS)
def test_raw_attention_is_the_models_weights(request, name):
    w = request.getfixturevalue(name)
    ref = eager_attentions(w.model, TINY_IDS)  # tiny models are built eager
    t = 9
    r = AttentionMode().compute(make_ctx(w, TINY_IDS, t, {"method": "raw", "layer": 1, "head": 2}))
    assert r.values[: t + 1] == pytest.approx(ref[1, 2, t, : t + 1].tolist(), abs=1e-6)
    assert all(v is None for v in r.values[t + 1:])
    mean = AttentionMode().compute(make_ctx(w, TINY_IDS, t, {"method": "raw", "layer": 0}))
    assert mean.values[: t + 1] == pytest.approx(ref[0, :, t, : t + 1].mean(0).tolist(), abs=1e-6)
    assert sum(mean.values[: t + 1]) == pytest.approx(1.0, abs=1e-5)
    assert "attention, not importance" in r.legend


@pytest.mark.parametrize("name", WRAPPERS)
def test_rollout_by_hand_and_rows_sum_to_one(request, name):
    w = request.getfixturevalue(name)
    ref = eager_attentions(w.model, TINY_IDS).double().mean(1)  # [L, n, n]
    n = len(TINY_IDS)
    r_hand = torch.eye(n, dtype=torch.float64)
    for layer in ref:
        a = 0.5 * layer + 0.5 * torch.eye(n, dtype=torch.float64)
        r_hand = (a / a.sum(-1, keepdim=True)) @ r_hand
    rollout = attention_rollout(ref)
    assert torch.allclose(rollout, r_hand, atol=1e-12)
    assert torch.allclose(rollout.sum(-1), torch.ones(n, dtype=torch.float64), atol=1e-9)
    assert float(torch.triu(rollout, 1).abs().max()) == 0.0
    res = AttentionMode().compute(make_ctx(w, TINY_IDS))
    assert res.values == pytest.approx(r_hand[-1].tolist(), abs=1e-6)
    assert res.checks["rollout_row_sum_error"] < 1e-9
    assert res.checks["attention_row_sum_error"] < 1e-5
    assert res.checks["attention_future_mass"] == 0.0


def test_attention_layer_out_of_range_says_so(tiny_wrapper):
    with pytest.raises(InputError, match="out of range"):
        AttentionMode().compute(make_ctx(tiny_wrapper, TINY_IDS, params={"method": "raw", "layer": 7}))
    with pytest.raises(InputError, match="not known"):
        AttentionMode().compute(make_ctx(tiny_wrapper, TINY_IDS, params={"method": "importance"}))


def test_guiding_tokens_is_last_layer_head_mean(tiny_wrapper):
    ref = eager_attentions(tiny_wrapper.model, TINY_IDS)[-1].mean(0)[-1]  # [n]
    r = GuidingTokensMode().compute(make_ctx(tiny_wrapper, TINY_IDS))
    assert r.values == pytest.approx(ref.tolist(), abs=1e-6)
    ranked = r.extra["ranked"]
    assert [row["score"] for row in ranked] == sorted((row["score"] for row in ranked), reverse=True)
    assert ranked[0]["index"] == int(ref.argmax())


def hook_residuals(model, ids):
    """Block outputs through our own hooks, independent of explorer.engine.capture."""
    outs, handles = [], []
    for layer in model.model.layers:
        handles.append(layer.register_forward_hook(lambda m, i, o: outs.append(o[0] if isinstance(o, tuple) else o)))
    with torch.no_grad():
        emb = model.get_input_embeddings()(torch.tensor([ids]))
        model(torch.tensor([ids]))
    for h in handles:
        h.remove()
    return [emb[0]] + [o[0] for o in outs]  # L+1 tensors [n, d]


@pytest.mark.parametrize("name", WRAPPERS)
def test_residual_norms_match_direct_hooks(request, name):
    w = request.getfixturevalue(name)
    resid = hook_residuals(w.model, TINY_IDS)
    t = 5
    r = ResidualMode().compute(make_ctx(w, TINY_IDS, t))
    assert r.layers["resid_norm"] == pytest.approx([float(x[t].norm()) for x in resid], rel=1e-5)
    assert r.values == pytest.approx(resid[-1].norm(dim=-1).tolist(), rel=1e-5)
    heat = r.extra["heatmap"]["values"]
    assert len(heat) == len(TINY_IDS) and len(heat[0]) == w.n_layers + 1
    assert r.checks["sublayer_identity_error"] < 1e-6
    # sub-layer outputs from hooks on the real modules
    sub = []
    layer0 = w.model.model.layers[0]
    module = layer0.post_attention_layernorm if name == "tiny_gemma_wrapper" else layer0.self_attn
    h = module.register_forward_hook(lambda m, i, o: sub.append(o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():
        w.model(torch.tensor([TINY_IDS]))
    h.remove()
    assert r.layers["attn_out_norm"][0] == pytest.approx(float(sub[0][0, t].norm()), rel=1e-5)
    shares = r.layers["attn_share"]
    assert all(0.0 <= s <= 1.0 for s in shares)


@pytest.mark.parametrize("name", WRAPPERS)
def test_residual_contributions_sum_to_one(request, name):
    w = request.getfixturevalue(name)
    t = 6
    r = ResidualMode().compute(make_ctx(w, TINY_IDS, t, {"threshold": 0.0}))
    assert r.checks["head_source_identity_error"] < 1e-4
    for c in r.extra["contributions"]:
        if c["degenerate"]:
            assert c["residual"] is None and c["heads"] is None
            continue
        total = c["residual"] + sum(c["heads"]) + (c["o_proj_bias"] or 0.0)
        assert total == pytest.approx(1.0, abs=1e-9)
        assert sum(c["sources"]) == pytest.approx(sum(c["heads"]), abs=1e-9) and len(c["sources"]) == t + 1
        assert 0.0 <= c["mlp"] <= 1.0
    cut = ResidualMode().compute(make_ctx(w, TINY_IDS, t, {"threshold": 0.3}))
    for c in cut.extra["contributions"]:
        if not c["degenerate"]:
            shares = [c["residual"], *c["heads"]]
            assert sum(shares) + (c["o_proj_bias"] or 0.0) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(InputError):
        ResidualMode().compute(make_ctx(w, TINY_IDS, t, {"threshold": 2}))


def test_residual_without_a_head_split_keeps_its_norms(tiny_wrapper, monkeypatch):
    from explorer.errors import AnalysisUnavailable

    def unavailable(*_a, **_k):
        raise AnalysisUnavailable("No v_proj here.")

    monkeypatch.setattr("explorer.engine.contributions.attention_terms", unavailable)
    r = ResidualMode().compute(make_ctx(tiny_wrapper, TINY_IDS, 4))
    assert r.extra["contributions"] == [] and r.extra["contributions_unavailable"] == "No v_proj here."
    assert "head_source_identity_error" not in r.checks and r.layers["resid_norm"]
    assert any("contributions unavailable: No v_proj here." in d for d in r.details)


@pytest.mark.parametrize("name", WRAPPERS)
def test_hidden_similarity_last_layer_is_one(request, name):
    w = request.getfixturevalue(name)
    r = HiddenSimilarityMode().compute(make_ctx(w, TINY_IDS, 4, {"layer": -1}))
    assert r.layers["cosine_to_final"][-1] == pytest.approx(1.0, abs=1e-12)
    assert r.checks["last_layer_self_similarity_error"] < 1e-12
    assert all(v == pytest.approx(1.0, abs=1e-12) for v in r.values)
    resid = hook_residuals(w.model, TINY_IDS)
    cos0 = torch.nn.functional.cosine_similarity(resid[0][4].double(), resid[-1][4].double(), dim=0)
    assert r.layers["cosine_to_final"][0] == pytest.approx(float(cos0), abs=1e-6)


def test_local_bias_is_cosine_with_cursor(tiny_wrapper):
    resid = hook_residuals(tiny_wrapper.model, TINY_IDS)[-1].double()
    t = 6
    r = LocalBiasMode().compute(make_ctx(tiny_wrapper, TINY_IDS, t))
    ref = torch.nn.functional.cosine_similarity(resid, resid[t].expand_as(resid), dim=-1)
    assert r.values == pytest.approx(ref.tolist(), abs=1e-6)
    assert r.values[t] == pytest.approx(1.0, abs=1e-12)


def test_pca_by_hand(tiny_wrapper):
    r = EmbeddingPcaMode().compute(make_ctx(tiny_wrapper, TINY_IDS))
    emb = tiny_wrapper.model.get_input_embeddings().weight[TINY_IDS].detach().double()
    xc = emb - emb.mean(0)
    coords = torch.tensor(r.extra["coords"])
    # Same variance along each axis as the top principal components, and axes orthogonal.
    eig = torch.linalg.eigvalsh(xc.T @ xc).flip(0)
    assert float((coords[:, 0] ** 2).sum()) == pytest.approx(float(eig[0]), rel=1e-6)
    assert float((coords[:, 1] ** 2).sum()) == pytest.approx(float(eig[1]), rel=1e-6)
    assert float(coords[:, 0] @ coords[:, 1]) == pytest.approx(0.0, abs=1e-9)
    assert r.extra["explained_variance_ratio"][0] == pytest.approx(float(eig[0] / eig.sum()), rel=1e-6)
    again, _ = pca_2d(emb)
    assert torch.allclose(again, coords.double(), atol=1e-9)  # deterministic orientation
