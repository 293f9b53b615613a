"""The one layer locator: where each TransformerLens site lives in a Hugging Face decoder model.

Captures (``capture.py``), SAE inputs (``sae/hooks.py``) and interventions all ask this
module for the module and the side ("input" or "output") that carries a TL site, so the
Llama-vs-Gemma layout is written down once (SCIENCE.md, "TL hook -> HF location"):

===========================  ===========================================  ==============================================
TL hook                      Llama / Qwen / Mistral / SmolLM2             Gemma 2 / 3 (sandwich norms)
===========================  ===========================================  ==============================================
blocks.L.hook_resid_pre      input of layer                               same (embeddings already × √d)
blocks.L.hook_resid_mid      input of post_attention_layernorm            input of pre_feedforward_layernorm
blocks.L.hook_resid_post     output of layer                              same
blocks.L.hook_attn_out       output of self_attn (= o_proj output)        output of post_attention_layernorm
blocks.L.hook_mlp_out        output of mlp                                output of post_feedforward_layernorm
blocks.L.attn.hook_z         input of o_proj ([n, heads·d_head])          same
blocks.L.ln2.hook_normalized resid_mid (normalised by the caller)         same, before the (1 + w) gain
blocks.L.mlp.hook_in         input of mlp                                 same
blocks.L.mlp.hook_out        output of mlp                                same (before post_feedforward_layernorm)
blocks.L.mlp.hook_post       input of mlp.down_proj (the neurons)         same
blocks.L.hook_mlp_in         resid_mid (TL's copy before ln2)             same
===========================  ===========================================  ==============================================

``hook_resid_post`` of the last layer must be read from the layer's output, never from
``hidden_states[-1]`` (transformers 5 puts the post-final-norm state there). Stdlib + torch
only; never imports Textual or Rich.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explorer.errors import AnalysisUnavailable

_LAYER_PATHS = ("model.layers", "model.language_model.layers", "transformer.h", "gpt_neox.layers",
                "model.decoder.layers", "layers")


def decoder_layers(model) -> list:
    """The decoder blocks of a causal LM (``model.model.layers`` and its cousins).

    Raises:
        AnalysisUnavailable: no known list of blocks.
    """
    for path in _LAYER_PATHS:
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, torch.nn.ModuleList):
            return list(obj)
    raise AnalysisUnavailable(f"Cannot find the decoder layers of {type(model).__name__}.")


def is_sandwich(layer) -> bool:
    """Gemma 2/3 blocks normalise each sub-layer's output (post_*_layernorm) before the residual add."""
    return hasattr(layer, "pre_feedforward_layernorm") and hasattr(layer, "post_feedforward_layernorm")


def norm_eps(norm) -> float:
    """The epsilon of an RMSNorm module (its attribute name differs between architectures)."""
    for name in ("variance_epsilon", "eps"):
        if hasattr(norm, name):
            return float(getattr(norm, name))
    return 1e-6


@dataclass(frozen=True)
class Site:
    """Where a TL site's tensor flows: ``module``'s input (a pre-hook) or output (a forward hook)."""

    module: torch.nn.Module
    side: str
    """"input" or "output"."""
    layer: int
    name: str
    """The TL site inside the block, e.g. ``hook_resid_post``."""


def _table(layer) -> dict[str, tuple[object, str]]:
    sandwich = is_sandwich(layer)
    attn = getattr(layer, "self_attn", None)
    mlp = getattr(layer, "mlp", None)
    mid_norm = getattr(layer, "pre_feedforward_layernorm" if sandwich else "post_attention_layernorm", None)
    return {
        "hook_resid_pre": (layer, "input"),
        "hook_resid_post": (layer, "output"),
        "hook_resid_mid": (mid_norm, "input"),
        "hook_mlp_in": (mid_norm, "input"),
        "ln2.hook_normalized": (mid_norm, "input"),
        "hook_attn_out": ((getattr(layer, "post_attention_layernorm", None), "output") if sandwich
                          else (attn, "output")),
        "hook_mlp_out": ((getattr(layer, "post_feedforward_layernorm", None), "output") if sandwich
                         else (mlp, "output")),
        "attn.hook_z": (getattr(attn, "o_proj", None), "input"),
        "mlp.hook_in": (mlp, "input"),
        "mlp.hook_out": (mlp, "output"),
        "mlp.hook_post": (getattr(mlp, "down_proj", None), "input"),
    }


SITES = tuple(_table(torch.nn.Module()).keys())


def locate(model, layer: int, site: str) -> Site:
    """The module and side carrying ``blocks.{layer}.{site}``.

    Raises:
        AnalysisUnavailable: a layer out of range, an unknown site, or a block without that part.
    """
    layers = decoder_layers(model)
    if not 0 <= int(layer) < len(layers):
        raise AnalysisUnavailable(f"Layer {layer} is out of range; the model has layers 0..{len(layers) - 1}.")
    table = _table(layers[layer])
    if site not in table:
        raise AnalysisUnavailable(f'"{site}" is not a supported site; use one of {", ".join(table)}.')
    module, side = table[site]
    if module is None:
        raise AnalysisUnavailable(
            f"blocks.{layer}.{site} cannot be located in {type(layers[layer]).__name__} (no matching sub-module)."
        )
    return Site(module, side, int(layer), site)


def first_tensor(x):
    """A module's main tensor (blocks and attention return tuples in some versions)."""
    return x[0] if isinstance(x, (tuple, list)) else x


def input_tensor(args, kwargs) -> torch.Tensor:
    """The main input of a module call seen by a ``with_kwargs`` pre-hook."""
    if args:
        return args[0]
    return kwargs.get("hidden_states", kwargs.get("x", next(iter(kwargs.values()))))


def replace_input(args, kwargs, new: torch.Tensor):
    """(args, kwargs) with the main input replaced, for a ``with_kwargs`` pre-hook to return."""
    if args:
        return (new, *args[1:]), kwargs
    key = "hidden_states" if "hidden_states" in kwargs else ("x" if "x" in kwargs else next(iter(kwargs)))
    return args, {**kwargs, key: new}


def replace_output(output, new: torch.Tensor):
    """A module's output with its main tensor replaced (tuples keep their other items)."""
    if isinstance(output, tuple):
        return (new, *output[1:])
    if isinstance(output, list):
        return [new, *output[1:]]
    return new


def attention_heads(model) -> tuple[int, int]:
    """(number of query heads, head dimension) of the model's attention (``attn.hook_z`` layout)."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    n_heads = int(cfg.num_attention_heads)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    return n_heads, int(head_dim)


def mlp_width(model) -> int:
    """Number of MLP neurons per block (``mlp.hook_post`` width)."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(cfg.intermediate_size)


def model_width(model) -> int:
    """d_model."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(cfg.hidden_size)
