"""EleutherAI sparsify: one folder per hook point (``layers.6``, ``layers.6.mlp``, ``embed_tokens``).

``cfg.json`` {``activation`` topk | groupmax, ``k``, ``num_latents`` or ``expansion_factor``,
``transcode``, ``skip_connection``, ``d_in``} + ``sae.safetensors`` {``encoder.weight
[n_lat, d_in]`` (a Linear: transposed relative to SAELens), ``encoder.bias``, ``W_dec [n_lat,
d_in]``, ``b_dec [d_in]``, optional ``W_skip [d_in, d_in]`` added as ``x @ W_skip.T``}.
Encode: ``x − b_dec`` unless transcoding, then ReLU and top-k (or group max). The hook is the
folder name: ``layers.N`` -> ``blocks.N.hook_resid_post``; ``layers.N.mlp`` -> the MLP's output
(or, transcoding, MLP input -> MLP output); ``embed_tokens`` -> ``blocks.0.hook_resid_pre``.
Never imports Textual or Rich.
"""

from __future__ import annotations

import re
from pathlib import Path

from explorer.engine.sae.base import Sae, SaeLoadError, expect_shape, require
from explorer.engine.sae.formats.files import read_json, read_safetensors

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae.safetensors"


def infer_hooks(folder: str, transcode: bool) -> tuple[str, str] | None:
    if folder in ("embed_tokens", "model.embed_tokens"):
        return "blocks.0.hook_resid_pre", "blocks.0.hook_resid_pre"
    m = re.fullmatch(r"(?:model\.)?layers\.(\d+)(\.mlp)?", folder)
    if not m:
        return None
    L = int(m.group(1))
    if m.group(2):
        if transcode:
            return f"blocks.{L}.mlp.hook_in", f"blocks.{L}.mlp.hook_out"
        return f"blocks.{L}.mlp.hook_out", f"blocks.{L}.mlp.hook_out"
    return f"blocks.{L}.hook_resid_post", f"blocks.{L}.hook_resid_post"


def load_sparsify(directory: Path, *, hook: str | None = None) -> Sae:
    """Load ``directory/cfg.json`` + ``directory/sae.safetensors``."""
    directory = Path(directory)
    cfg = read_json(directory / CFG_FILE)
    src = str(directory / WEIGHTS_FILE)
    t = read_safetensors(directory / WEIGHTS_FILE)
    transcode = bool(cfg.get("transcode", False))
    enc = require(t, "encoder.weight", src, "[num_latents, d_in]")
    d_in = int(cfg.get("d_in") or enc.shape[1])
    n_lat = int(cfg.get("num_latents") or 0) or d_in * int(cfg.get("expansion_factor") or 0) or enc.shape[0]
    expect_shape(enc, (n_lat, d_in), "encoder.weight", src, "[num_latents, d_in]")
    activation = str(cfg.get("activation", "topk"))
    if activation not in ("topk", "groupmax"):
        raise SaeLoadError(f"{directory / CFG_FILE}: sparsify activation {activation!r} is not supported (topk, groupmax).")
    hooks = infer_hooks(directory.name, transcode)
    if hook:
        from explorer.engine.sae.hook_names import hook_layer

        hooks = (hook, f"blocks.{hook_layer(hook)}.mlp.hook_out" if transcode else hook)
    if hooks is None:
        raise SaeLoadError(f"{directory}: cannot tell the hook from the folder name {directory.name!r}; "
                           "set hook in the [[sae]] entry.")
    if bool(cfg.get("signed", False)):
        raise SaeLoadError(f"{directory / CFG_FILE}: signed sparsify latents are not supported.")
    return Sae(
        W_enc=enc.T.contiguous(), b_enc=require(t, "encoder.bias", src, f"[{n_lat}]"),
        W_dec=require(t, "W_dec", src, f"[{n_lat}, d_out]"), b_dec=require(t, "b_dec", src, "[d_out]"),
        hook_in=hooks[0], hook_out=hooks[1], format="sparsify", source=src, activation=activation,
        k=int(cfg.get("k", 0)) or None, apply_b_dec_to_input=not transcode, W_skip=t.get("W_skip"),
    )
