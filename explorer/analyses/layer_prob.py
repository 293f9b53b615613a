"""Layer probabilities: the logit lens on the token under the cursor, layer by layer (SCIENCE.md 5.1).

For the cursor token t (t >= 1) the lens is read at position t-1, the distribution the
token was drawn from: per residual layer l = 0..L its probability, rank, the lens top-1,
the entropy (bits) and KL(p_L ‖ p_l); the crystallisation layer is the first layer from
which the final top-1 stays top-1. Tokens are coloured by p_l(token | tokens before it)
at the chosen ``layer`` (default L // 2). Self-checks: KL between the lens at layer L and
the model's own output at t-1, and the largest difference between p_L of every token and
the probability the app's trace computed. Enabled with ``--layer_prob`` (key p).
Never imports Textual or Rich.
"""

from __future__ import annotations

import math

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.analyses.lens import lens_at_position
from explorer.analyses.support import int_param, residual_layers, residuals, token_lens_probs


def _trace_prob_error(ctx: AnalysisContext, lens_final) -> float:
    """max_i |p_L(ids[i]) − the trace's p(ids[i])| over tokens with a probability."""
    diffs = [abs(float(lens_final[i]) - tok.prob) for i, tok in enumerate(ctx.view.tokens) if tok.prob is not None]
    return max(diffs) if diffs else 0.0


class LayerProbMode:
    name = "layer_prob"
    label = "Layer probability (lens)"
    lazy = True
    requires = frozenset({"hidden_states"})
    needs_flag = "layer_prob"
    params = (ParamSpec("layer", "residual layer coloured (0 = embeddings .. L; default L//2)", (), None,
                        keys=("<", ">"), options=residual_layers),)

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        n = len(ctx.view.ids)
        pos = t - 1 if t >= 1 else None
        cap = residuals(ctx, logit_positions=(pos,) if pos is not None else None)
        L = cap.n_layers
        layer = int_param(ctx, "layer", L // 2, L + 1, "residual layers")
        probs = token_lens_probs(ctx, cap, [layer, L])  # [2, n]
        values = tuple(None if math.isnan(v) else float(v) for v in probs[0].tolist())
        checks = {"max_prob_diff_last_layer_vs_trace": _trace_prob_error(ctx, probs[1])}
        legend = (f"Logit lens p(token | tokens before it) read at residual layer {layer} of 0..{L} "
                  f"(final norm applied once): red 0 → blue 1. The first token has none.")
        if pos is None:
            return ModeResult(values=values, lo=0.0, hi=1.0, legend=legend, fmt="{:.4f}", checks=checks,
                              details=("The first token has no prediction: move the cursor right for its lens.",),
                              extra={"layer": layer, "cursor": t})
        target = int(ctx.view.ids[t])
        lens = lens_at_position(ctx.wrapper, cap, pos, target)
        checks["lens_kl_last"] = lens.kl_last_vs_model
        top1_text = [ctx.wrapper.token_text(i).text for i in lens.top1]
        cryst = lens.crystallisation
        cryst_line = (f"final top-1 {top1_text[-1]!r} is top-1 from layer {cryst} on" if cryst is not None
                      else "no crystallisation")
        return ModeResult(
            values=values, lo=0.0, hi=1.0, colors=("#d73027", "#4575b4"), legend=legend, fmt="{:.4f}",
            layers={"prob": lens.prob, "rank": [float(r) for r in lens.rank], "entropy_bits": lens.entropy_bits,
                    "kl_from_final": lens.kl_from_final},
            checks=checks,
            details=(f"Token {t + 1} {ctx.wrapper.token_text(target).text!r}: lens at position {pos + 1}, layers 0..{L} (plot).",
                     f"p at layer {L} = {lens.prob[-1]:.4f} (model: {ctx.view.tokens[t].prob:.4f}); {cryst_line}.",
                     f"KL(model ‖ lens at layer {L}) = {lens.kl_last_vs_model:.2e} nats (self-check).",
                     "rank and top-1: equal logits are ordered by token id (lower id first), so ties are "
                     "broken the same way every time."),
            extra={"layer": layer, "cursor": t, "position": pos, "target_id": target,
                   "top1_ids": lens.top1, "top1_text": top1_text, "crystallisation_layer": cryst},
        )
