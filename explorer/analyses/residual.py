"""Residual stream: its L2 norm per layer, a tokens × layers heatmap, and what each sub-layer adds.

Everything is read with hooks on the real modules (``explorer.engine.capture``), never
estimated. For the cursor token t:
  * ``resid_norm[l] = ‖resid[l][t]‖₂`` for residual layers l = 0..L (0 = embeddings,
    L = last block output before the final norm);
  * per block b: ``‖attn_out‖₂``, ``‖mlp_out‖₂`` and the norm share of attention in the
    update, ``‖attn_out‖ / (‖attn_out‖ + ‖mlp_out‖)``;
  * per block b, the contributions of Ferrando & Voita (SCIENCE.md 5.6,
    ``explorer.engine.contributions``): resid_mid is split into the residual (resid_pre) and
    one part per attention head h and source token j, ``a_{t←j,h} = A_h[t,j]·W_O^h W_V^h N(x_j)``;
    resid_post into resid_mid and mlp_out. ``prox(c, x) = max(ε, ‖x‖₁ − ‖x − c‖₁)`` over the sum
    of all parts, shares below ``threshold`` zeroed and the rest renormalised. Per block the
    panel shows the residual's share, the heads and source tokens that carry the update, and
    the MLP's share; a block where every part is at the ε floor is reported as degenerate.
Tokens are coloured by the norm at the chosen residual ``layer`` (default L).
Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, Heatmap, ModeResult, ParamSpec
from explorer.analyses.support import attentions, int_param, residual_layers, residuals, token_label
from explorer.engine.contributions import BlockContributions, block_contributions
from explorer.errors import AnalysisUnavailable, InputError

DEFAULT_THRESHOLD = 0.02
_NO_SPLIT = BlockContributions(None, None, None, [], None, None, 0.0)


def _threshold(ctx: AnalysisContext) -> float:
    value = ctx.params.get("threshold")
    value = DEFAULT_THRESHOLD if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise InputError(f"threshold must be a number from 0 to below 1, found {value!r}.")
    return float(value)


def _pct(x: float | None) -> str:
    return "degenerate" if x is None else f"{x:.1%}"


def _block_lines(ctx: AnalysisContext, b: int, c: BlockContributions) -> list[str]:
    """Which heads and which source tokens carry block b's update (details lines)."""
    if c.residual is None:
        return ["  contributions: degenerate (every part's proximity is at the ε floor: no part moves resid_mid "
                "towards itself), so no split is shown", f"  mlp_out share of resid_post {_pct(c.mlp)}"]
    heads = sorted(range(len(c.heads)), key=lambda h: -c.heads[h])[:4]
    sources = sorted(range(len(c.sources)), key=lambda j: -c.sources[j])[:4]
    return [f"  contributions to resid_mid: residual {c.residual:.1%}, heads {sum(c.heads):.1%}"
            + (f", o_proj bias {c.bias:.1%}" if c.bias is not None else ""),
            "  heads: " + ", ".join(f"h{h} {c.heads[h]:.1%}" for h in heads if c.heads[h] > 0),
            "  source tokens: " + ", ".join(f"#{j + 1} {token_label(ctx, j)} {c.sources[j]:.1%}" for j in sources
                                            if c.sources[j] > 0),
            "  top head←source: " + ", ".join(f"h{h}←#{j + 1} {v:.1%}" for h, j, v in c.top[:4]),
            f"  mlp_out share of resid_post {_pct(c.mlp)}"]


