"""Gemma Scope 1 (``google/gemma-scope-*``): ``layer_L/width_W/average_l0_N/params.npz``.

Arrays ``W_enc [d_model, d_sae]``, ``W_dec [d_sae, d_model]``, ``b_enc``, ``b_dec``,
``threshold``; JumpReLU with **no** ``b_dec`` subtraction from the input. Loaded with
``numpy.load(allow_pickle=False)``. The hook is not in the file: it comes from the
``[[sae]]`` entry or from the repository / path name (``-res`` -> resid_post, ``-mlp`` ->
mlp_out, ``-att`` -> attn.hook_z, ``transcoders`` -> reads ln2.hook_normalized, i.e. the
pre-MLP RMSNorm output with the gain folded out, and predicts hook_mlp_out, which in Gemma 2
is the output of post_feedforward_layernorm). Never imports Textual or Rich.
"""

from __future__ import annotations

import re
from pathlib import Path

from explorer.engine.sae.base import Sae, SaeLoadError, require
from explorer.engine.sae.formats.files import read_npz
from explorer.engine.sae.hook_names import hooks_from_config, layer_in_path


def infer_hooks(where: str, layer: int | None) -> tuple[str, str] | None:
    """(hook_in, hook_out) from a repo id / path such as ``gemma-scope-2b-pt-res/layer_12/...``."""
    L = layer_in_path(where, layer)
    if L is None:
        return None
    low = where.lower()
    if "transcoder" in low:
        return f"blocks.{L}.ln2.hook_normalized", f"blocks.{L}.hook_mlp_out"
    if re.search(r"-res\b|-res[-/_]|resid_post", low):
        return f"blocks.{L}.hook_resid_post", f"blocks.{L}.hook_resid_post"
    if re.search(r"-mlp\b|-mlp[-/_]|mlp_out", low):
        return f"blocks.{L}.hook_mlp_out", f"blocks.{L}.hook_mlp_out"
    if re.search(r"-att\b|-att[-/_]|attn", low):
        return f"blocks.{L}.attn.hook_z", f"blocks.{L}.attn.hook_z"
    return None


def load_gemma_scope(path: Path, *, hook: str | None = None, where: str = "", layer: int | None = None) -> Sae:
    """Load a Gemma Scope 1 ``params.npz``.

    Args:
        path: the ``params.npz`` file.
        hook: TL input hook from the config (wins over inference).
        where: the repo id and filename, used to infer the hook when ``hook`` is None.
        layer: the configured layer, used when the path names none.
    """
    path = Path(path)
    src = str(path)
    t = read_npz(path)
    W_enc = require(t, "W_enc", src, "[d_model, d_sae]")
    d_sae = W_enc.shape[-1]
    hooks = infer_hooks(f"{where} {path.as_posix()}", layer)
    if hook:
        hooks = hooks_from_config(hook, transcoder=hooks is not None and hooks[0] != hooks[1])
    if hooks is None:
        raise SaeLoadError(f"{src}: cannot tell which hook this Gemma Scope SAE reads; "
                           "set hook (e.g. blocks.12.hook_resid_post) in the [[sae]] entry.")
    return Sae(
        W_enc=W_enc, b_enc=require(t, "b_enc", src, f"[{d_sae}]"),
        W_dec=require(t, "W_dec", src, f"[{d_sae}, d_model]"), b_dec=require(t, "b_dec", src, "[d_model]"),
        hook_in=hooks[0], hook_out=hooks[1], format="gemma_scope", source=src, activation="jumprelu",
        threshold=require(t, "threshold", src, f"[{d_sae}]"), apply_b_dec_to_input=False,
    )
