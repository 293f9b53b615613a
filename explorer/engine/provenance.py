"""Where a number came from: model, weights hash, dtype, device, seed and software versions.

Reports and exports carry this so a reader can tell whether two files describe the same
model run. Never imports Textual or Rich.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform

import torch


@torch.inference_mode()
def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers exactly as loaded (names, dtypes, shapes, bytes).

    Two loads of the same weights in the same dtype give the same hash; the float32 and the
    bfloat16 load of one checkpoint give different hashes, which is what a reader of a
    report needs to know. Measured 2.5 s for the bundled model (540 MB, float32) on a heavily
    loaded 2-core machine (bench/bench_report.py).
    """
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{str(t.dtype)}|{tuple(t.shape)}\n".encode())
        # Reinterpret as bytes: numpy has no bfloat16, a view as uint8 works for every dtype.
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of the explorer, Python, torch and transformers."""
    import transformers

    from explorer import __version__

    return {"explorer": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__}


def provenance(wrapper, seed: int | None, *, hash_weights: bool = True) -> dict:
    """The provenance block of an export for a loaded model.

    Args:
        wrapper: the ModelWrapper that computed the numbers.
        seed: the session's sampling seed (None when nothing was sampled).
        hash_weights: compute ``weights_sha256`` (seconds for a few hundred MB of weights).

    Returns:
        ``{"model", "weights_sha256", "dtype", "device", "seed", "versions", "created"}``;
        ``created`` is an ISO-8601 UTC time.
    """
    return {
        "model": wrapper.name,
        "weights_sha256": weights_sha256(wrapper.model) if hash_weights else None,
        "dtype": wrapper.info().dtype,
        "device": str(wrapper.device),
        "seed": seed,
        "versions": software_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
