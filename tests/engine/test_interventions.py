"""Interventions on the tiny Llama and Gemma 2: the self-checks of issue 11 / SCIENCE.md 5.11.

Every expected number is computed here independently (our own forward hooks on the real
modules, hidden states, plain tensor maths), never by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.engine.interventions.hooks import InterventionHooks
from explorer.engine.interventions.spec import Ablate, Clamp, Steer, from_json, to_json
from explorer.engine.layers import attention_heads, decoder_layers
from explorer.errors import InputError

IDS = [1, 4, 5, 6, 7, 8, 9, 10]  # "<bos> the cat sat on mat a dog"
WRAPPERS = ["tiny_wrapper", "tiny_gemma_wrapper"]


def logits(model, ids=IDS) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()  # [n, V]


def vec(d, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g) * scale


@pytest.fixture(params=WRAPPERS)
def w(request):
    return request.getfixturevalue(request.param)


# ------------------------------------------------------------------ strength 0
def _all_kinds(w, sae_path=None):
    d = w.model.config.hidden_size
    n_heads, head_dim = attention_heads(w.model)
    items = [Steer(layer=1, vector=tuple(vec(d).tolist()), strength=0.0),
             Ablate("head", 0, 2, strength=0.0), Ablate("mlp", 1, strength=0.0), Ablate("neuron", 0, 5, strength=0.0),
             Ablate("head", 1, 1, how="mean", mean=tuple([0.3] * head_dim), strength=0.0)]
    if sae_path is not None:
        items.append(Clamp(layer=1, feature=3, sae_path=str(sae_path), scale=1.0))  # clamp to its own value
    return items


def test_strength_zero_changes_no_logit(w, tmp_path):
    from tests.engine.sae_files import write_saelens

    write_saelens(tmp_path / "sae", hook="blocks.1.hook_resid_post")
    ref = logits(w.model)
    for item in _all_kinds(w, tmp_path / "sae"):
        with InterventionHooks(w.model, [item]):
            assert (logits(w.model) - ref).abs().max() <= 1e-5, item.describe()
    with InterventionHooks(w.model, _all_kinds(w, tmp_path / "sae")):  # and all composed
        assert (logits(w.model) - ref).abs().max() <= 1e-5


# ---------------------------------------------------------------------- steer
def test_steering_equals_an_independent_block_output_hook(w):
    d = w.model.config.hidden_size
    v = vec(d, seed=3)
    layer, alpha, start = 0, 2.5, 3

    def add(_m, _a, out):
        h = out[0] if isinstance(out, tuple) else out
        h = h.clone()
        h[:, start:] += alpha * v
        return (h, *out[1:]) if isinstance(out, tuple) else h

    handle = decoder_layers(w.model)[layer].register_forward_hook(add)
    try:
        expected = logits(w.model)
    finally:
        handle.remove()
    with InterventionHooks(w.model, [Steer(layer, tuple(v.tolist()), alpha, start=start)]):
        got = logits(w.model)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, logits(w.model), atol=1e-3)  # it did something
    # before `start` nothing changes
    assert torch.allclose(got[:start], logits(w.model)[:start], atol=1e-6)


def test_steering_from_a_position_holds_for_one_token_steps(w):
    """With a KV cache the hook must know absolute positions: stepwise = full pass."""
    d = w.model.config.hidden_size
    item = Steer(1, tuple(vec(d, seed=5).tolist()), 4.0, start=5)
    with InterventionHooks(w.model, [item]):
        full = logits(w.model)
        cache = w.new_cache()
        rows = [w.forward(IDS[:3], cache)]
        for t in IDS[3:]:
            rows.append(w.forward([t], cache))
    assert torch.allclose(torch.cat(rows), full, atol=1e-4)


# ------------------------------------------------------------------- ablation
def test_head_ablation_equals_zeroing_its_slice_before_o_proj(w):
    n_heads, head_dim = attention_heads(w.model)
    layer, head = 1, 2
    o_proj = decoder_layers(w.model)[layer].self_attn.o_proj

    def zero(_m, args):
        x = args[0].clone()
        x[..., head * head_dim:(head + 1) * head_dim] = 0.0
        return (x,)

    handle = o_proj.register_forward_pre_hook(zero)
    try:
        expected = logits(w.model)
    finally:
        handle.remove()
    with InterventionHooks(w.model, [Ablate("head", layer, head)]):
        got = logits(w.model)
    assert torch.allclose(got, expected, atol=1e-5)
    assert (got - logits(w.model)).abs().max() > 1e-4


def test_mean_neuron_and_mlp_ablation(w):
    layer, neuron = 0, 7
    down = decoder_layers(w.model)[layer].mlp.down_proj
    seen = {}
    h = down.register_forward_pre_hook(lambda _m, a: seen.__setitem__("x", a[0].detach().clone()))
    try:
        logits(w.model)
    finally:
        h.remove()
    mean = float(seen["x"][0, :, neuron].mean())

    def put(_m, args):
        x = args[0].clone()
        x[..., neuron] = mean
        return (x,)

    h = down.register_forward_pre_hook(put)
    try:
        expected = logits(w.model)
    finally:
        h.remove()
    with InterventionHooks(w.model, [Ablate("neuron", layer, neuron, how="mean", mean=(mean,))]):
        assert torch.allclose(logits(w.model), expected, atol=1e-5)
    # zero-ablating the whole MLP output: the block's output is resid_mid
    with InterventionHooks(w.model, [Ablate("mlp", 1)]):
        got = logits(w.model)
    assert (got - logits(w.model)).abs().max() > 1e-4


# ---------------------------------------------------------------------- clamp
def test_clamp_adds_the_feature_difference_times_its_decoder_row(tiny_wrapper, tmp_path):
    from explorer.engine.sae.formats.loader import load_sae
    from tests.engine.sae_files import write_saelens

    w = tiny_wrapper
    t = write_saelens(tmp_path / "sae", hook="blocks.1.hook_resid_post", apply_b_dec=True)
    sae = load_sae(tmp_path / "sae")
    f, value = 5, 3.0
    layer = decoder_layers(w.model)[1]

    def clamp(_m, _a, out):
        h = out[0] if isinstance(out, tuple) else out
        x = h[0]  # [n, d]
        a = torch.relu((x - t["b_dec"]) @ t["W_enc"] + t["b_enc"])[:, f]  # independent encode
        h = h + ((value - a)[:, None] * t["W_dec"][f][None, :])[None]
        return (h, *out[1:]) if isinstance(out, tuple) else h

    handle = layer.register_forward_hook(clamp)
    try:
        expected = logits(w.model)
    finally:
        handle.remove()
    with InterventionHooks(w.model, [Clamp(1, f, str(tmp_path / "sae"), value=value)], sae_loader=lambda *a: sae):
        got = logits(w.model)
    assert torch.allclose(got, expected, atol=1e-5)


# -------------------------------------------------------------- data and JSON
def test_interventions_round_trip_through_json():
    items = [Steer(1, (0.5, -1.0), 2.0, start=3, source="x.npy"), Ablate("head", 0, 1, how="mean", mean=(1.0, 2.0)),
             Clamp(1, 4, "/tmp/sae", scale=0.0, enabled=False)]
    import json

    assert from_json(json.loads(json.dumps(to_json(items)))) == items


@pytest.mark.parametrize("bad", [
    lambda: Steer(0, (1.0,), float("nan")),
    lambda: Steer(0, (1.0,), float("inf")),
    lambda: Ablate("head", 0, None),
    lambda: Ablate("attn", 0, 1),
    lambda: Clamp(0, 1, "p"),
])
def test_bad_specs_say_so(bad):
    with pytest.raises(InputError):
        bad()


def test_out_of_range_and_wrong_width_name_the_numbers(tiny_wrapper):
    m = tiny_wrapper.model
    with pytest.raises(InputError, match="layers 0..1"):
        InterventionHooks(m, [Ablate("mlp", 5)])
    with pytest.raises(InputError, match="heads 0..3"):
        InterventionHooks(m, [Ablate("head", 0, 4)])
    with pytest.raises(InputError, match="width 3.*width is 32"):
        InterventionHooks(m, [Steer(0, (1.0, 2.0, 3.0), source="v.npy")])


def test_a_model_without_layers_says_it_cannot_take_interventions():
    from explorer.engine.interventions.hooks import require_hookable
    from explorer.errors import AnalysisUnavailable

    class Remote(torch.nn.Module):  # no decoder layers to hook, like a remote or quantized backend
        pass

    with pytest.raises(AnalysisUnavailable, match="cannot take interventions"):
        require_hookable(Remote())
