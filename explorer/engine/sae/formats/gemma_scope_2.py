"""Gemma Scope 2 (``google/gemma-scope-2-*``): ``<site>/layer_L_width_W_l0_X/params.safetensors``.

Lowercase keys ``w_enc [d_in, d_sae]``, ``w_dec [d_sae, d_out]``, ``b_enc``, ``b_dec``,
``threshold``; JumpReLU without ``b_dec`` subtraction. Transcoders add
``affine_skip_connection [d, d]`` whose orientation the two public readers disagree on
(circuit-tracer adds ``x @ affine``, SAELens ``x @ affine.T``), so the Sae is marked
``skip_ambiguous`` and the first real activations decide (``Sae.resolve_skip``).
Sites from the folder: ``resid_post``, ``mlp_out``, ``attn_out``; transcoder folders read the
MLP input (``mlp.hook_in``) and predict ``hook_mlp_out`` unless the entry sets ``hook``.
Never imports Textual or Rich.
"""

from __future__ import annotations

import re
from pathlib import Path

from explorer.engine.sae.base import Sae, SaeLoadError, require
from explorer.engine.sae.formats.files import read_safetensors
from explorer.engine.sae.hook_names import hooks_from_config, layer_in_path


def infer_hooks(where: str, layer: int | None) -> tuple[str, str] | None:
    L = layer_in_path(where, layer)
    if L is None:
        return None
    low = where.lower()
    if "transcoder" in low:
        return f"blocks.{L}.mlp.hook_in", f"blocks.{L}.hook_mlp_out"
    for folder, site in (("resid_post", "hook_resid_post"), ("mlp_out", "hook_mlp_out"), ("attn_out", "hook_attn_out")):
        if folder in low:
            return f"blocks.{L}.{site}", f"blocks.{L}.{site}"
    return None


def load_gemma_scope_2(path: Path, *, hook: str | None = None, where: str = "", layer: int | None = None) -> Sae:
    """Load a Gemma Scope 2 ``params.safetensors`` (see the module docstring for the hooks)."""
    path = Path(path)
    src = str(path)
    t = read_safetensors(path)
    W_enc = require(t, "w_enc", src, "[d_in, d_sae]")
    d_sae = W_enc.shape[-1]
    skip = t.get("affine_skip_connection")
    hooks = infer_hooks(f"{where} {path.as_posix()}", layer)
    if hook:
        hooks = hooks_from_config(hook, transcoder=skip is not None or (hooks is not None and hooks[0] != hooks[1]))
    elif skip is not None and hooks is not None and hooks[0] == hooks[1]:
        L = re.search(r"blocks\.(\d+)\.", hooks[0]).group(1)
        hooks = (f"blocks.{L}.mlp.hook_in", f"blocks.{L}.hook_mlp_out")
    if hooks is None:
        raise SaeLoadError(f"{src}: cannot tell which hook this Gemma Scope 2 SAE reads; "
                           "set hook (e.g. blocks.12.hook_resid_post) in the [[sae]] entry.")
    return Sae(
        W_enc=W_enc, b_enc=require(t, "b_enc", src, f"[{d_sae}]"),
        W_dec=require(t, "w_dec", src, f"[{d_sae}, d_out]"), b_dec=require(t, "b_dec", src, "[d_out]"),
        hook_in=hooks[0], hook_out=hooks[1], format="gemma_scope_2", source=src, activation="jumprelu",
        threshold=require(t, "threshold", src, f"[{d_sae}]"), apply_b_dec_to_input=False,
        W_skip=skip, skip_ambiguous=skip is not None,
    )
