"""`sae`: SAE features of a token (`sae features`), and training an SAE for a model (`sae train`).

    main.py sae features --prompt TEXT --layer L [--position P] [--top K] [--sae PATH] [--json]
    main.py sae train --layer L [--corpus FILES/DIRS ...] [--kind topk|jumprelu] [--k 32]
                      [--width N] [--max-tokens N] [--max-seconds S] [--out DIR] [--resume] [--overwrite]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
from pathlib import Path

from explorer.commands.common import (add_model_arguments, add_prompt_arguments, check_input_early,
                                      config_from_args, open_session, progress, prompt_ids_from_args)
from explorer.errors import InputError

NAME = "sae"
HELP = "SAE / transcoder features of a token (sae features), or train an SAE for the model offline (sae train)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = sub.add_parser("features", help="top SAE features of one token, with L0 and FVU",
                       description="Top features of one token of a prompt at an SAE layer, its L0 and FVU.")
    add_prompt_arguments(f)
    f.add_argument("--layer", type=int, default=None, help="SAE layer (default: the first configured one)")
    f.add_argument("--position", type=int, default=-1, metavar="P",
                   help="token index (negative counts from the end; default -1, the last token)")
    f.add_argument("--top", type=int, default=10, metavar="K", help="how many features to list (default 10)")
    f.add_argument("--sae", metavar="PATH", help="an SAE file or folder to use instead of the configured ones")
    f.add_argument("--format", metavar="FMT", help="format of --sae (default: detected from the files)")
    f.add_argument("--hook", metavar="HOOK", help="TL hook --sae reads (default: from its files)")
    f.add_argument("--labels", metavar="FILE", help="Neuronpedia explanations (.jsonl / .jsonl.gz) for --sae")
    f.add_argument("--json", action="store_true", help="print JSON")
    add_model_arguments(f)

    t = sub.add_parser("train", help="train a TopK or JumpReLU SAE on the model's residual stream",
                       description=("Train an SAE on blocks.L.hook_resid_post over local text files, or over text "
                                    "the model samples itself with a fixed seed when no --corpus is given. Writes "
                                    "SAELens files and a feature index; resumable with --resume."))
    t.add_argument("--layer", type=int, required=True, help="block whose output (resid_post) the SAE reads")
    t.add_argument("--corpus", nargs="+", metavar="PATH", default=None, help="text files and/or folders")
    t.add_argument("--kind", choices=("topk", "jumprelu"), default="topk", help="SAE type (default topk)")
    t.add_argument("--k", type=int, default=32, help="active features per token for topk (default 32)")
    t.add_argument("--width", type=int, default=2048, help="number of features (default 2048)")
    t.add_argument("--max-tokens", type=int, default=200_000, help="training tokens to collect (default 200000)")
    t.add_argument("--max-seconds", type=float, default=None, help="wall-clock budget of this run (default none)")
    t.add_argument("--epochs", type=float, default=8.0, help="passes over the collected tokens (default 8)")
    t.add_argument("--context", type=int, default=128, help="tokens per document (default 128)")
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3·√(1024/width))")
    t.add_argument("--l0-coeff", type=float, default=3e-3, help="jumprelu: L0 penalty λ (default 0.003)")
    t.add_argument("--heldout-tokens", type=int, default=4096, help="held-out tokens for the figures (default 4096)")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--out", metavar="DIR", help="output folder (default: the user data folder, saes/...)")
    t.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    t.add_argument("--overwrite", action="store_true", help="replace a trained SAE already in --out")
    t.add_argument("--json", action="store_true", help="print the final figures as JSON")
    add_model_arguments(t)


def run(args: argparse.Namespace) -> int:
    return _features(args) if args.action == "features" else _train(args)


# --------------------------------------------------------------------------- features
def _features(args: argparse.Namespace) -> int:
    from explorer.config import SaeEntry

    if not 1 <= args.top <= 10_000:
        raise InputError(f"--top must be between 1 and 10000, found {args.top}.")
    if args.layer is not None and args.layer < 0:
        raise InputError(f"--layer must be 0 or more, found {args.layer}.")
    if args.sae is not None:
        if args.layer is None:
            raise InputError("--sae needs --layer (the block the SAE belongs to).")
        if not Path(args.sae).expanduser().exists():
            raise InputError(f"SAE path {args.sae} does not exist.")
    check_input_early(args)
    cfg = config_from_args(args)
    if args.sae is not None:
        entry = SaeEntry(layer=args.layer, path=str(Path(args.sae).expanduser().resolve()), format=args.format,
                         hook=args.hook, labels=str(Path(args.labels).expanduser().resolve()) if args.labels else None)
        cfg = cfg.replace(model=dataclasses.replace(cfg.model, enable_sae=True), sae=(entry,))
    session = open_session(args, cfg)
    ids = prompt_ids_from_args(args, session)
    session.replace_ids(ids)
    n = len(ids)
    pos = args.position + n if args.position < 0 else args.position
    if not 0 <= pos < n:
        raise InputError(f"--position {args.position} is outside the prompt's {n} tokens.")

    from explorer.engine.sae.catalog import catalog_for

    catalog = catalog_for(cfg, session.wrapper)
    layer = catalog.layers[0] if args.layer is None else args.layer
    if layer not in catalog.layers:
        raise InputError(f"No SAE is configured for layer {layer}; configured layers: "
                         f"{', '.join(map(str, catalog.layers))} (or give one with --sae).")
    loaded = catalog.load(layer)
    pf = catalog.features(tuple(ids), layer)
    top = [{"index": j, "activation": a, "label": catalog.label(layer, j)} for j, a in pf.top(pos, args.top)]
    w = session.wrapper
    from explorer.engine.sae.reference import stored_reference

    reference = stored_reference(getattr(loaded.model, "metadata", {}))
    result = {
        "model": w.name, "prompt": w.decode(ids), "token_ids": list(ids), "layer": layer,
        "hook_in": pf.hook_in, "hook_out": pf.hook_out, "sae": loaded.describe(), "d_sae": pf.d_sae,
        "position": pos, "token": w.token_text(ids[pos]).text, "l0": int(pf.l0[pos]), "fvu": pf.fvu(pos),
        "prompt_fvu": pf.prompt_fvu, "features": top, "notes": list(pf.notes),
        "sq_error": float(pf.sq_err[pos]),
        "reference_fvu": float(pf.sq_err[pos]) / reference["value"] if reference else None,
        "reference_variance": reference,
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{result['sae']}")
    fvu = "n/a" if result["fvu"] is None else f"{result['fvu']:.3f}"
    pfvu = "n/a" if result["prompt_fvu"] is None else f"{result['prompt_fvu']:.3f}"
    rfvu = "n/a (no reference variance stored)" if reference is None else f"{result['reference_fvu']:.3f}"
    print(f"token {pos} {result['token']!r}: L0 {result['l0']}, prompt-relative FVU {fvu} (whole prompt {pfvu}), "
          f"reference FVU {rfvu}")
    for item in top:
        print(f"  #{item['index']:<7} {item['activation']:>9.3f}  {item['label'] or ''}".rstrip())
    for note in pf.notes:
        print(f"note: {note}")
    return 0


# --------------------------------------------------------------------------- train
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def _train(args: argparse.Namespace) -> int:
    from explorer.engine.sae.training.train import Progress, Trainer, TrainSettings

    settings = TrainSettings(
        layer=args.layer, kind=args.kind, k=args.k, width=args.width, max_tokens=args.max_tokens,
        max_seconds=args.max_seconds, context=args.context, epochs=args.epochs, lr=args.lr,
        l0_coeff=args.l0_coeff, heldout_tokens=args.heldout_tokens,
        seed=args.seed if args.seed is not None else 0, corpus=tuple(args.corpus or ()))
    settings.check()
    if args.threads is not None and not 1 <= args.threads <= 512:
        raise InputError(f"--threads must be between 1 and 512, found {args.threads}.")
    if args.epochs <= 0:
        raise InputError(f"--epochs must be positive, found {args.epochs}.")
    if args.out and not args.resume:  # before the model loads: refusing costs no time
        from explorer.engine.sae.training.train import check_not_trained

        check_not_trained(Path(args.out).expanduser(), args.overwrite)
    if args.corpus:
        from explorer.engine.sae.training.data import read_corpus_files

        if not read_corpus_files(args.corpus):
            raise InputError(f"No text files found in {', '.join(args.corpus)}.")
    cfg = config_from_args(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    session = open_session(args, cfg)
    w = session.wrapper
    out = Path(args.out).expanduser() if args.out else None
    if out is None:
        from explorer.paths import data_dir

        out = data_dir() / "saes" / f"{_slug(w.name)}-L{args.layer}-{args.kind}-k{args.k}-w{args.width}"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder.")
    progress(f"Training a {args.kind} SAE (width {args.width}) on blocks.{args.layer}.hook_resid_post of {w.name} "
             f"into {out}")
    report = Trainer(w, settings, out, resume=args.resume, progress=Progress(), overwrite=args.overwrite).run()
    figures = {"fvu": report.fvu, "fvu_all_tokens": report.fvu_all_tokens, "massive_tokens": report.massive_tokens,
               "l0": report.l0, "dead_fraction": report.dead_fraction,
               "dead_fraction_heldout": report.dead_fraction_heldout, "heldout_tokens": report.heldout_tokens,
               "train_tokens": report.train_tokens, "steps": report.steps, "seconds": report.seconds,
               "out": report.out, "source": report.source}
    if args.json:
        print(json.dumps(figures))
        return 0
    fvu = "nan" if math.isnan(report.fvu) else f"{report.fvu:.4f}"
    print(f"SAE written to {report.out} (cfg.json, sae_weights.safetensors, feature_index.sqlite, training.json)")
    print(f"trained on {report.train_tokens:,} tokens of {report.source}; {report.steps} steps, {report.seconds:.0f} s")
    print(f"held-out ({report.heldout_tokens:,} tokens): FVU {fvu}, L0 {report.l0:.1f} "
          f"(FVU {report.fvu_all_tokens:.4f} with the {report.massive_tokens} massive-activation sink tokens included)")
    print(f"dead features: {report.dead_fraction * 100:.1f}% never active on the {report.train_tokens + report.heldout_tokens:,} "
          f"scanned tokens ({report.dead_fraction_heldout * 100:.1f}% inactive on the held-out tokens alone)")
    return 0
