"""Reading the files SAE formats are stored in, safely, with one-sentence errors.

safetensors and ``.npz`` (numpy with ``allow_pickle=False``) only; JSON and YAML through
their safe loaders. A pickled tensor file is never unpickled here (the formats we read do
not need it). Never imports Textual or Rich.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from explorer.engine.sae.base import SaeLoadError


def read_safetensors(path: Path, keys: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file as float32 on the CPU (``keys``: only those, when given)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SaeLoadError(f"SAE weights file {path} does not exist.")
    try:
        out: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():
                if keys is None or key in keys:
                    out[key] = f.get_tensor(key).float()
        return out
    except SaeLoadError:
        raise
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise SaeLoadError(f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}).") from exc


def safetensors_keys(path: Path) -> dict[str, list[int]]:
    """Key -> shape of a safetensors file, without reading the tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:
        raise SaeLoadError(f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}).") from exc


def read_npz(path: Path) -> dict[str, torch.Tensor]:
    """Arrays of an ``.npz`` file as float32 tensors; pickled objects are refused."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise SaeLoadError(f"SAE weights file {path} does not exist.")
    try:
        with np.load(str(path), allow_pickle=False) as data:
            return {k: torch.from_numpy(np.asarray(data[k], dtype=np.float32)) for k in data.files}
    except ValueError as exc:
        raise SaeLoadError(f"{path} holds pickled objects, which are never loaded; use a plain .npz of arrays.") from exc
    except Exception as exc:
        raise SaeLoadError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}).") from exc


def read_json(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SaeLoadError(f"SAE config file {path} does not exist.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SaeLoadError(f"{path} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise SaeLoadError(f"{path} must hold a JSON object, found {type(data).__name__}.")
    return data


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml  # PyYAML, a dependency of transformers and huggingface_hub

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SaeLoadError(f"{path} is not valid YAML ({exc}).") from exc
    if not isinstance(data, dict):
        raise SaeLoadError(f"{path} must hold a YAML mapping, found {type(data).__name__}.")
    return data
