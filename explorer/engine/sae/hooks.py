"""Capture activations at TransformerLens hook names on a raw Hugging Face model (Llama, Gemma 2/3...).

Where each TL hook lives is decided by :mod:`explorer.engine.layers` (the one layer
locator); the table, for decoder layer ``layer = model.model.layers[L]``:

===========================  ===========================================  ==============================================
TL hook                      Llama / Qwen / Mistral                       Gemma 2 / 3 (sandwich norms)
===========================  ===========================================  ==============================================
blocks.L.hook_resid_pre      input of layer                               same (embeddings already × √d)
blocks.L.hook_resid_mid      input of post_attention_layernorm            input of pre_feedforward_layernorm
blocks.L.hook_resid_post     output of layer                              same
blocks.L.hook_attn_out       output of self_attn.o_proj                   output of post_attention_layernorm
blocks.L.hook_mlp_out        output of mlp                                output of post_feedforward_layernorm
blocks.L.attn.hook_z         input of o_proj ([n, heads·d_head])          same
blocks.L.ln2.hook_normalized resid_mid·rsqrt(mean(resid_mid²)+ε)          same, before the (1 + w) gain
blocks.L.mlp.hook_in         input of mlp                                 same
blocks.L.mlp.hook_out        output of mlp                                same (before post_feedforward_layernorm)
blocks.L.hook_mlp_in         resid_mid (TL's copy before ln2)             same
===========================  ===========================================  ==============================================

``hook_resid_post`` of the **last** layer is taken from the layer's output by a hook:
transformers 5 replaces ``hidden_states[-1]`` with the post-final-norm ``last_hidden_state``,
so ``hidden_states`` must never be used for it. The forward pass stops (by an exception
raised from a hook) once every requested activation is captured, so reading layer 3 of a
30-layer model costs 4 layers. Never imports Textual or Rich.
"""

from __future__ import annotations

from contextlib import ExitStack

import torch

from explorer.engine.cancel import StopCheck, check
from explorer.engine.layers import decoder_layers, first_tensor as _first, locate, norm_eps as _norm_eps
from explorer.engine.sae.hook_names import parse_hook
from explorer.errors import AnalysisUnavailable


class _Captured(Exception):
    """Raised from a hook to stop the forward pass once everything is captured."""


def _module(layer_index: int, site: str, model):
    """(module, "input"|"output") that carries the site's tensor (the one layer locator decides)."""
    where = locate(model, layer_index, site)
    return where.module, where.side


@torch.no_grad()  # not inference_mode: training uses the captured tensors in autograd
def capture(wrapper, ids: list[int] | tuple[int, ...], hooks: list[str],
            should_stop: StopCheck | None = None) -> dict[str, torch.Tensor]:
    """Run the model on ``ids`` and return the activation at each TL hook.

    Args:
        wrapper: the ModelWrapper (its lock is held for the pass).
        ids: the prompt's token ids.
        hooks: TL hook names, e.g. ``["blocks.3.hook_resid_post"]``.
        should_stop: polled before each decoder layer; True raises engine.cancel.Cancelled.

    Returns:
        hook name -> ``[n_tokens, d]`` float32 tensor on the CPU (``attn.hook_z`` flattened to
        ``[n_tokens, n_heads·d_head]``).

    Raises:
        AnalysisUnavailable: a hook that names a layer the model does not have, or a site
            the architecture does not expose.
    """
    out = capture_batch(wrapper, [list(ids)], hooks, should_stop=should_stop)
    return {name: t[0] for name, t in out.items()}


@torch.no_grad()
def capture_batch(wrapper, batch: list[list[int]], hooks: list[str],
                  should_stop: StopCheck | None = None) -> dict[str, torch.Tensor]:
    """Like :func:`capture` for several sequences of equal length: hook name -> ``[B, n, d]``.

    Raises:
        AnalysisUnavailable: a hook that names a layer the model does not have, or a site
            the architecture does not expose.
    """
    model = wrapper.model
    layers = decoder_layers(model)
    wanted: dict[str, tuple[int, str]] = {}
    for name in dict.fromkeys(hooks):
        try:
            L, site = parse_hook(name)
        except ValueError as exc:
            raise AnalysisUnavailable(str(exc) + ".") from exc
        if not 0 <= L < len(layers):
            raise AnalysisUnavailable(f"{name} names layer {L}, but the model has layers 0..{len(layers) - 1}.")
        wanted[name] = (L, site)
    out: dict[str, torch.Tensor] = {}

    def store(name: str, L: int, site: str, tensor: torch.Tensor) -> None:
        t = _first(tensor).detach().float()  # [B, n, d]
        if site == "ln2.hook_normalized":
            mid_norm = _module(L, site, model)[0]
            t = t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + _norm_eps(mid_norm))
        out[name] = t.reshape(t.shape[0], t.shape[1], -1).cpu()
        if len(out) == len(wanted):
            raise _Captured

    with ExitStack() as stack, wrapper.lock:
        for name, (L, site) in wanted.items():
            module, where = _module(L, site, model)
            if where == "input":
                def pre_hook(mod, args, kwargs, _n=name, _L=L, _s=site):
                    x = args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values())))
                    store(_n, _L, _s, x)
                stack.enter_context(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
            else:
                def fwd_hook(mod, args, output, _n=name, _L=L, _s=site):
                    store(_n, _L, _s, _first(output))
                stack.enter_context(module.register_forward_hook(fwd_hook))
        if should_stop is not None:  # the user may have left this prompt: stop between layers
            for layer in layers:
                stack.enter_context(layer.register_forward_pre_hook(lambda _m, _a: check(should_stop)))
        lengths = {len(b) for b in batch}
        if len(lengths) != 1:
            raise ValueError("capture_batch needs sequences of one length (no padding)")
        input_ids = torch.tensor([list(b) for b in batch], dtype=torch.long, device=wrapper.device)  # [B, n]
        try:
            model(input_ids=input_ids, use_cache=False)
        except _Captured:
            pass
    missing = [n for n in wanted if n not in out]
    if missing:
        raise AnalysisUnavailable(f"The forward pass never reached {missing[0]}; this architecture is not supported for SAEs.")
    return out
