"""`next`: the next-token table the app would show for a prompt, as text or JSON.

With decoding-lab flags (--temperature ... --ban, --bias, --regex) each row also gets the
processed probability and the stage that removed the token, and a per-stage summary follows.
"""

from __future__ import annotations

import argparse
import json

from explorer.commands.common import (add_model_arguments, add_prompt_arguments, check_input_early,
                                      config_from_args, open_session, prompt_ids_from_args)
from explorer.commands.decoding_args import (add_decoding_arguments, check_decoding_early, decoding_requested,
                                             regex_from_args, settings_from_args)
from explorer.errors import InputError
from explorer.schema import NEXT_SCHEMA_VERSION

NAME = "next"
HELP = "print the next-token table for a prompt (token, id, probability, logit, z-score)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_prompt_arguments(p)
    p.add_argument("--top", type=int, default=None, metavar="K",
                   help="how many tokens to list (default: [display] tokens_to_show)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--sample", action="store_true",
                   help="also draw the next token from the processed distribution with --seed (default seed 0)")
    add_decoding_arguments(p)
    add_model_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.top is not None and not 1 <= args.top <= 100_000:
        raise InputError(f"--top must be between 1 and 100000, found {args.top}.")
    check_input_early(args)
    lab = decoding_requested(args) or args.sample
    if lab:
        check_decoding_early(args)
    cfg = config_from_args(args)
    if args.top is not None:
        import dataclasses

        cfg = cfg.replace(display=dataclasses.replace(cfg.display, tokens_to_show=args.top))
    session = open_session(args, cfg)
    if lab:
        from explorer.engine.interface import FULL_LOGITS, missing_capabilities

        if missing_capabilities(session.wrapper, {FULL_LOGITS}):
            raise InputError("The decoding-lab flags need every next-token logit, which this engine (a served "
                             "model) does not give; use them with a local model.")
    ids = prompt_ids_from_args(args, session)
    session.replace_ids(ids)
    view = session.compute()
    lab_result = _lab(args, session, view) if lab else None
    if args.json:
        candidates = []
        for c in view.candidates:
            row = {"rank": c.rank, "token": c.text.text, "id": c.id, "prob": c.prob,
                   "logprob": c.logprob, "logit": c.logit, "zscore": c.zscore,
                   "special": c.text.kind == "special"}
            if lab_result is not None:
                row.update(_lab_fields(lab_result.step, c.id))
            candidates.append(row)
        out = {
            "schema_version": NEXT_SCHEMA_VERSION,
            "model": session.wrapper.name,
            "prompt": session.wrapper.decode(view.ids),
            "token_ids": list(view.ids),
            "entropy_bits": view.next_entropy_bits,
            "entropy_is_lower_bound": view.entropy_is_lower_bound,
            "covered_mass": view.covered_mass,
            "energy": view.next_energy,
            "notes": list(view.notes),
            "candidates": candidates,
        }
        if lab_result is not None:
            out["decoding"] = lab_result.to_json(session.wrapper, view)
        print(json.dumps(out, ensure_ascii=False))
        return 0
    for note in view.notes:
        print(f"note: {note}")
    if lab_result is None:
        print(f"{'rank':>4}  {'token':<24} {'id':>7}  {'prob':>8}  {'logit':>8}  {'z':>6}")
        for c in view.candidates:
            print(f"{c.rank:>4}  {c.text.visible()[:24]:<24} {c.id:>7}  {c.prob:>8.4f}  {_num(c.logit, 8, 3)}  "
                  f"{_num(c.zscore, 6, 2)}")
    else:
        step = lab_result.step
        print(f"{'rank':>4}  {'token':<24} {'id':>7}  {'prob':>8}  {'logit':>8}  {'z':>6}  {'processed':>9}  removed by")
        for c in view.candidates:
            removed = step.removed_by(c.id) or ""
            print(f"{c.rank:>4}  {c.text.visible()[:24]:<24} {c.id:>7}  {c.prob:>8.4f}  {c.logit:>8.3f}  {c.zscore:>6.2f}"
                  f"  {float(step.probs[c.id]):>9.4f}  {removed}")
        for row in lab_result.extra_rows(session.wrapper, view):
            print(f"{row['rank']:>4}  {session.wrapper.token_text(row['id']).visible()[:24]:<24} {row['id']:>7}  "
                  f"{row['prob']:>8.4f}  {row['logit']:>8.3f}  {'':>6}  {row['processed_prob']:>9.4f}  "
                  f"{row['removed_by'] or ''} (banned/biased)")
    if view.entropy_is_lower_bound:
        print(f"entropy >= {view.next_entropy_bits:.3f} bits (lower bound: the rows cover {view.covered_mass:.2%} "
              "of the probability mass), energy not available from this engine")
    else:
        print(f"entropy {view.next_entropy_bits:.3f} bits, energy {view.next_energy:.3f}")
    if lab_result is not None:
        step = lab_result.step
        print(f"decoding: {step.settings.describe()}")
        for st in step.stages:
            floor = "  (kept the best one: every token would go)" if st.kept_by_floor else ""
            print(f"  {st.name:<18} {st.processor:<36} kept {st.survivors:>6} tokens, "
                  f"{st.mass_kept:7.2%} of its input mass, {st.raw_mass_kept:7.2%} of raw mass{floor}")
        print(f"  {step.survivors} of {int(step.scores.shape[-1])} tokens can be chosen")
        for note in step.notes:
            print(f"note: {note}")
        if lab_result.constraint is not None:
            print(f"regex: {lab_result.constraint.n_allowed} tokens allowed"
                  + (" (the text already matches)" if lab_result.constraint.accepting else ""))
        if lab_result.sampled is not None:
            tid = lab_result.sampled
            print(f"sampled (seed {session.seed}): {session.wrapper.token_text(tid).visible()!s} (id {tid}, "
                  f"processed p = {float(step.probs[tid]):.4f})")
    return 0


