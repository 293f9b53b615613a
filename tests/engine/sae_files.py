"""Writers of small synthetic SAE files in every supported format (shared by the SAE tests).

Each returns the raw tensors it wrote so a test can compute the expected numbers directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file


def rand(*shape, seed=0, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def write_saelens(folder: Path, d_in=32, d_sae=64, *, arch="standard", hook="blocks.1.hook_resid_post",
                  k=None, skip=False, d_out=None, hook_out=None, pre6=False, normalize="none",
                  apply_b_dec=True, seed=0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    d_out = d_out or d_in
    t = {"W_enc": rand(d_in, d_sae, seed=seed), "W_dec": rand(d_sae, d_out, seed=seed + 1),
         "b_enc": rand(d_sae, seed=seed + 2, scale=0.1), "b_dec": rand(d_out, seed=seed + 3, scale=0.1)}
    if arch.startswith("jumprelu"):
        t["threshold"] = rand(d_sae, seed=seed + 4, scale=0.2).abs()
    if skip:
        t["W_skip"] = rand(d_out, d_in, seed=seed + 5)
    save_file(t, str(folder / "sae_weights.safetensors"))
    if pre6:
        cfg = {"d_in": d_in, "d_sae": d_sae, "hook_point": hook, "hook_point_layer": 1,
               "activation_fn_str": "topk" if k else "relu", "activation_fn_kwargs": {"k": k} if k else {},
               "normalize_activations": False, "apply_b_dec_to_input": apply_b_dec, "model_name": "tiny",
               "sae_lens_training_version": "3.0.0"}
    else:
        meta = {"hook_name": hook, "model_name": "tiny", "sae_lens_version": "6.5.0"}
        if hook_out:
            meta["hook_name_out"] = hook_out
        cfg = {"architecture": arch, "d_in": d_in, "d_sae": d_sae, "d_out": d_out, "dtype": "float32",
               "apply_b_dec_to_input": apply_b_dec, "normalize_activations": normalize, "metadata": meta}
        if k:
            cfg["k"] = k
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return t


def write_gemma_scope(path: Path, d=32, d_sae=64, seed=0) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = {"W_enc": rand(d, d_sae, seed=seed), "W_dec": rand(d_sae, d, seed=seed + 1),
         "b_enc": rand(d_sae, seed=seed + 2, scale=0.1), "b_dec": rand(d, seed=seed + 3, scale=0.1),
         "threshold": rand(d_sae, seed=seed + 4, scale=0.2).abs()}
    np.savez(str(path), **{k: v.numpy() for k, v in t.items()})
    return t


def write_gemma_scope_2(path: Path, d=32, d_sae=64, skip=False, seed=0) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = {"w_enc": rand(d, d_sae, seed=seed), "w_dec": rand(d_sae, d, seed=seed + 1),
         "b_enc": rand(d_sae, seed=seed + 2, scale=0.1), "b_dec": rand(d, seed=seed + 3, scale=0.1),
         "threshold": rand(d_sae, seed=seed + 4, scale=0.2).abs()}
    if skip:
        t["affine_skip_connection"] = rand(d, d, seed=seed + 5)
    save_file(t, str(path))
    return t


def write_circuit_tracer(folder: Path, layer=1, d=32, d_tc=64, skip=False, jumprelu=True, config=True,
                         transposed=False, seed=0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    t = {"W_enc": rand(d_tc, d, seed=seed), "W_dec": rand(d_tc, d, seed=seed + 1),
         "b_enc": rand(d_tc, seed=seed + 2, scale=0.1), "b_dec": rand(d, seed=seed + 3, scale=0.1)}
    if jumprelu:
        t["activation_function.threshold"] = rand(d_tc, seed=seed + 4, scale=0.2).abs()
    if skip:
        t["W_skip"] = rand(d, d, seed=seed + 5)
    stored = dict(t)
    if transposed:
        stored["W_enc"] = t["W_enc"].T.contiguous()
    save_file(stored, str(folder / f"layer_{layer}.safetensors"))
    if config:
        (folder / "config.yaml").write_text(
            "model_name: tiny\nmodel_kind: transcoder_set\nfeature_input_hook: hook_resid_mid\n"
            "feature_output_hook: hook_mlp_out\nscan: tiny-scan\n")
    return t


def write_clt(folder: Path, n_layers=2, d=32, d_tc=16, jumprelu=True, seed=0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(n_layers):
        enc = {f"W_enc_{i}": rand(d_tc, d, seed=seed + 10 * i), f"b_enc_{i}": rand(d_tc, seed=seed + 10 * i + 1, scale=0.1),
               f"b_dec_{i}": rand(d, seed=seed + 10 * i + 2, scale=0.1)}
        if jumprelu:
            enc[f"threshold_{i}"] = rand(d_tc, seed=seed + 10 * i + 3, scale=0.1).abs()
        dec = {f"W_dec_{i}": rand(d_tc, n_layers - i, d, seed=seed + 10 * i + 4)}
        save_file(enc, str(folder / f"W_enc_{i}.safetensors"))
        save_file(dec, str(folder / f"W_dec_{i}.safetensors"))
        out.update(enc)
        out.update(dec)
    (folder / "config.yaml").write_text(
        "model_kind: cross_layer_transcoder\nfeature_input_hook: hook_resid_mid\nfeature_output_hook: hook_mlp_out\n"
        + ("activation: jump_relu\n" if jumprelu else ""))
    return out


def write_sparsify(folder: Path, d=32, n_lat=64, k=4, activation="topk", transcode=False, skip=False, seed=0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    t = {"encoder.weight": rand(n_lat, d, seed=seed), "encoder.bias": rand(n_lat, seed=seed + 1, scale=0.1),
         "W_dec": rand(n_lat, d, seed=seed + 2), "b_dec": rand(d, seed=seed + 3, scale=0.1)}
    if skip:
        t["W_skip"] = rand(d, d, seed=seed + 4)
    save_file(t, str(folder / "sae.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({
        "activation": activation, "k": k, "num_latents": n_lat, "expansion_factor": 2, "normalize_decoder": True,
        "multi_topk": False, "skip_connection": skip, "transcode": transcode, "signed": False, "d_in": d}))
    return t
