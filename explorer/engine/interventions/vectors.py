"""Steering vectors: read them from files, build them as a difference of means, save them.

Formats read by :func:`load_vector` (the layer is the block whose output is steered,
``blocks.L.hook_resid_post``):
    ``.safetensors``  one 1-D tensor ``[d_model]`` (any key), or one per layer keyed by the
                      layer (``"L"``, ``"layer.L"``, ``"layers.L"`` or ``"direction.L"``), or one
                      2-D tensor ``[n_layers, d_model]`` whose row L is layer L.
    ``.npy``          ``[d_model]``, or ``[n_layers, d_model]`` (row L).
    ``.gguf``         llama.cpp control vectors (``cvector-generator``, repeng): one
                      ``direction.L`` tensor ``[d_model]`` per layer, added (sign +) to the
                      output of layer L; llama.cpp has no ``direction.0`` (it starts at 1).
A difference of means (ActAdd / CAA, SCIENCE.md 5.11) averages the residual at the **last
token** of each prompt: ``v = mean_P h_L[last] − mean_N h_L[last]``. Never imports Textual or Rich.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from explorer.errors import InputError

_LAYER_KEY = re.compile(r"^(?:(?:layer|layers|direction|blocks)\.)?(\d+)(?:\.hook_resid_post)?$")
FORMATS = (".safetensors", ".npy", ".gguf")


def _pick(tensors: dict[str, np.ndarray], layer: int, path: Path, d_model: int, by_layer_only: bool) -> np.ndarray:
    """The vector for ``layer`` among the tensors of a file, or one sentence saying why not.

    A file holding a single 1-D vector gives it for any layer (a vector built at one layer may
    be tried at another), except a control vector (``by_layer_only``), whose tensors are
    per layer by definition.
    """
    if len(tensors) == 1 and not by_layer_only:
        (key, arr), = tensors.items()
        if arr.ndim == 1:
            return arr
        if arr.ndim == 2:
            if layer >= arr.shape[0]:
                raise InputError(f"{path} holds {arr.shape[0]} per-layer vectors (tensor {key}), none for layer {layer}.")
            return arr[layer]
        raise InputError(f"{path}: tensor {key} has shape {list(arr.shape)}; expected [{d_model}] or [layers, {d_model}].")
    by_layer = {}
    for key, arr in tensors.items():
        m = _LAYER_KEY.match(key)
        if m and arr.ndim == 1:
            by_layer[int(m.group(1))] = arr
    if layer not in by_layer:
        found = ", ".join(str(k) for k in sorted(by_layer)) or "none"
        raise InputError(f"{path} has no vector for layer {layer} (layers found: {found}).")
    return by_layer[layer]


def load_vector(path: str | Path, layer: int, d_model: int) -> torch.Tensor:
    """The steering vector ``[d_model]`` (float32) for ``layer`` from a file.

    Raises:
        InputError: a missing file, a format this app does not read, no vector for the layer, or the
            wrong width (naming the file, the width found and the model's).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"Vector file {path} does not exist.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            tensors = load_file(str(path))
        elif suffix == ".npy":
            tensors = {"array": np.load(str(path), allow_pickle=False)}
        elif suffix == ".gguf":
            tensors = _read_gguf(path)
        else:
            raise InputError(f"{path} is in no vector format this app reads (use {', '.join(FORMATS)}).")
    except InputError:
        raise
    except Exception as exc:  # a damaged or foreign file: say which one, no traceback
        raise InputError(f"{path} could not be read as {suffix[1:]} ({type(exc).__name__}: {exc}).") from None
    vec = np.asarray(_pick(tensors, layer, path, d_model, suffix == ".gguf"), dtype=np.float32).reshape(-1)
    if vec.shape[0] != d_model:
        raise InputError(f"{path} holds a vector of width {vec.shape[0]}, but the model's width is {d_model}.")
    if not np.isfinite(vec).all():
        raise InputError(f"{path} holds NaN or infinite values for layer {layer}.")
    return torch.from_numpy(vec.copy())


def _read_gguf(path: Path) -> dict[str, np.ndarray]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    out = {t.name: np.asarray(t.data, dtype=np.float32).reshape(-1) for t in reader.tensors
           if t.name.startswith("direction.")}
    if not out:
        raise InputError(f"{path} is a GGUF file without direction.L tensors, so not a control vector.")
    return out


def save_vector(path: str | Path, vector: torch.Tensor, layer: int, metadata: dict[str, str]) -> Path:
    """Write ``vector`` as safetensors keyed ``layer.L`` (atomically: temporary file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path).expanduser()
    if path.suffix.lower() != ".safetensors":
        raise InputError(f"{path}: the output must be a .safetensors file.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({f"layer.{int(layer)}": vector.detach().float().contiguous().cpu()}, str(tmp),
              metadata={k: str(v) for k, v in metadata.items()})
    tmp.replace(path)
    return path


def read_prompt_lines(path: str | Path) -> list[str]:
    """One prompt per non-blank line of a text file.

    Raises:
        InputError: a missing or empty file.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"Prompt file {p} does not exist.")
    lines = [line for line in p.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        raise InputError(f"Prompt file {p} holds no prompts (one prompt a line).")
    return lines


@torch.no_grad()
def last_token_residuals(wrapper, prompts: list[list[int]], layer: int) -> torch.Tensor:
    """``blocks.{layer}.hook_resid_post`` at the last token of each prompt -> ``[len(prompts), d]`` float32."""
    from explorer.engine.sae.hooks import capture

    name = f"blocks.{int(layer)}.hook_resid_post"
    return torch.stack([capture(wrapper, ids, [name])[name][-1] for ids in prompts])  # [N, d]


def diff_of_means(wrapper, positive: list[str], negative: list[str], layer: int) -> tuple[torch.Tensor, dict]:
    """``v = mean_P h_L[last] − mean_N h_L[last]`` at ``blocks.L.hook_resid_post`` (float32 ``[d]``).

    Returns:
        (v, metadata) with the counts and the averaged position, for the saved file.

    Raises:
        InputError: an empty prompt list or a layer out of range.
    """
    if not positive or not negative:
        raise InputError("A difference of means needs at least one positive and one negative prompt.")
    if not 0 <= int(layer) < wrapper.n_layers:
        raise InputError(f"Layer {layer} is out of range; the model has layers 0..{wrapper.n_layers - 1}.")
    pos = last_token_residuals(wrapper, [wrapper.encode(t) for t in positive], layer)  # [P, d]
    neg = last_token_residuals(wrapper, [wrapper.encode(t) for t in negative], layer)  # [N, d]
    v = pos.mean(0) - neg.mean(0)  # [d]
    meta = {"layer": str(layer), "site": f"blocks.{layer}.hook_resid_post", "position": "last token",
            "n_positive": str(len(positive)), "n_negative": str(len(negative)), "model": wrapper.name,
            "recipe": "mean of positive minus mean of negative residuals"}
    return v, meta


def feature_direction(sae, feature: int) -> torch.Tensor:
    """An SAE / transcoder feature's decoder direction ``W_dec[f]`` ``[d_out]`` (float32)."""
    if not 0 <= int(feature) < sae.d_sae:
        raise InputError(f"Feature {feature} is out of range; the SAE has features 0..{sae.d_sae - 1}.")
    return sae.W_dec[int(feature)].detach().float().cpu().clone()
