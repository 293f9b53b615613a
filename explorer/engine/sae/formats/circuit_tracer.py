"""circuit-tracer per-layer transcoders: ``layer_{i}.safetensors`` (+ an optional ``config.yaml``).

Tensors are stored **transposed relative to SAELens** for the encoder:
``W_enc [d_tc, d_model]``, ``W_dec [d_tc, d_model]``, ``b_enc [d_tc]``, ``b_dec [d_model]``,
optional ``activation_function.threshold [d_tc]`` (JumpReLU as ``pre·1[pre>θ]``), ``W_skip
[d_model, d_model]`` (skip transcoders, added as ``x @ W_skip.T``) and a scalar ``k`` (TopK).
``config.yaml`` gives ``feature_input_hook`` (``hook_resid_mid``, ``ln2.hook_normalized``,
``mlp.hook_in``), ``feature_output_hook`` (``hook_mlp_out`` / ``mlp.hook_out``) and
``activation`` / ``k``; without one we assume the MLP input and output (``mlp.hook_in`` ->
``mlp.hook_out``), which is what the published Llama skip transcoders use. Never imports Textual or Rich.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from explorer.engine.sae.base import Sae, SaeLoadError, expect_shape, require
from explorer.engine.sae.formats.files import read_safetensors, read_yaml


def find_config(path: Path) -> dict[str, Any]:
    """The ``config.yaml`` beside the layer file (or one folder up), or {} when there is none."""
    for folder in (path.parent, path.parent.parent):
        cfg = folder / "config.yaml"
        if cfg.is_file():
            return read_yaml(cfg)
    return {}


def tl_hook(site: str, layer: int) -> str:
    """circuit-tracer writes hooks without the block prefix (``hook_resid_mid``): add it."""
    site = str(site)
    if site.startswith("blocks."):
        return site
    return f"blocks.{layer}.{site}"


def layer_from_name(path: Path) -> int | None:
    m = re.search(r"layer_(\d+)", path.name)
    return int(m.group(1)) if m else None


def load_circuit_tracer(path: Path, *, layer: int | None = None, hook: str | None = None,
                        config: dict[str, Any] | None = None) -> Sae:
    """Load one per-layer transcoder file.

    Args:
        path: ``layer_{i}.safetensors``.
        layer: the block index (default: from the file name).
        hook: TL input hook overriding the config's ``feature_input_hook``.
        config: a parsed config.yaml (default: found beside the file).
    """
    path = Path(path)
    src = str(path)
    cfg = find_config(path) if config is None else config
    L = layer if layer is not None else layer_from_name(path)
    if L is None:
        raise SaeLoadError(f"{src}: cannot tell the layer of this transcoder; set layer in the [[sae]] entry.")
    t = read_safetensors(path)
    b_enc = require(t, "b_enc", src, "[d_tc]")
    b_dec = require(t, "b_dec", src, "[d_model]")
    d_tc, d_model = b_enc.shape[0], b_dec.shape[0]
    W_enc = require(t, "W_enc", src, f"[d_tc={d_tc}, d_model={d_model}]")
    W_dec = require(t, "W_dec", src, f"[d_tc={d_tc}, d_model={d_model}]")
    # circuit-tracer's W_enc is [d_tc, d_model]: the SAELens orientation here is an error, not a guess.
    expect_shape(W_enc, (d_tc, d_model), "W_enc", src, "[d_tc, d_model] (circuit-tracer orientation)")
    expect_shape(W_dec, (d_tc, d_model), "W_dec", src, "[d_tc, d_model]")
    threshold = t.get("activation_function.threshold", t.get("threshold"))
    k_tensor = t.get("k")
    activation = str(cfg.get("activation") or ("jumprelu" if threshold is not None else "topk" if k_tensor is not None else "relu"))
    activation = {"jump_relu": "jumprelu"}.get(activation, activation)
    k = int(cfg.get("k") or (k_tensor.item() if k_tensor is not None else 0)) or None
    hook_in = hook or tl_hook(cfg.get("feature_input_hook", "mlp.hook_in"), L)
    hook_out = tl_hook(cfg.get("feature_output_hook", "mlp.hook_out"), L)
    return Sae(
        W_enc=W_enc.T.contiguous(), b_enc=b_enc, W_dec=W_dec, b_dec=b_dec, hook_in=hook_in,
        hook_out=hook_out, format="circuit_tracer", source=src, activation=activation,
        threshold=threshold, k=k, apply_b_dec_to_input=False, W_skip=t.get("W_skip"),
        relu_before_threshold=False, metadata={"model_name": cfg.get("model_name"), "scan": cfg.get("scan")},
    )
