"""Captures: residuals match HF hidden states (with the transformers-5 last-entry trap), sub-layer
identities hold, eager attention rows sum to 1 over the causal prefix, the implementation is restored."""

from __future__ import annotations

import pytest
import torch

from explorer.engine.capture import (capture_attentions, capture_residuals, eager_attention, input_embeddings,
                                     lens_logits)
from explorer.errors import AnalysisUnavailable

IDS = [1, 4, 5, 6, 7, 4, 8, 9, 10, 5, 6, 7, 11, 12]
WRAPPERS = ["tiny_wrapper", "tiny_gemma_wrapper"]


@pytest.mark.parametrize("name", WRAPPERS)
def test_residuals_match_hidden_states_and_last_is_pre_norm(request, name):
    w = request.getfixturevalue(name)
    cap = capture_residuals(w, IDS, sublayers=True)
    L = w.n_layers
    assert cap.resid.shape == (L + 1, len(IDS), w.config.hidden_size)
    with torch.no_grad():
        hs = w.model(torch.tensor([IDS]), output_hidden_states=True).hidden_states
    for layer in range(L):  # every entry but the last is the raw residual
        assert torch.allclose(hs[layer][0], cap.resid[layer], atol=1e-5)
    # transformers 5: hidden_states[-1] is the final-normed state; ours is pre-norm.
    with torch.no_grad():
        normed = w.model.model.norm(cap.resid[L])
    assert torch.allclose(hs[L][0], normed, atol=1e-5)
    assert not torch.allclose(hs[L][0], cap.resid[L], atol=1e-3)
    assert cap.identity_error() < 1e-6
    assert cap.attn_out.shape == cap.mlp_out.shape == cap.resid_mid.shape == (L, len(IDS), w.config.hidden_size)


@pytest.mark.parametrize("name", WRAPPERS)
def test_embeddings_are_what_block_zero_sees(request, name):
    w = request.getfixturevalue(name)
    cap = capture_residuals(w, IDS)
    assert torch.allclose(input_embeddings(w, IDS), cap.resid[0], atol=1e-6)


@pytest.mark.parametrize("name", WRAPPERS)
def test_lens_on_last_residual_is_the_model_output(request, name):
    w = request.getfixturevalue(name)
    cap = capture_residuals(w, IDS, logit_positions=tuple(range(len(IDS))))
    z = lens_logits(w, cap.resid[-1])  # [n, V]
    assert torch.allclose(z, cap.logits, atol=1e-4)
    if name == "tiny_gemma_wrapper":  # the soft-cap is applied: |z| < 30
        assert float(z.abs().max()) < 30.0


@pytest.mark.parametrize("name", WRAPPERS)
def test_eager_attention_rows_sum_to_one_over_causal_prefix(request, name):
    w = request.getfixturevalue(name)
    cap = capture_attentions(w, IDS, query=7)
    n = len(IDS)
    assert cap.mean.shape == (w.n_layers, n, n)
    assert cap.rows.shape == (w.n_layers, w.config.num_attention_heads, n)
    assert torch.allclose(cap.mean.sum(-1), torch.ones(w.n_layers, n), atol=1e-5)
    assert float(torch.triu(cap.mean, diagonal=1).abs().max()) == 0.0
    assert torch.allclose(cap.rows.sum(-1), torch.ones(w.n_layers, cap.n_heads), atol=1e-5)
    assert float(cap.rows[..., 8:].abs().max()) == 0.0
    assert torch.allclose(cap.rows.mean(1), cap.mean[:, 7], atol=1e-6)


def test_gemma_sliding_window_zeroes_far_keys(tiny_gemma_wrapper):
    cap = capture_attentions(tiny_gemma_wrapper, IDS)
    layer_types = tiny_gemma_wrapper.config.layer_types
    for layer, kind in enumerate(layer_types):
        far = cap.mean[layer, -1, : len(IDS) - 4]  # keys outside the window of 4
        if kind == "sliding_attention":
            assert float(far.abs().max()) == 0.0


def test_eager_switch_is_restored(tiny_tokenizer):
    from transformers import AutoModelForCausalLM, LlamaConfig

    from explorer.engine.model import ModelWrapper

    cfg = LlamaConfig(vocab_size=len(tiny_tokenizer.get_vocab()), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").eval()
    w = ModelWrapper(model, tiny_tokenizer, device="cpu")
    cap = capture_attentions(w, IDS)
    assert model.config._attn_implementation == "sdpa"
    assert torch.allclose(cap.mean.sum(-1), torch.ones(2, len(IDS)), atol=1e-5)
    with eager_attention(w):
        assert model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == "sdpa"


def test_model_without_layers_is_unavailable(tiny_tokenizer):
    from explorer.engine.model import ModelWrapper

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)
            self.config = type("C", (), {"num_hidden_layers": 1})()

        def get_output_embeddings(self):
            return self.lin

        def get_input_embeddings(self):
            return self.lin

    w = ModelWrapper(Odd(), tiny_tokenizer, device="cpu")
    with pytest.raises(AnalysisUnavailable, match="residual stream"):
        capture_residuals(w, IDS)