def _num(x: float | None, width: int, places: int) -> str:
    """A right-aligned number, or "n/a" where the engine has none (a served model has no logits)."""
    return f"{'n/a':>{width}}" if x is None else f"{x:>{width}.{places}f}"


def _lab_fields(step, token_id: int) -> dict:
    return {"raw_prob": float(step.raw_probs[token_id]), "processed_prob": float(step.probs[token_id]),
            "processed_logit": _finite_or_none(float(step.scores[token_id])), "removed_by": step.removed_by(token_id)}


def _finite_or_none(x: float):
    import math

    return x if math.isfinite(x) else None


class _LabResult:
    def __init__(self, step, constraint, sampled) -> None:
        self.step = step
        self.constraint = constraint
        self.sampled = sampled

    def extra_rows(self, wrapper, view) -> list[dict]:
        """Banned and biased tokens outside the table, so a ban or a boost is visible."""
        shown = {c.id for c in view.candidates}
        settings = self.step.settings
        ids = [s[-1] for s in settings.bans] + [s[-1] for s, _ in settings.biases]
        raw = self.step.raw_logits
        rows = []
        for tid in dict.fromkeys(ids):
            if tid in shown:
                continue
            rows.append({"rank": int((raw > raw[tid]).sum()) + 1, "token": wrapper.token_text(tid).text, "id": tid,
                         "prob": float(self.step.raw_probs[tid]), "logit": float(self.step.raw_logits[tid]),
                         **_lab_fields(self.step, tid)})
        return rows

    def to_json(self, wrapper, view) -> dict:
        import dataclasses

        s = self.step.settings
        out = {
            "settings": {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "min_p": s.min_p,
                         "typical_p": s.typical_p, "repetition_penalty": s.repetition_penalty,
                         "epsilon": s.epsilon, "eta": s.eta, "do_sample": s.do_sample,
                         "bans": [list(b) for b in s.bans], "biases": [[list(k), v] for k, v in s.biases]},
            "stages": [dataclasses.asdict(st) for st in self.step.stages],
            "survivors": self.step.survivors,
            "vocab_size": int(self.step.scores.shape[-1]),
            "notes": list(self.step.notes),
            "extra_candidates": self.extra_rows(wrapper, view),
        }
        if self.constraint is not None:
            out["regex"] = {"allowed": self.constraint.n_allowed, "accepting": self.constraint.accepting,
                            "finished": self.constraint.finished}
        if self.sampled is not None:
            out["sampled"] = {"id": self.sampled, "token": wrapper.token_text(self.sampled).text}
        return out


def _lab(args, session, view) -> _LabResult:
    from explorer.engine.decoding.pipeline import SeededSampler, process_logits

    wrapper = session.wrapper
    settings = settings_from_args(args, wrapper)
    regex = regex_from_args(args)
    constraint = None
    allowed = None
    if regex is not None:
        from explorer.engine.decoding.constraint import compile_regex

        constraint = compile_regex(wrapper, regex).new_tracker().step([])
        allowed = constraint.allowed_ids()
    with wrapper.lock:
        trace = session.trace_for(*session.snapshot())
        step = process_logits(trace.last_row(), trace.ids, settings, eos_ids=wrapper.eos_ids, allowed_ids=allowed)
    sampled = SeededSampler(session.seed).draw(step) if args.sample else None
    return _LabResult(step, constraint, sampled)
