"""TL hook capture on raw HF models: each hook is where SCIENCE.md says, for Llama and Gemma 2."""

from __future__ import annotations

import pytest
import torch

from explorer.engine.sae.hooks import capture
from explorer.errors import AnalysisUnavailable

IDS = [1, 4, 5, 6, 7, 8, 9, 10]


def _hidden_states(wrapper):
    with torch.no_grad():
        out = wrapper.model(input_ids=torch.tensor([IDS]), output_hidden_states=True)
    return [h[0] for h in out.hidden_states]


@pytest.mark.parametrize("name", ["tiny_wrapper", "tiny_gemma_wrapper"])
def test_residual_hooks_match_hidden_states(name, request):
    w = request.getfixturevalue(name)
    hs = _hidden_states(w)
    last = w.n_layers - 1
    acts = capture(w, IDS, [f"blocks.{L}.{s}" for L in range(w.n_layers)
                            for s in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out",
                                      "hook_mlp_out", "ln2.hook_normalized", "mlp.hook_in", "attn.hook_z")])
    for L in range(w.n_layers):
        assert torch.allclose(acts[f"blocks.{L}.hook_resid_pre"], hs[L], atol=1e-5)
        # the residual stream adds the attention and MLP outputs (after Gemma's sandwich norms)
        assert torch.allclose(acts[f"blocks.{L}.hook_resid_mid"],
                              acts[f"blocks.{L}.hook_resid_pre"] + acts[f"blocks.{L}.hook_attn_out"], atol=1e-5)
        assert torch.allclose(acts[f"blocks.{L}.hook_resid_post"],
                              acts[f"blocks.{L}.hook_resid_mid"] + acts[f"blocks.{L}.hook_mlp_out"], atol=1e-5)
        layer = w.model.model.layers[L]
        norm = getattr(layer, "pre_feedforward_layernorm", None) or layer.post_attention_layernorm
        gain = (1.0 + norm.weight) if name == "tiny_gemma_wrapper" else norm.weight
        # ln2.hook_normalized is the MLP input with the norm's gain left out
        assert torch.allclose(acts[f"blocks.{L}.ln2.hook_normalized"] * gain, acts[f"blocks.{L}.mlp.hook_in"], atol=1e-5)
        assert acts[f"blocks.{L}.attn.hook_z"].shape == (len(IDS), 4 * 8)
    for L in range(last):
        assert torch.allclose(acts[f"blocks.{L}.hook_resid_post"], hs[L + 1], atol=1e-5)
    # The transformers-5 trap: hidden_states[-1] is already normed; resid_post of the last layer is not.
    final = acts[f"blocks.{last}.hook_resid_post"]
    assert not torch.allclose(final, hs[-1], atol=1e-3)
    assert torch.allclose(w.model.model.norm(final), hs[-1], atol=1e-5)


def test_capture_stops_early_and_rejects_bad_hooks(tiny_wrapper):
    calls = []
    handle = tiny_wrapper.model.model.layers[1].register_forward_hook(lambda *a: calls.append(1))
    try:
        capture(tiny_wrapper, IDS, ["blocks.0.hook_resid_post"])
    finally:
        handle.remove()
    assert calls == []  # layer 1 never ran
    with pytest.raises(AnalysisUnavailable, match="layers 0..1"):
        capture(tiny_wrapper, IDS, ["blocks.5.hook_resid_post"])
    with pytest.raises(AnalysisUnavailable, match="not a supported"):
        capture(tiny_wrapper, IDS, ["blocks.0.hook_nonsense"])
