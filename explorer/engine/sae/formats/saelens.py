"""SAELens native format: ``cfg.json`` + ``sae_weights.safetensors`` (+ optional ``sparsity.safetensors``).

Tensors are already in our orientation: ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_out]``,
``b_enc``, ``b_dec``, ``threshold`` (JumpReLU), ``W_skip [d_out, d_in]`` (added as
``x @ W_skip.T``), optional ``scaling_factor`` (finetuning, multiplies features before
decoding; all ones means none). Configs written before SAELens 6.0 name things differently
(``hook_point``, ``activation_fn_str``, a boolean ``normalize_activations``...) and are
renamed first. This is also the format ``main.py sae train`` writes. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from explorer.engine.sae.base import Sae, SaeLoadError, require
from explorer.engine.sae.formats.files import read_json, read_safetensors

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"

_PRE_6_RENAMES = {
    "hook_point": "hook_name",
    "hook_point_layer": "hook_layer",
    "hook_point_head_index": "hook_head_index",
    "activation_fn_str": "activation_fn",
    "hook_point_out": "hook_name_out",
}
_METADATA_KEYS = ("model_name", "hook_name", "hook_name_out", "hook_layer", "hook_head_index",
                  "prepend_bos", "context_size", "dataset_path", "neuronpedia_id",
                  "model_from_pretrained_kwargs", "sae_lens_version", "exclude_special_tokens")

_ARCHITECTURES = {
    # architecture -> activation
    "standard": "relu", "transcoder": "relu", "skip_transcoder": "relu",
    "jumprelu": "jumprelu", "jumprelu_transcoder": "jumprelu", "jumprelu_skip_transcoder": "jumprelu",
    "topk": "topk", "topk_transcoder": "topk", "topk_skip_transcoder": "topk",
}


def upgrade_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """A cfg.json of any SAELens version in the 6.0 shape: flat keys plus ``metadata``.

    Pre-6.0 keys are renamed, the boolean ``normalize_activations`` becomes
    ``"expected_average_only_in"`` / ``"none"``, and ``activation_fn_kwargs.k`` becomes ``k``.
    """
    out = {_PRE_6_RENAMES.get(k, k): v for k, v in cfg.items()}
    meta = dict(out.get("metadata") or out.get("meta") or {})
    for key in _METADATA_KEYS:
        if key in out and key not in meta:
            meta[key] = out[key]
    for old, new in _PRE_6_RENAMES.items():
        if old in meta and new not in meta:
            meta[new] = meta.pop(old)
    out["metadata"] = meta
    norm = out.get("normalize_activations")
    if isinstance(norm, bool) or norm is None:
        out["normalize_activations"] = "expected_average_only_in" if norm else "none"
    kwargs = out.get("activation_fn_kwargs") or {}
    if "k" not in out and isinstance(kwargs, dict) and "k" in kwargs:
        out["k"] = kwargs["k"]
    arch = out.get("architecture") or "standard"
    if arch == "standard" and str(out.get("activation_fn", "relu")).lower() == "topk":
        arch = "topk"
    out["architecture"] = arch
    out.setdefault("apply_b_dec_to_input", True)
    return out


def load_saelens(directory: Path, *, hook: str | None = None) -> Sae:
    """Load ``directory/cfg.json`` + ``directory/sae_weights.safetensors``.

    Args:
        directory: the SAE's folder.
        hook: TL input hook overriding ``metadata.hook_name``.

    Raises:
        SaeLoadError: a missing file or tensor, an unsupported architecture, a shape mismatch.
    """
    directory = Path(directory)
    cfg_path, weights_path = directory / CFG_FILE, directory / WEIGHTS_FILE
    cfg = upgrade_config(read_json(cfg_path))
    arch = str(cfg["architecture"])
    if arch not in _ARCHITECTURES:
        raise SaeLoadError(f"{cfg_path}: SAELens architecture {arch!r} is not supported "
                           f"(supported: {', '.join(sorted(_ARCHITECTURES))}).")
    meta = cfg["metadata"]
    if meta.get("hook_head_index") is not None:
        raise SaeLoadError(f"{cfg_path}: SAEs on a single attention head (hook_head_index) are not supported.")
    hook_in = hook or meta.get("hook_name")
    if not hook_in:
        raise SaeLoadError(f"{cfg_path} names no hook (metadata.hook_name); set hook in the [[sae]] entry.")
    src = str(weights_path)
    t = read_safetensors(weights_path)
    d_in, d_sae = cfg.get("d_in"), cfg.get("d_sae")
    W_enc = require(t, "W_enc", src, f"[d_in={d_in}, d_sae={d_sae}]")
    W_dec = require(t, "W_dec", src, f"[d_sae={d_sae}, d_out]")
    b_enc = require(t, "b_enc", src, f"[d_sae={d_sae}]")
    b_dec = require(t, "b_dec", src, "[d_out]")
    if d_in is not None and d_sae is not None and tuple(W_enc.shape) != (int(d_in), int(d_sae)):
        from explorer.engine.sae.base import expect_shape

        expect_shape(W_enc, (int(d_in), int(d_sae)), "W_enc", src, "[d_in, d_sae] as cfg.json says")
    activation = _ARCHITECTURES[arch]
    threshold = t.get("threshold")
    if threshold is None and "log_threshold" in t:
        threshold = torch.exp(t["log_threshold"])
    if activation == "jumprelu" and threshold is None:
        require(t, "threshold", src, f"[d_sae={W_enc.shape[1]}] for a JumpReLU SAE")
    feature_scale = t.get("scaling_factor")
    if feature_scale is not None and torch.allclose(feature_scale, torch.ones_like(feature_scale)):
        feature_scale = None
    is_transcoder = "transcoder" in arch or bool(meta.get("hook_name_out")) or W_dec.shape[1] != W_enc.shape[0]
    hook_out = hook_in
    if is_transcoder:
        hook_out = meta.get("hook_name_out") or cfg.get("hook_name_out")
        if not hook_out:
            from explorer.engine.sae.hook_names import hook_layer

            hook_out = f"blocks.{hook_layer(hook_in)}.hook_mlp_out"
    norm = str(cfg.get("normalize_activations") or "none")
    norm_scale = cfg.get("norm_scaling_factor")
    apply_b_dec = bool(cfg.get("apply_b_dec_to_input", True)) and W_dec.shape[1] == W_enc.shape[0] and not is_transcoder
    return Sae(
        W_enc=W_enc, b_enc=b_enc, W_dec=W_dec, b_dec=b_dec, hook_in=hook_in, hook_out=hook_out,
        format="saelens", source=src, activation=activation, threshold=threshold,
        k=int(cfg["k"]) if cfg.get("k") is not None else None, apply_b_dec_to_input=apply_b_dec,
        normalize=norm, norm_scale=float(norm_scale) if norm_scale and math.isfinite(float(norm_scale)) else None,
        W_skip=t.get("W_skip"), feature_scale=feature_scale,
        metadata={"architecture": arch, **{k: v for k, v in meta.items() if v is not None}},
    )


def save_saelens(sae: Sae, directory: Path, metadata: dict[str, Any] | None = None) -> None:
    """Write ``sae`` as SAELens 6 files (cfg.json + sae_weights.safetensors), atomically."""
    import json

    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arch = {"relu": "standard", "jumprelu": "jumprelu", "topk": "topk"}.get(sae.activation)
    if arch is None:
        raise SaeLoadError(f"Cannot write a {sae.activation} SAE in SAELens format.")
    tensors = {"W_enc": sae.W_enc, "W_dec": sae.W_dec, "b_enc": sae.b_enc, "b_dec": sae.b_dec}
    if sae.threshold is not None:
        tensors["threshold"] = sae.threshold
    if sae.W_skip is not None:
        tensors["W_skip"] = sae.W_skip
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}
    meta = {"hook_name": sae.hook_in, "sae_lens_version": "6.0.0", **(metadata or {})}
    cfg = {
        "architecture": arch, "d_in": sae.d_in, "d_sae": sae.d_sae, "d_out": sae.d_out,
        "dtype": "float32", "apply_b_dec_to_input": sae.apply_b_dec_to_input,
        "normalize_activations": sae.normalize, "reshape_activations": "none", "metadata": meta,
    }
    if sae.k is not None:
        cfg["k"] = sae.k
    from explorer.io.atomic import atomic_file, atomic_write_text

    with atomic_file(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})

    atomic_write_text(directory / CFG_FILE, json.dumps(cfg, indent=2) + "\n")
