"""TransformerLens hook names: parsing, checking, and the layer a hook belongs to.

Everything addressed by a string uses TL names (``blocks.{L}.hook_resid_post``); where each
lives in a Hugging Face model is in :mod:`explorer.engine.layers`. Stdlib only.
"""

from __future__ import annotations

import re

# Sites inside a block we can capture on a raw HF Llama / Gemma 2 model.
SITES = (
    "hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
    "attn.hook_z", "ln2.hook_normalized", "mlp.hook_in", "mlp.hook_out", "hook_mlp_in", "mlp.hook_post",
)
_HOOK = re.compile(r"^blocks\.(\d+)\.(.+)$")


def parse_hook(name: str) -> tuple[int, str]:
    """``"blocks.12.hook_resid_post"`` -> ``(12, "hook_resid_post")``; ValueError when not a known site."""
    m = _HOOK.match(name.strip())
    if not m or m.group(2) not in SITES:
        raise ValueError(
            f'"{name}" is not a supported TransformerLens hook; use blocks.L.SITE with SITE one of '
            + ", ".join(SITES)
        )
    return int(m.group(1)), m.group(2)


def hook_layer(name: str) -> int:
    return parse_hook(name)[0]


def hook_name(layer: int, site: str) -> str:
    site = site.removeprefix("blocks.")
    if site not in SITES:
        raise ValueError(f'"{site}" is not a supported hook site; use one of {", ".join(SITES)}')
    return f"blocks.{int(layer)}.{site}"


def site_of(name: str) -> str:
    return parse_hook(name)[1]


def layer_in_path(where: str, layer: int | None) -> int | None:
    """The layer a repository path names (``.../layer_12/...``), else ``layer`` (the configured one)."""
    m = re.search(r"layer_(\d+)", where)
    return int(m.group(1)) if m else layer


def hooks_from_config(hook: str, transcoder: bool) -> tuple[str, str]:
    """(hook_in, hook_out) when the ``[[sae]]`` entry names the input hook: an SAE reconstructs
    its input; a transcoder predicts its block's MLP output."""
    return hook, f"blocks.{hook_layer(hook)}.hook_mlp_out" if transcoder else hook