class ResidualMode:
    name = "residual"
    label = "Residual stream"
    lazy = True
    requires = frozenset({"hidden_states"})
    params = (ParamSpec("layer", "residual layer coloured and detailed (0 = embeddings .. L; default L)", (), None,
                        keys=("<", ">"), options=residual_layers),
              ParamSpec("threshold", "contribution threshold τ: shares below it are zeroed and the rest renormalised",
                        (), DEFAULT_THRESHOLD))

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        cap = residuals(ctx, sublayers=True)
        L = cap.n_layers
        layer = int_param(ctx, "layer", L, L + 1, "residual layers")
        threshold = _threshold(ctx)
        norms = cap.resid.norm(dim=-1).double()  # [L+1, n]; float32 sums (~1e-6 relative) avoid a float64 copy of the stream
        attn_norm = cap.attn_out[:, t].double().norm(dim=-1)  # [L]
        mlp_norm = cap.mlp_out[:, t].double().norm(dim=-1)  # [L]
        attn_share = (attn_norm / (attn_norm + mlp_norm).clamp_min(1e-30)).tolist()
        try:
            rows = attentions(ctx, t, heads=True).rows  # [L, H, n]
            contrib = [block_contributions(ctx.wrapper, cap, rows, t, b, threshold) for b in range(L)]
            missing = ""
        except AnalysisUnavailable as exc:  # the norms stay useful without the per-head split
            contrib, missing = [_NO_SPLIT] * L, str(exc)
        degenerate = [b for b, c in enumerate(contrib) if c.residual is None and not missing]
        values = tuple(float(v) for v in norms[layer])
        hi = max(values) if max(values) > 0 else 1.0
        if layer == 0:
            block_lines = ("Layer 0 is the embedding: no block writes into it.",)
        else:
            b = layer - 1
            block_lines = (
                f"Block {b} (writes layer {layer}) at token {t + 1}:",
                f"  ‖attn_out‖ {attn_norm[b]:.3f}   ‖mlp_out‖ {mlp_norm[b]:.3f}   attention share of the update "
                f"{attn_share[b]:.1%}",
                *(_block_lines(ctx, b, contrib[b]) if not missing else [f"  contributions unavailable: {missing}"]),
            )
        heat = norms.T.tolist()  # [n tokens][L+1 layers]
        return ModeResult(
            values=values, lo=0.0, hi=hi, colors=("#ffffcc", "#253494"), fmt="{:.2f}",
            legend=(f"L2 norm of each token's residual at layer {layer} (0 = embeddings, {L} = last block output, "
                    f"pre-norm): yellow 0 → blue {hi:.2f} (largest here)."),
            layers={"resid_norm": norms[:, t].tolist(), "attn_out_norm": attn_norm.tolist(),
                    "mlp_out_norm": mlp_norm.tolist(), "attn_share": attn_share,
                    "residual_contribution": [c.residual for c in contrib],
                    "heads_contribution": [None if c.heads is None else sum(c.heads) for c in contrib],
                    "mlp_contribution": [c.mlp for c in contrib]},
            checks={"sublayer_identity_error": cap.identity_error(),
                    **({} if missing else {"head_source_identity_error": max(c.identity_error for c in contrib)})},
            details=(f"Token {t + 1}: residual norm per layer 0..{L} (plot); sub-layer series per block 0..{L - 1}.",
                     *block_lines, f"coloured layer: {layer}",
                     f"contributions (Ferrando & Voita, threshold τ = {threshold:g}, renormalised): "
                     + (f"unavailable ({missing})" if missing else
                        f"degenerate in blocks {degenerate}" if degenerate else "no degenerate block")),
            heatmap=Heatmap("tokens", f"residual layers 0..{L}", heat),
            extra={"layer": layer, "cursor": t, "threshold": threshold,
                   "contributions": [{"block": b, "residual": c.residual, "heads": c.heads, "sources": c.sources,
                                      "o_proj_bias": c.bias, "mlp": c.mlp, "degenerate": c.residual is None,
                                      "top": [{"head": h, "source": j, "share": v} for h, j, v in c.top]}
                                     for b, c in enumerate(contrib) if not missing],
                   "contributions_unavailable": missing or None,
                   "heatmap": {"rows": "tokens", "columns": f"residual layers 0..{L}",
                               "values": heat}},
        )
