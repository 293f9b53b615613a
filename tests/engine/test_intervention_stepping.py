"""Stepping, generation and the session with interventions on; vector files; patching self-checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.engine.interventions.hooks import InterventionHooks
from explorer.engine.interventions.paired import PairedTrace, build_effect
from explorer.engine.interventions.patching import (attribution_patching, exact_patching, make_setup, patched_logits)
from explorer.engine.interventions.spec import Ablate, Steer
from explorer.engine.interventions.vectors import diff_of_means, load_vector
from explorer.engine.layers import decoder_layers
from explorer.engine.trace import Trace
from explorer.errors import InputError

IDS = [1, 4, 5, 6, 7, 8, 9, 10]
WRAPPERS = ["tiny_wrapper", "tiny_gemma_wrapper"]


@pytest.fixture(params=WRAPPERS)
def w(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def session(tiny_session):
    """The tiny session; its interventions are switched off afterwards (the model fixture is shared)."""
    yield tiny_session
    tiny_session.set_interventions([])


def steer(w, seed=1, alpha=3.0, start=0, layer=0):
    g = torch.Generator().manual_seed(seed)
    return Steer(layer, tuple(torch.randn(w.model.config.hidden_size, generator=g).tolist()), alpha, start=start)


def kl(p_logits, q_logits):
    lp, lq = torch.log_softmax(p_logits.double(), -1), torch.log_softmax(q_logits.double(), -1)
    return float((lp.exp() * (lp - lq)).sum())


# --------------------------------------------------------------- paired stepping
def test_batch_of_two_equals_two_separate_runs(w):
    items = [steer(w, start=4), Ablate("head", 1, 0)]
    base = Trace(w)
    for t in IDS:
        base.extend([t])
    with InterventionHooks(w.model, items) as hooks:
        inter = Trace(w)
        for t in IDS:
            inter.extend([t])
        paired = PairedTrace(w, hooks)
        paired.extend(IDS[:3])
        for t in IDS[3:]:
            paired.extend([t])
    assert paired.forward_calls == 1 + len(IDS) - 3  # one (batched) pass per keystroke
    assert torch.allclose(paired.base.last_row(), base.last_row(), atol=1e-4)
    assert torch.allclose(paired.intervened.last_row(), inter.last_row(), atol=1e-4)
    for i in range(1, len(IDS)):
        assert paired.base.actual_logit[i] == pytest.approx(base.actual_logit[i], abs=1e-4)
        assert paired.intervened.actual_logit[i] == pytest.approx(inter.actual_logit[i], abs=1e-4)
    assert paired.kl[-1] == pytest.approx(kl(inter.last_row(), base.last_row()), abs=1e-4)
    # a pop crops both rows; stepping again matches a fresh run
    paired.sync(IDS[:5])
    with InterventionHooks(w.model, items):
        ref = Trace(w)
        ref.extend(IDS[:5])
    assert torch.allclose(paired.intervened.last_row(), ref.last_row(), atol=1e-4)


def test_changed_interventions_rebuild_once(w):
    with InterventionHooks(w.model, [steer(w, alpha=1.0)]) as h1:
        paired = PairedTrace(w, h1)
        paired.sync(IDS)
    with InterventionHooks(w.model, [steer(w, alpha=2.0)]) as h2:
        paired.hooks = h2
        paired.sync(IDS)
        assert paired.rebuilds == 1
        ref = Trace(w)
        ref.extend(IDS)
    assert torch.allclose(paired.intervened.last_row(), ref.last_row(), atol=1e-4)


def test_effect_view_numbers(tiny_wrapper):
    w = tiny_wrapper
    with InterventionHooks(w.model, [steer(w, alpha=5.0)]) as hooks:
        paired = PairedTrace(w, hooks)
        paired.sync(IDS)
    view = build_effect(paired, 5)
    pb = torch.softmax(paired.base.last_row().double(), -1)
    pi = torch.softmax(paired.intervened.last_row().double(), -1)
    top = int(pi.argmax())
    assert view.rows[0].id == top
    assert view.rows[0].delta_p == pytest.approx(float(pi[top] - pb[top]), abs=1e-5)
    assert view.kl_next == pytest.approx(float((pi * (pi.log() - pb.log())).sum()), abs=1e-4)
    assert len(view.kl_per_token) == len(IDS)


def test_session_with_interventions_uses_one_batched_pass_and_generation_sees_them(session):
    from explorer.engine.decoding.generate import generate

    s = session
    w = s.wrapper
    plain = s.compute()
    assert plain.effect is None
    item = steer(w, alpha=2.0, layer=1)
    s.set_interventions([item])
    view = s.compute()
    assert view.effect is not None and view.effect.kl_next > 0
    assert view.effect.interventions == (item.describe(),)
    # the table's base numbers equal the untouched run
    base_top = view.effect.baseline_rows[0]
    assert base_top.id == plain.candidates[0].id
    assert base_top.base_p == pytest.approx(plain.candidates[0].prob, abs=1e-5)
    # generation runs on the intervened model while interventions are on
    steered = generate(w, list(view.ids), 4)
    row = s._paired[s.current.uid].intervened.last_row()  # the batched stepper's intervened row
    assert steered.steps[0].logprob == pytest.approx(
        float(torch.log_softmax(row, -1)[steered.steps[0].token_id]), abs=2e-4)
    s.append(view.candidates[0].id)
    paired = s._paired[s.current.uid]
    calls = paired.forward_calls
    s.compute()
    assert paired.forward_calls == calls + 1
    s.set_interventions([])
    off = s.compute()
    assert off.effect is None
    untouched = generate(w, list(view.ids), 4)
    assert untouched.steps[0].logprob != pytest.approx(steered.steps[0].logprob, abs=1e-4)


def test_bad_intervention_changes_nothing(session):
    s = session
    s.set_interventions([steer(s.wrapper)])
    before = s.interventions
    with pytest.raises(InputError):
        s.set_interventions([Ablate("head", 0, 99)])
    assert s.interventions == before and s._hooks is not None


# ---------------------------------------------------------------- vector files
def test_vector_files_safetensors_npy_and_gguf_sign_and_layer(tiny_wrapper, tmp_path):
    import gguf
    from safetensors.torch import save_file

    w = tiny_wrapper
    d = w.model.config.hidden_size
    v1, v0 = torch.arange(d, dtype=torch.float32) / d, -torch.ones(d)
    save_file({"layer.0": v0, "layer.1": v1}, str(tmp_path / "per_layer.safetensors"))
    np.save(tmp_path / "one.npy", v1.numpy())
    np.save(tmp_path / "rows.npy", torch.stack([v0, v1]).numpy())
    writer = gguf.GGUFWriter(str(tmp_path / "cv.gguf"), "controlvector")
    writer.add_uint32("controlvector.layer_count", 1)
    writer.add_tensor("direction.1", v1.numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    for name in ("per_layer.safetensors", "one.npy", "rows.npy", "cv.gguf"):
        assert torch.equal(load_vector(tmp_path / name, 1, d), v1), name
    assert torch.equal(load_vector(tmp_path / "per_layer.safetensors", 0, d), v0)
    # llama.cpp adds direction.L (+) to the output of layer L: our steer at layer 1 does exactly that
    layer = decoder_layers(w.model)[1]
    handle = layer.register_forward_hook(lambda _m, _a, out: out + v1)
    try:
        with torch.no_grad():
            expected = w.model(input_ids=torch.tensor([IDS])).logits
    finally:
        handle.remove()
    with InterventionHooks(w.model, [Steer(1, tuple(load_vector(tmp_path / "cv.gguf", 1, d).tolist()))]):
        with torch.no_grad():
            got = w.model(input_ids=torch.tensor([IDS])).logits
    assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(InputError, match="no vector for layer 0"):
        load_vector(tmp_path / "cv.gguf", 0, d)
    np.save(tmp_path / "narrow.npy", np.ones(7, dtype=np.float32))
    with pytest.raises(InputError, match=r"narrow.npy.*width 7.*width is 32"):
        load_vector(tmp_path / "narrow.npy", 0, d)
    (tmp_path / "v.txt").write_text("1 2 3")
    with pytest.raises(InputError, match="no vector format"):
        load_vector(tmp_path / "v.txt", 0, d)


def test_diff_of_means_equals_the_mean_difference_of_last_token_residuals(w):
    pos, neg = ["the cat sat", "a dog ran on the mat"], ["the dog", "a cat sat on", "the mat"]
    layer = 0
    v, meta = diff_of_means(w, pos, neg, layer)

    def last(text):
        with torch.no_grad():
            out = w.model(input_ids=torch.tensor([w.encode(text)]), output_hidden_states=True)
        return out.hidden_states[layer + 1][0, -1].float()  # output of block `layer` (not the last block)

    expected = torch.stack([last(t) for t in pos]).mean(0) - torch.stack([last(t) for t in neg]).mean(0)
    assert torch.allclose(v, expected, atol=1e-5)
    assert meta["position"] == "last token"


# ------------------------------------------------------------------- patching
def test_patching_whole_first_residual_reproduces_the_clean_logits(w):
    a, b = [1, 4, 5, 6, 7], [1, 11, 12, 13, 8]
    setup = make_setup(w, clean_ids=b, corrupt_ids=a, target=9, contrast=10, site="resid")
    with torch.no_grad():
        la = w.model(input_ids=torch.tensor([a])).logits[0].float()
        lb = w.model(input_ids=torch.tensor([b])).logits[0].float()
    assert torch.allclose(patched_logits(w, setup, 0, list(range(5))), lb, atol=1e-5)
    assert torch.allclose(patched_logits(w, setup, 0, []), la, atol=1e-6)


@pytest.mark.parametrize("site", ["resid", "attn", "mlp"])
def test_patching_a_run_with_itself_returns_the_unpatched_metric(tiny_wrapper, site):
    w = tiny_wrapper
    setup = make_setup(w, IDS, IDS, target=9, contrast=None, site=site)
    res = exact_patching(w, setup)
    assert res.clean == res.corrupt
    assert all(abs(c - res.clean) <= 1e-5 for row in res.grid for c in row)
    att = attribution_patching(w, setup)
    assert all(abs(c - res.clean) <= 1e-6 for row in att.grid for c in row)


def test_exact_patching_grid_matches_single_cells_and_stops_on_request(w):
    from explorer.engine.interventions.patching import exact_cell

    clean, corrupt = [1, 4, 5, 6, 7, 8], [1, 4, 11, 6, 7, 8]
    setup = make_setup(w, clean, corrupt, target=9, contrast=10, site="resid")
    progress = []
    res = exact_patching(w, setup, on_progress=lambda d, t: progress.append((d, t)))
    assert progress[-1] == (12, 12)
    assert res.grid[1][2] == pytest.approx(exact_cell(w, setup, 1, 2), abs=1e-5)
    # positions where the prompts agree and before the change: patching changes nothing
    assert res.grid[0][0] == pytest.approx(res.corrupt, abs=1e-5)
    # layer 0, position 2 (the only differing token) restores the clean metric in full
    assert res.grid[0][2] == pytest.approx(res.clean, abs=1e-4)
    stopped = exact_patching(w, setup, should_stop=lambda: True)
    assert not stopped.complete and stopped.grid[0][0] is None


def test_different_lengths_align_from_the_end(tiny_wrapper):
    setup = make_setup(tiny_wrapper, [1, 4, 5, 6, 7, 8], [1, 6, 7, 8], target=9, contrast=None, site="mlp")
    res = exact_patching(tiny_wrapper, setup)
    assert res.aligned == "from the end" and res.positions == [0, 1, 2, 3]
    assert len(res.grid[0]) == 4


def test_attribution_cell_is_the_directional_derivative(tiny_wrapper):
    """(a_clean − a_corr)·∂m/∂a checked by a central finite difference along the same direction."""
    from explorer.engine.interventions.patching import site_activations

    w = tiny_wrapper
    clean, corrupt = [1, 4, 5, 6, 7, 8], [1, 4, 11, 6, 7, 8]
    setup = make_setup(w, clean, corrupt, target=9, contrast=10, site="resid")
    att = attribution_patching(w, setup)
    acts_c = site_activations(w, clean, "resid")
    acts_k = site_activations(w, corrupt, "resid")
    layer, pos, eps = 1, 2, 1e-3
    delta = acts_c[layer, pos] - acts_k[layer, pos]  # [d]

    def metric(shift):
        def hook(_m, args, kwargs):
            x = (args[0] if args else kwargs["hidden_states"]).clone()
            x[0, pos] += shift * delta
            return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})
        h = decoder_layers(w.model)[layer].register_forward_pre_hook(hook, with_kwargs=True)
        try:
            with torch.no_grad():
                z = w.model(input_ids=torch.tensor([corrupt])).logits[0, -1].double()
        finally:
            h.remove()
        return float(z[9] - z[10])

    derivative = (metric(eps) - metric(-eps)) / (2 * eps)
    assert att.grid[layer][pos] - att.corrupt == pytest.approx(derivative, rel=1e-2, abs=1e-4)


def test_attribution_on_gemma_reports_the_true_corrupted_metric(tiny_gemma_wrapper):
    """The corrupted value comes from the embeddings path of the backward pass: it must equal a plain run."""
    w = tiny_gemma_wrapper
    clean, corrupt = [1, 4, 5, 6, 7, 8], [1, 4, 11, 6, 7, 8]
    setup = make_setup(w, clean, corrupt, target=9, contrast=10, site="mlp")
    att = attribution_patching(w, setup)
    with torch.no_grad():
        z = w.model(input_ids=torch.tensor([corrupt])).logits[0, -1]
    assert att.corrupt == pytest.approx(float(z[9] - z[10]), abs=1e-5)
