"""Every supported SAE / transcoder format: written synthetically, loaded, checked against a direct computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.engine.sae.base import SaeLoadError, fvu
from explorer.engine.sae.formats.clt import CrossLayerTranscoder
from explorer.engine.sae.features import cross_layer_contributions, compute_clt_features
from explorer.engine.sae.formats.loader import detect_format, load_sae
from tests.engine.sae_files import (rand, write_circuit_tracer, write_clt, write_gemma_scope, write_gemma_scope_2,
                                    write_saelens, write_sparsify)

X = rand(7, 32, seed=99, scale=1.0)  # [n, d]


def relu(t):
    return torch.clamp(t, min=0)


# --------------------------------------------------------------------------- SAELens
def test_saelens_standard_subtracts_b_dec_and_round_trips(tmp_path):
    t = write_saelens(tmp_path / "s")
    assert detect_format(tmp_path / "s") == "saelens"
    sae = load_sae(tmp_path / "s")
    assert (sae.d_in, sae.d_sae, sae.hook_in, sae.activation) == (32, 64, "blocks.1.hook_resid_post", "relu")
    f_ref = relu((X - t["b_dec"]) @ t["W_enc"] + t["b_enc"])
    f, x_hat = sae.forward(X)
    assert torch.allclose(f, f_ref, atol=1e-5)
    assert torch.allclose(x_hat, f_ref @ t["W_dec"] + t["b_dec"], atol=1e-5)


def test_saelens_pre_6_config_is_renamed(tmp_path):
    t = write_saelens(tmp_path / "old", k=5, pre6=True, hook="blocks.0.hook_resid_pre")
    sae = load_sae(tmp_path / "old")
    assert sae.hook_in == "blocks.0.hook_resid_pre" and sae.activation == "topk" and sae.k == 5
    assert sae.normalize == "none"
    pre = (X - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
    f = sae.encode(X)
    assert ((f != 0).sum(-1) <= 5).all()
    vals, idx = pre.topk(5, dim=-1)
    assert torch.allclose(f.gather(-1, idx), relu(vals), atol=1e-5)


def test_saelens_jumprelu_threshold_gates_each_feature(tmp_path):
    t = write_saelens(tmp_path / "j", arch="jumprelu", apply_b_dec=False)
    sae = load_sae(tmp_path / "j")
    pre = X @ t["W_enc"] + t["b_enc"]
    expected = relu(pre) * (pre > t["threshold"])
    f = sae.encode(X)
    assert torch.allclose(f, expected, atol=1e-6)
    # features above 0 but under their threshold are off: the threshold matters
    assert ((pre > 0) & (pre <= t["threshold"])).any()
    assert (f[(pre > 0) & (pre <= t["threshold"])] == 0).all()


def test_saelens_skip_transcoder_adds_x_W_skip_T(tmp_path):
    t = write_saelens(tmp_path / "tc", arch="skip_transcoder", skip=True, hook="blocks.1.ln2.hook_normalized",
                      hook_out="blocks.1.hook_mlp_out", apply_b_dec=False)
    sae = load_sae(tmp_path / "tc")
    assert sae.is_transcoder and sae.hook_out == "blocks.1.hook_mlp_out"
    f = relu(X @ t["W_enc"] + t["b_enc"])
    _, y_hat = sae.forward(X)
    assert torch.allclose(y_hat, f @ t["W_dec"] + t["b_dec"] + X @ t["W_skip"].T, atol=1e-5)


@pytest.mark.parametrize("norm", ["constant_norm_rescale", "layer_norm"])
def test_saelens_input_normalisation_is_undone_on_the_output(tmp_path, norm):
    t = write_saelens(tmp_path / norm, normalize=norm, apply_b_dec=False)
    sae = load_sae(tmp_path / norm)
    if norm == "constant_norm_rescale":
        c = 32 ** 0.5 / X.norm(dim=-1, keepdim=True)
        xn, undo = X * c, (lambda y: y / c)
    else:
        mu = X.mean(-1, keepdim=True)
        std = (X - mu).std(-1, keepdim=True)
        xn, undo = (X - mu) / (std + 1e-5), (lambda y: y * std + mu)
    f = relu(xn @ t["W_enc"] + t["b_enc"])
    got_f, got_y = sae.forward(X)
    assert torch.allclose(got_f, f, atol=1e-5)
    assert torch.allclose(got_y, undo(f @ t["W_dec"] + t["b_dec"]), atol=1e-4)


# ------------------------------------------------------------------------ Gemma Scope
def test_gemma_scope_1_npz_jumprelu_without_b_dec_subtraction(tmp_path):
    p = tmp_path / "gemma-scope-2b-pt-res" / "layer_1" / "width_16k" / "average_l0_82" / "params.npz"
    t = write_gemma_scope(p)
    assert detect_format(p) == "gemma_scope"
    sae = load_sae(p)
    assert sae.hook_in == "blocks.1.hook_resid_post" and not sae.apply_b_dec_to_input
    pre = X @ t["W_enc"] + t["b_enc"]  # no b_dec subtraction (the Gemma Scope trap)
    f = relu(pre) * (pre > t["threshold"])
    got_f, got_y = sae.forward(X)
    assert torch.allclose(got_f, f, atol=1e-6)
    assert torch.allclose(got_y, f @ t["W_dec"] + t["b_dec"], atol=1e-5)


def test_gemma_scope_transcoder_reads_the_normalised_mlp_input(tmp_path):
    p = tmp_path / "gemma-scope-2b-pt-transcoders" / "layer_0" / "width_16k" / "average_l0_76" / "params.npz"
    write_gemma_scope(p)
    sae = load_sae(p)
    assert (sae.hook_in, sae.hook_out) == ("blocks.0.ln2.hook_normalized", "blocks.0.hook_mlp_out")


def test_gemma_scope_npz_with_pickled_objects_is_refused(tmp_path):
    p = tmp_path / "layer_1" / "params.npz"
    p.parent.mkdir(parents=True)
    np.savez(str(p), W_enc=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(SaeLoadError, match="pickled"):
        load_sae(p, hook="blocks.1.hook_resid_post")


@pytest.mark.parametrize("truth", ["circuit_tracer", "saelens"])
def test_gemma_scope_2_skip_orientation_is_resolved_by_reconstruction_error(tmp_path, truth):
    p = tmp_path / "transcoder" / "layer_1_width_16k_l0_small" / "params.safetensors"
    t = write_gemma_scope_2(p, skip=True)
    assert detect_format(p) == "gemma_scope_2"
    sae = load_sae(p)
    assert sae.skip_ambiguous and sae.hook_out == "blocks.1.hook_mlp_out"
    pre = X @ t["w_enc"] + t["b_enc"]
    f = relu(pre) * (pre > t["threshold"])
    A = t["affine_skip_connection"]
    # circuit-tracer: W_skip = A.T, adds x @ W_skip.T = x @ A; SAELens: W_skip = A, adds x @ A.T
    skip = X @ A if truth == "circuit_tracer" else X @ A.T
    y = f @ t["w_dec"] + t["b_dec"] + skip
    errs = sae.resolve_skip(X, y)
    assert not sae.skip_ambiguous
    assert sae.metadata["skip_orientation"] == ("transposed" if truth == "circuit_tracer" else "as_stored")
    assert min(errs.values()) < 1e-6 < max(errs.values())
    assert torch.allclose(sae.forward(X)[1], y, atol=1e-5)


# ------------------------------------------------------------------------ circuit-tracer
@pytest.mark.parametrize("skip", [False, True])
def test_circuit_tracer_per_layer_transcoder(tmp_path, skip):
    t = write_circuit_tracer(tmp_path / "ct", skip=skip)
    p = tmp_path / "ct" / "layer_1.safetensors"
    assert detect_format(p) == "circuit_tracer"
    sae = load_sae(p)
    assert (sae.hook_in, sae.hook_out) == ("blocks.1.hook_resid_mid", "blocks.1.hook_mlp_out")
    assert sae.W_enc.shape == (32, 64)  # stored [d_tc, d_model], held in SAELens orientation
    pre = X @ t["W_enc"].T + t["b_enc"]
    f = pre * (pre > t["activation_function.threshold"])
    y = f @ t["W_dec"] + t["b_dec"] + (X @ t["W_skip"].T if skip else 0)
    got_f, got_y = sae.forward(X)
    assert torch.allclose(got_f, f, atol=1e-6)
    assert torch.allclose(got_y, y, atol=1e-5)
    assert (sae.W_skip is not None) == skip


def test_circuit_tracer_without_config_reads_mlp_input_and_relu(tmp_path):
    write_circuit_tracer(tmp_path / "ct", layer=0, jumprelu=False, config=False)
    sae = load_sae(tmp_path / "ct", layer=0)
    assert (sae.hook_in, sae.hook_out, sae.activation) == ("blocks.0.mlp.hook_in", "blocks.0.mlp.hook_out", "relu")


def test_circuit_tracer_in_saelens_orientation_is_a_one_sentence_error(tmp_path):
    write_circuit_tracer(tmp_path / "ct", transposed=True)
    with pytest.raises(SaeLoadError) as exc:
        load_sae(tmp_path / "ct" / "layer_1.safetensors")
    msg = str(exc.value)
    assert "layer_1.safetensors" in msg and "W_enc has shape [32, 64], expected [64, 32]" in msg
    assert "transposed" in msg and "\n" not in msg and msg.endswith(".")


def test_cross_layer_transcoder_reconstruction_and_contributions(tmp_path):
    t = write_clt(tmp_path / "clt", n_layers=2)
    assert detect_format(tmp_path / "clt") == "circuit_tracer_clt"
    clt = load_sae(tmp_path / "clt")
    assert isinstance(clt, CrossLayerTranscoder) and (clt.n_layers, clt.d_tc, clt.d_model) == (2, 16, 32)
    x0, x1 = rand(5, 32, seed=1, scale=1.0), rand(5, 32, seed=2, scale=1.0)
    feats = {}
    for i, x in enumerate((x0, x1)):
        pre = x @ t[f"W_enc_{i}"].T + t[f"b_enc_{i}"]
        feats[i] = pre * (pre > t[f"threshold_{i}"])
        assert torch.allclose(clt.encode_layer(i, x), feats[i], atol=1e-6)
    # layer 1's MLP output gets layer 0's features through W_dec_0[:, 1] and its own through W_dec_1[:, 0]
    y1 = feats[0] @ t["W_dec_0"][:, 1, :] + feats[1] @ t["W_dec_1"][:, 0, :] + t["b_dec_1"]
    assert torch.allclose(clt.reconstruct(1, feats), y1, atol=1e-5)
    y0 = feats[0] @ t["W_dec_0"][:, 0, :] + t["b_dec_0"]
    assert torch.allclose(clt.reconstruct(0, {0: feats[0]}), y0, atol=1e-5)


def test_cross_layer_contributions_sum_to_the_reconstruction(tmp_path, tiny_wrapper):
    write_clt(tmp_path / "clt", n_layers=2, jumprelu=False)
    clt = load_sae(tmp_path / "clt")
    ids = [1, 4, 5, 6, 7, 8]
    pf = compute_clt_features(tiny_wrapper, clt, ids, layer=1)
    assert set(pf.sources) == {0}
    contribs, bias_share = cross_layer_contributions(clt, pf, t=3)
    assert {c.layer for c in contribs} <= {0, 1} and any(c.layer == 0 for c in contribs)
    assert abs(sum(c.share for c in contribs) + bias_share - 1.0) < 1e-4


# ------------------------------------------------------------------------ sparsify
@pytest.mark.parametrize("activation", ["topk", "groupmax"])
def test_sparsify_topk_and_groupmax(tmp_path, activation):
    folder = tmp_path / "layers.1"
    t = write_sparsify(folder, activation=activation)
    assert detect_format(folder) == "sparsify"
    sae = load_sae(folder)
    assert sae.hook_in == "blocks.1.hook_resid_post" and sae.apply_b_dec_to_input
    pre = relu((X - t["b_dec"]) @ t["encoder.weight"].T + t["encoder.bias"])  # [n, 64]
    if activation == "topk":
        vals, idx = pre.topk(4, dim=-1)
    else:
        vals, idx = pre.view(7, 4, 16).max(dim=-1)
        idx = idx + torch.arange(4) * 16
    f = torch.zeros_like(pre).scatter_(-1, idx, vals)
    got_f, got_y = sae.forward(X)
    assert torch.allclose(got_f, f, atol=1e-6)
    assert torch.allclose(got_y, f @ t["W_dec"] + t["b_dec"], atol=1e-5)


def test_sparsify_transcoder_does_not_subtract_b_dec(tmp_path):
    t = write_sparsify(tmp_path / "layers.0.mlp", transcode=True, skip=True)
    sae = load_sae(tmp_path / "layers.0.mlp")
    assert (sae.hook_in, sae.hook_out) == ("blocks.0.mlp.hook_in", "blocks.0.mlp.hook_out")
    pre = relu(X @ t["encoder.weight"].T + t["encoder.bias"])
    vals, idx = pre.topk(4, dim=-1)
    f = torch.zeros_like(pre).scatter_(-1, idx, vals)
    assert torch.allclose(sae.forward(X)[1], f @ t["W_dec"] + t["b_dec"] + X @ t["W_skip"].T, atol=1e-5)


# ------------------------------------------------------------------------ errors, metrics
def test_missing_tensor_is_one_sentence_naming_file_and_shape(tmp_path):
    from safetensors.torch import save_file

    write_saelens(tmp_path / "s")
    save_file({"W_enc": rand(32, 64)}, str(tmp_path / "s" / "sae_weights.safetensors"))
    with pytest.raises(SaeLoadError) as exc:
        load_sae(tmp_path / "s")
    msg = str(exc.value)
    assert "sae_weights.safetensors has no tensor W_dec" in msg and "d_sae=64" in msg and "\n" not in msg


def test_wrong_width_for_the_model_names_the_expected_shape(tmp_path, tiny_wrapper):
    from explorer.config import SaeEntry
    from explorer.engine.sae.catalog import load_entry

    write_saelens(tmp_path / "wide", d_in=48)
    with pytest.raises(SaeLoadError) as exc:
        load_entry(SaeEntry(layer=1, path=str(tmp_path / "wide")), tiny_wrapper, tmp_path)
    msg = str(exc.value)
    assert "48-dimensional" in msg and "expected W_enc [32, d_sae]" in msg and "sae_weights.safetensors" in msg
    write_saelens(tmp_path / "other", hook="blocks.0.hook_resid_post")
    with pytest.raises(SaeLoadError, match="says layer 1"):
        load_entry(SaeEntry(layer=1, path=str(tmp_path / "other")), tiny_wrapper, tmp_path)


def test_detect_format_refuses_pickles_and_unknown_folders(tmp_path):
    (tmp_path / "ae.pt").write_bytes(b"not really")
    with pytest.raises(SaeLoadError, match="pickled"):
        detect_format(tmp_path / "ae.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SaeLoadError, match="holds no SAE files"):
        detect_format(tmp_path / "empty")


def test_fvu_is_unexplained_over_total_variance():
    y = rand(10, 8, seed=3, scale=1.0)
    assert fvu(y, y) == 0.0
    assert abs(fvu(y, y.mean(0).expand_as(y)) - 1.0) < 1e-6
    y_hat = y + rand(10, 8, seed=4, scale=0.1)
    direct = float(((y - y_hat) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
    assert abs(fvu(y, y_hat) - direct) < 1e-6


def test_labels_from_neuronpedia_jsonl_gz(tmp_path):
    import gzip

    from explorer.engine.sae.labels import load_labels

    lines = [{"modelId": "tiny", "layer": "1-res", "index": "3", "description": "cats"},
             {"index": 3, "description": "a second explanation is ignored"},
             {"index": "7", "description": " the word the "}, {"oops": 1}]
    with gzip.open(tmp_path / "batch-0.jsonl.gz", "wt") as fh:
        fh.write("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    labels = load_labels(tmp_path)
    assert labels.get(3) == "cats" and labels.get(7) == "the word the" and labels.get(4) is None
    assert labels.skipped_lines == 2


def test_hub_entry_offline_is_one_sentence(monkeypatch):
    from explorer.config import load_config
    from explorer.engine.sae.hub import entry_files

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load_config(Path(__file__).resolve().parents[2] / "config_gemma.toml")
    [entry] = cfg.sae
    with pytest.raises(SaeLoadError) as exc:
        entry_files(entry, Path("."))
    msg = str(exc.value)
    assert "layer_12/width_16k/average_l0_82/params.npz" in msg and "google/gemma-scope-2b-pt-res" in msg
    assert "not in the local Hugging Face cache" in msg and "\n" not in msg


def test_gemma_scope_hooks_are_inferred_from_the_repo_name():
    from explorer.engine.sae.formats.gemma_scope import infer_hooks

    where = "google/gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82/params.npz"
    assert infer_hooks(where, None) == ("blocks.12.hook_resid_post", "blocks.12.hook_resid_post")
    assert infer_hooks("google/gemma-scope-2b-pt-mlp/layer_3/width_16k/x", None)[0] == "blocks.3.hook_mlp_out"
    assert infer_hooks("google/gemma-scope-2b-pt-att/layer_3/width_16k/x", None)[0] == "blocks.3.attn.hook_z"


def test_sink_tokens_are_left_out_of_the_fvu_denominator():
    from explorer.engine.sae.base import ordinary_rows, variance_denominator

    y = rand(12, 8, seed=5, scale=1.0)
    y[0] *= 50  # position 0: the attention sink
    y[7] *= 200  # a massive activation mid-prompt
    keep = ordinary_rows(y)
    assert keep.tolist() == [i not in (0, 7) for i in range(12)]
    rows = y[keep]
    assert variance_denominator(y) == pytest.approx(float(((rows - rows.mean(0)) ** 2).sum(-1).mean()))
    assert variance_denominator(y[:1]) is None
