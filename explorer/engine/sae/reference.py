"""A fixed reference variance for an SAE's reconstruction error, stored with the SAE.

The prompt-relative FVU of a token, ``‖y_t − ŷ_t‖² / mean_s ‖y_s − ȳ‖²`` over the prompt, depends
strongly on the prompt (0.98 on a 6-token prompt, ~0.5 on long ones, 0.275 on held-out text)
because the denominator is the prompt's own spread. The reference FVU divides by one number
measured once on the SAE's held-out tokens instead:

    σ²_ref = mean over ordinary held-out tokens s of ‖y_s − ȳ‖²   (ȳ = their mean)

("ordinary": not the first token of a window, not a massive-activation sink; see
``base.ordinary_rows``). ``sae train`` stores it in ``cfg.json`` under
``metadata.quality.reference_variance`` with the token count and where it came from; for an
SAE trained before that, ``python -m explorer.engine.sae.reference`` measures it on held-out
windows of a corpus (every 20th window, as training splits them) and stores it.
Never imports Textual or Rich.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from explorer.engine.sae.base import ordinary_rows

KEY = "reference_variance"


def reference_variance(y: torch.Tensor) -> tuple[float, int]:
    """(σ²_ref, tokens used) for held-out activations ``y`` ``[n, d]`` whose window starts are already left out."""
    keep = ordinary_rows(y, skip_first=False)
    yk = y[keep].double()  # [m, d]
    return float(((yk - yk.mean(0)) ** 2).sum(-1).mean()), int(keep.sum())


def stored_reference(metadata: dict) -> dict | None:
    """``{"value", "tokens", "source"}`` from an SAE's metadata, or None when it has none."""
    quality = (metadata or {}).get("quality") or {}
    value = quality.get(KEY)
    if not isinstance(value, (int, float)) or not value > 0:
        return None
    return {"value": float(value), "tokens": quality.get(KEY + "_tokens"), "source": quality.get(KEY + "_source")}


@torch.no_grad()
def measure_on_corpus(wrapper, hook: str, paths: list[str], context: int, seed: int,
                      max_tokens: int = 4096) -> tuple[float, int, str]:
    """σ²_ref at ``hook`` over held-out windows of a corpus (position 0 of each window left out).

    Returns:
        (σ²_ref, ordinary tokens used, a description of the tokens).
    """
    from explorer.engine.sae.hooks import capture
    from explorer.engine.sae.training.data import CorpusSource

    source = CorpusSource(wrapper, paths, context, seed)
    rows, i = [], 0
    while sum(r.shape[0] for r in rows) < max_tokens and (doc := source.heldout_doc(i)) is not None:
        rows.append(capture(wrapper, doc, [hook])[hook][1:].float().cpu())  # [context − 1, d]
        i += 1
    value, used = reference_variance(torch.cat(rows))
    return value, used, f"{i} held-out windows (every 20th of {source.description}, seed {seed})"


def store(directory: Path, value: float, tokens: int, source: str) -> None:
    """Write σ²_ref into ``directory/cfg.json`` (atomically), keeping every other field."""
    from explorer.io.atomic import atomic_write_text

    cfg_path = directory / "cfg.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    quality = cfg.setdefault("metadata", {}).setdefault("quality", {})
    quality.update({KEY: value, KEY + "_tokens": tokens, KEY + "_source": source})
    atomic_write_text(cfg_path, json.dumps(cfg, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Measure and store the reference variance of an SAE directory trained on the bundled model."""
    p = argparse.ArgumentParser(prog="python -m explorer.engine.sae.reference", description=main.__doc__)
    p.add_argument("sae", help="SAE directory (SAELens cfg.json)")
    p.add_argument("--corpus", nargs="+", required=True, help="files/folders the SAE was trained on")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--note", default="", help="appended to the recorded source")
    args = p.parse_args(argv)
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper

    directory = Path(args.sae)
    hook = json.loads((directory / "cfg.json").read_text(encoding="utf-8"))["metadata"]["hook_name"]
    wrapper = ModelWrapper.from_loaded(load_model("bundled"))
    value, used, source = measure_on_corpus(wrapper, hook, args.corpus, args.context, args.seed, args.tokens)
    store(directory, value, used, source + (f"; {args.note}" if args.note else ""))
    print(json.dumps({"reference_variance": value, "tokens": used, "source": source}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
