"""The data of a shareable report: a prompt, the modes chosen for it, and where it all came from.

``build_report`` runs the chosen modes from the registry (the very code the app and
``analyze`` run) and gathers plain Python values — numbers, strings, lists — that
``explorer.io.html_report`` turns into one self-contained HTML file and also embeds as JSON.
It is not a mode itself. Never imports Textual or Rich.

The dict (``schema_version`` REPORT_SCHEMA_VERSION; ``prob`` is always a probability in [0, 1]):

``{"schema_version", "kind": "token-explorer-report", "provenance", "prompt": {"text", "cursor"}, "n_layers",
"tokens": [{"index", "id", "text", "visible", "kind", "prob", "logprob", "rank", "entropy_bits",
"alternatives": [{"id", "text", "prob"}]}], "next": [{"rank", "id", "text", "prob", "logit"}],
"modes": [{"name", "label", "legend", "unit", "lo", "hi", "colors", "values", "shown", "colours",
"layers", "checks", "details", "unavailable"}], "decoding": {...} | null, "interventions": [...] | null}``
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from explorer.analyses.base import AnalysisContext
from explorer.analyses.cache import ResultCache, compute_mode
from explorer.analyses.registry import get_analysis
from explorer.colors import scale_color
from explorer.errors import AnalysisUnavailable
from explorer.schema import REPORT_SCHEMA_VERSION

ALTERNATIVES = 10
"""Alternatives listed per token in its tooltip (the trace keeps the top 20 of every position)."""


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _token_rows(view, trace, wrapper) -> list[dict]:
    """Every prompt token with the numbers of the distribution it was drawn from and its top alternatives."""
    rows = []
    for info in view.tokens:
        alternatives: list[dict] = []
        if info.index > 0:
            p = info.index - 1  # the distribution at p predicts token p + 1
            lse = trace.logsumexp[p]
            ids = trace.top_ids[p].tolist()[:ALTERNATIVES]  # [k]
            logits = trace.top_logits[p].tolist()[:ALTERNATIVES]  # [k]
            alternatives = [{"id": int(t), "text": wrapper.token_text(int(t)).text, "prob": math.exp(z - lse)}
                            for t, z in zip(ids, logits)]
        rows.append({"index": info.index, "id": info.id, "text": info.text.text, "visible": info.text.visible(),
                     "kind": info.text.kind, "prob": _num(info.prob), "logprob": _num(info.logprob),
                     "rank": info.rank, "entropy_bits": _num(info.entropy_bits), "alternatives": alternatives})
    return rows


def _mode_block(name: str, ctx: AnalysisContext, cache: ResultCache, config) -> dict:
    analysis = get_analysis(name)
    # Only the options go into the page's JSON: session-level inputs the app hands every mode
    # (the comparison view of a second model) are objects, not options.
    options = {k: v for k, v in ctx.params.items() if isinstance(v, (str, int, float, bool, type(None), list))}
    block: dict[str, Any] = {"name": analysis.name, "label": analysis.label, "params": options}
    if analysis.name == "sae_features":  # the SAE entries live in the config (as in the app)
        ctx = AnalysisContext(view=ctx.view, wrapper=ctx.wrapper, cursor=ctx.cursor,
                              params={**ctx.params, "config": config})
    try:
        result = compute_mode(analysis, ctx, cache)
    except AnalysisUnavailable as exc:
        block["unavailable"] = exc.message
        return block
    values = [_num(v) for v in result.values]
    coloured = result.color_values if result.color_values is not None else result.values
    block.update(
        legend=result.legend, unit=result.unit, lo=result.lo, hi=result.hi, colors=list(result.colors),
        values=values,
        shown=[None if v is None else result.fmt.format(v) for v in values],
        colours=[scale_color(_num(v), result.lo, result.hi, result.colors) for v in coloured],
        layers=None if not result.layers else {k: [_num(v) for v in s] for k, s in result.layers.items()},
        checks={k: _num(v) for k, v in result.checks.items()}, details=list(result.details),
        unavailable=None,
    )
    return block


def _decoding_block(lab) -> dict:
    """A LabView (the decoding lab applied to the next token) as plain values."""
    s = lab.settings
    settings = {k: getattr(s, k) for k in ("temperature", "top_k", "top_p", "min_p", "typical_p",
                                           "repetition_penalty", "epsilon", "eta", "do_sample")}
    settings["bans"] = [list(b) for b in s.bans]
    settings["biases"] = [[list(seq), v] for seq, v in s.biases]
    return {
        "description": s.describe(), "settings": settings, "survivors": lab.survivors, "vocab_size": lab.vocab_size,
        "stages": [{"name": st.name, "processor": st.processor, "survivors": st.survivors, "removed": st.removed,
                    "mass_kept": st.mass_kept, "raw_mass_kept": st.raw_mass_kept} for st in lab.stages],
        "rows": [{"rank": r.rank, "id": r.id, "text": r.text.text, "raw_prob": r.raw_prob,
                  "processed_prob": r.processed_prob, "removed_by": r.removed_by} for r in lab.rows],
        "notes": list(lab.notes),
    }


def build_report(session, modes: Sequence[str], *, cursor: int | None = None,
                 params: dict[str, dict] | None = None, decoding=None, regex: str | None = None,
                 interventions: list[dict] | None = None,
                 cache: ResultCache | None = None, hash_weights: bool = True, next_rows: int = 20) -> dict:
    """Compute the chosen modes for the session's current prompt and gather the report's data.

    Args:
        session: a Session (its current prompt is reported).
        modes: registry names, in the order the report shows them.
        cursor: index of the token whose per-layer plots are shown (default: the last token;
            negative counts from the end).
        params: per-mode options, ``{mode name: {key: value}}`` (as the app's mode options).
        decoding: DecodingSettings applied to the next token (the lab's table), or None.
        regex: with ``decoding``, a pattern the next token must keep matchable (the lab's
            constraint, as ``next --regex``); the table then cuts the other tokens "by regex".
        interventions: the interventions in effect (plain dicts, as saved with the session), or None.
        cache: a ResultCache to reuse lazy results (the app's); a fresh one otherwise.
        hash_weights: include the SHA-256 of the weights (a few seconds for the bundled model).
        next_rows: rows of the next-token table.

    Returns:
        The report dict described in this module's docstring.
    """
    from explorer.engine.provenance import provenance

    view = session.compute()
    n = len(view.ids)
    cursor = n - 1 if cursor is None else cursor
    if not -n <= cursor < n:
        from explorer.errors import InputError

        raise InputError(f"The cursor {cursor} is outside the prompt's {n} tokens (0..{n - 1}).")
    cursor %= n
    wrapper = session.wrapper
    trace = session.trace_for(*session.snapshot())
    cache = cache if cache is not None else ResultCache(session.config.display.cache_size)
    params = params or {}
    blocks = [_mode_block(name, AnalysisContext(view=view, wrapper=wrapper, cursor=cursor,
                                                params=dict(params.get(name, {}))), cache, session.config)
              for name in modes]
    lab = None
    if decoding is not None:
        from explorer.engine.decoding.pipeline import lab_view

        allowed, constraint = None, None
        if regex is not None:
            from explorer.engine.decoding.constraint import compile_regex

            # The report shows the next token after the prompt: the constraint starts there.
            constraint = compile_regex(wrapper, regex).new_tracker().step([])
            allowed = constraint.allowed_ids()
        with wrapper.lock:
            lab = _decoding_block(lab_view(wrapper, trace, decoding, next_rows, allowed_ids=allowed))
        if constraint is not None:
            lab["regex"] = {"pattern": regex, "allowed": constraint.n_allowed, "accepting": constraint.accepting}
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "token-explorer-report",
        "provenance": provenance(wrapper, session.seed, hash_weights=hash_weights),
        "prompt": {"text": wrapper.tokenizer.decode(list(view.ids)), "cursor": cursor},
        "n_layers": wrapper.n_layers,
        "tokens": _token_rows(view, trace, wrapper),
        "next": [{"rank": c.rank, "id": c.id, "text": c.text.text, "prob": c.prob, "logit": c.logit}
                 for c in view.candidates[:next_rows]],
        "modes": blocks,
        "decoding": lab,
        "interventions": list(interventions) if interventions else None,
    }
