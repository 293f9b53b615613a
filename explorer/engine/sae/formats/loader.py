"""Format detection from the files, and the one ``load_sae`` every caller uses.

Formats (``format`` in ``[[sae]]``): ``saelens``, ``gemma_scope``, ``gemma_scope_2``,
``circuit_tracer``, ``circuit_tracer_clt``, ``sparsify``. Detection, in order:

* a folder with ``cfg.json`` + ``sae_weights.safetensors`` -> saelens; with ``sae.safetensors``
  -> sparsify; with ``params.npz`` -> gemma_scope; ``params.safetensors`` -> gemma_scope_2;
  ``W_enc_0.safetensors`` -> circuit_tracer_clt; ``layer_{L}.safetensors`` -> circuit_tracer;
* a file: ``.npz`` -> gemma_scope; otherwise by the tensor names in the safetensors header
  (``w_enc`` -> gemma_scope_2, ``encoder.weight`` -> sparsify, ``W_enc`` with a cfg.json beside
  it -> saelens, ``W_enc`` alone -> circuit_tracer).

Never imports Textual or Rich.
"""

from __future__ import annotations

from pathlib import Path

from explorer.engine.sae.base import Sae, SaeLoadError
from explorer.engine.sae.formats.clt import CrossLayerTranscoder
from explorer.engine.sae.formats.files import safetensors_keys

FORMATS = ("saelens", "gemma_scope", "gemma_scope_2", "circuit_tracer", "circuit_tracer_clt", "sparsify")


def detect_format(path: Path, layer: int | None = None) -> str:
    """Name the format of an SAE file or folder (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        if (path / "cfg.json").is_file() and (path / "sae_weights.safetensors").is_file():
            return "saelens"
        if (path / "cfg.json").is_file() and (path / "sae.safetensors").is_file():
            return "sparsify"
        if (path / "params.npz").is_file():
            return "gemma_scope"
        if (path / "params.safetensors").is_file():
            return "gemma_scope_2"
        if (path / "W_enc_0.safetensors").is_file():
            return "circuit_tracer_clt"
        if layer is not None and (path / f"layer_{layer}.safetensors").is_file():
            return "circuit_tracer"
        raise SaeLoadError(
            f"{path} holds no SAE files this app reads (cfg.json + sae_weights.safetensors, cfg.json + "
            "sae.safetensors, params.npz, params.safetensors, W_enc_0.safetensors or layer_L.safetensors)."
        )
    if not path.exists():
        raise SaeLoadError(f"SAE path {path} does not exist.")
    if path.suffix == ".npz":
        return "gemma_scope"
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt", ".pkl"):
        raise SaeLoadError(f"{path} is a pickled checkpoint; this app reads SAEs only from safetensors or .npz files.")
    if path.suffix != ".safetensors":
        raise SaeLoadError(f"{path} is not an SAE weights file (.safetensors or .npz).")
    keys = safetensors_keys(path)
    if "w_enc" in keys:
        return "gemma_scope_2"
    if "encoder.weight" in keys:
        return "sparsify"
    if any(k.startswith("W_enc_") for k in keys):
        return "circuit_tracer_clt"
    if "W_enc" in keys:
        return "saelens" if (path.parent / "cfg.json").is_file() else "circuit_tracer"
    raise SaeLoadError(f"{path}: no W_enc / w_enc / encoder.weight tensor; not an SAE file this app reads.")


def load_sae(path: Path, *, format: str | None = None, layer: int | None = None, hook: str | None = None,
             where: str = "") -> Sae | CrossLayerTranscoder:
    """Load an SAE, transcoder or CLT from a local file or folder.

    Args:
        path: the weights file, or the folder holding the format's files.
        format: one of FORMATS; detected from the files when None.
        layer: the configured block index (a folder of per-layer files needs it).
        hook: TL input hook overriding what the files say.
        where: the hub repo id and filename, which Gemma Scope hooks are inferred from.

    Returns:
        a Sae, or a CrossLayerTranscoder for a CLT folder.

    Raises:
        SaeLoadError: one sentence naming the file and what was expected.
    """
    path = Path(path).expanduser()
    fmt = format or detect_format(path, layer)
    if fmt not in FORMATS:
        raise SaeLoadError(f'Unknown SAE format "{fmt}"; use one of {", ".join(FORMATS)}.')
    if fmt == "saelens":
        from explorer.engine.sae.formats.saelens import load_saelens

        return load_saelens(path if path.is_dir() else path.parent, hook=hook)
    if fmt == "sparsify":
        from explorer.engine.sae.formats.sparsify import load_sparsify

        return load_sparsify(path if path.is_dir() else path.parent, hook=hook)
    if fmt == "gemma_scope":
        from explorer.engine.sae.formats.gemma_scope import load_gemma_scope

        return load_gemma_scope(path / "params.npz" if path.is_dir() else path, hook=hook, where=where, layer=layer)
    if fmt == "gemma_scope_2":
        from explorer.engine.sae.formats.gemma_scope_2 import load_gemma_scope_2

        return load_gemma_scope_2(path / "params.safetensors" if path.is_dir() else path, hook=hook,
                                  where=where, layer=layer)
    if fmt == "circuit_tracer_clt":
        return CrossLayerTranscoder(path if path.is_dir() else path.parent, hook=hook)
    from explorer.engine.sae.formats.circuit_tracer import load_circuit_tracer

    if path.is_dir():
        if layer is None:
            raise SaeLoadError(f"{path}: a folder of per-layer transcoders needs layer in the [[sae]] entry.")
        path = path / f"layer_{layer}.safetensors"
    return load_circuit_tracer(path, layer=layer, hook=hook)
