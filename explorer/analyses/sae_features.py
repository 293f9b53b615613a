"""SAE features: the sparse-autoencoder / transcoder features of the token under the cursor (SCIENCE.md 5.8).

For the cursor token: its strongest active features (index, activation, label), L0 (how many
features are active) and the reconstruction error FVU = ‖y − ŷ‖² / ‖y − ȳ‖² (the error node
is part of the truth: a feature list that explains little of the activation says so). The
reference FVU beside it divides the same error by a fixed σ²_ref measured once on the SAE's
held-out tokens and stored with it (``explorer.engine.sae.reference``), so it does not move
with the prompt's length the way the prompt-relative FVU does. The
whole prompt is coloured by one feature's activation: the selected one, else the cursor
token's strongest feature. With ``cross_layer`` and a cross-layer transcoder, the panel also
lists which features of earlier layers write into the layer's MLP output at the cursor token,
and how much (their share of the reconstruction).

Reads ``ctx.config`` (the session's configuration: [model] enable_sae, [[sae]] entries).
Params (``ctx.params``; every key optional):
    layer (int): the SAE layer; default the first configured one. Key ``p`` cycles
        ``SaeFeaturesMode.layers(config, wrapper)`` with ``next_layer``.
    feature (int): the feature that colours the prompt; None = the cursor's top feature.
    cross_layer (bool): add the cross-layer contributions (CLTs only); also on with the
        ``cross_layer`` flag in ``ctx.flags`` (--cross_layer).
    top (int): how many features to list (default 10).

Unavailable (AnalysisUnavailable, one sentence) when SAEs are switched off, none is
configured, or the configured file does not fit the model. Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.errors import AnalysisUnavailable, InputError


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


class SaeFeaturesMode:
    name = "sae_features"
    label = "SAE features"
    lazy = True
    requires = frozenset({"hidden_states"})
    busy_text = "Loading features…"
    params = (
        # Feature numbers belong to one SAE, so a new layer drops the selected feature.
        ParamSpec("layer", "SAE layer (one of the configured ones)", (), None, keys=("p",),
                  options=lambda wrapper, config, _r: SaeFeaturesMode.layers(config, wrapper), resets=("feature",)),
        ParamSpec("feature", "feature that colours the prompt; none = the cursor token's strongest", (), None,
                  keys=("F", "f"), options=lambda _w, _c, r: SaeFeaturesMode.feature_options(r), wrap=True),
    )

    # ------------------------------------------------------- UI helpers
    @staticmethod
    def layers(config, wrapper) -> list[int]:
        """Configured SAE layers in the order ``p`` cycles them (AnalysisUnavailable when none)."""
        from explorer.engine.sae.catalog import catalog_for

        return catalog_for(config, wrapper).layers

    @staticmethod
    def next_layer(config, wrapper, current: int | None) -> int:
        from explorer.engine.sae.catalog import catalog_for

        return catalog_for(config, wrapper).next_layer(current)

    @staticmethod
    def feature_options(result) -> list[int | None]:
        """None (the cursor's strongest feature), then the cursor token's listed features."""
        features = (result.extra.get("features") or []) if result is not None else []
        if not features:
            raise AnalysisUnavailable("No active feature at this token to select.")
        return [None] + [f["index"] for f in features]

    # ---------------------------------------------------------- compute
    def compute(self, ctx: AnalysisContext) -> ModeResult:
        from explorer.engine.sae.catalog import catalog_for
        from explorer.engine.sae.reference import stored_reference

        params = ctx.params or {}
        catalog = catalog_for(ctx.config, ctx.wrapper)
        layer = params.get("layer")
        layer = catalog.layers[0] if layer is None else int(layer)
        if layer not in catalog.layers:
            raise AnalysisUnavailable(f"No SAE is configured for layer {layer}; configured layers: "
                                      f"{', '.join(map(str, catalog.layers))}.")
        top_k = int(params.get("top") or 10)
        ids = tuple(ctx.view.ids)
        n = len(ids)
        t = max(0, min(n - 1, int(ctx.cursor)))
        loaded = catalog.load(layer)
        pf = catalog.features(ids, layer, should_stop=ctx.should_stop)

        top = pf.top(t, top_k)
        features = [{"index": j, "activation": a, "label": catalog.label(layer, j)} for j, a in top]
        feature = params.get("feature")
        if feature is not None:
            feature = int(feature)
            if not 0 <= feature < pf.d_sae:
                raise InputError(f"Feature {feature} does not exist; this SAE has features 0..{pf.d_sae - 1}.")
        chosen = feature if feature is not None else (top[0][0] if top else None)
        values = tuple(float(v) for v in pf.feature_values(chosen)) if chosen is not None else tuple(0.0 for _ in ids)
        hi = max([v for v in values if v > 0], default=1.0)
        chosen_label = catalog.label(layer, chosen) if chosen is not None else None
        contexts = catalog.contexts(layer, chosen) if chosen is not None else []

        token_fvu = pf.fvu(t)
        reference = stored_reference(getattr(loaded.model, "metadata", {}))
        ref_fvu = [float(e) / reference["value"] for e in pf.sq_err] if reference else None  # [n]
        tok_text = ctx.wrapper.token_text(ids[t]).text
        lines = [
            f"Layer {layer} · {loaded.describe()}",
            f"Token {t + 1} {tok_text!r}: L0 {int(pf.l0[t])} active features · prompt-relative FVU {_fmt(token_fvu)} "
            f"(‖y−ŷ‖² over this prompt's mean ‖y−ȳ‖²; whole prompt {_fmt(pf.prompt_fvu)})",
            (f"  reference FVU {_fmt(ref_fvu[t])} (‖y−ŷ‖² over the fixed σ²_ref = {reference['value']:.4g}, measured "
             f"on {reference['tokens']} tokens: {reference['source']})" if reference else
             "  reference FVU: this SAE stores no reference variance (sae train records it; "
             "python -m explorer.engine.sae.reference measures it), so only the prompt-relative FVU is shown"),
        ]
        if pf.rows.truncated:
            lines.append("Some tokens have more active features than are stored; the weakest are not listed.")
        lines.append(f"Top features at token {t + 1}:" if top else f"No feature is active at token {t + 1}.")
        for item in features:
            lines.append(f"  #{item['index']:<6} {item['activation']:>9.3f}  {item['label'] or ''}".rstrip())
        if chosen is not None:
            how = "selected" if feature is not None else "the cursor token's strongest"
            lines.append(f"Colour: feature #{chosen} ({how}){': ' + chosen_label if chosen_label else ''}")
            for c in contexts:
                lines.append(f"  {c.activation:>7.2f}  {c.render()}")
        cross, bias_share = [], None
        want_cross = params.get("cross_layer") or "cross_layer" in ctx.flags
        if want_cross and not catalog.load(layer).is_clt:
            # --cross_layer with an ordinary SAE: keep the features view, say why the cross part is absent.
            lines.append(f"(--cross_layer: the SAE at layer {layer} is not a cross-layer transcoder, so there is "
                         "no cross-layer part; its features are shown as usual.)")
        elif want_cross:
            contribs, bias_share = catalog.cross_layer(ids, layer, t)
            cross = [{"layer": c.layer, "feature": c.feature, "activation": c.activation,
                      "norm": c.norm, "share": c.share} for c in contribs]
            lines.append(f"Writes into layer {layer}'s MLP output at token {t + 1} (share of the reconstruction; "
                         f"decoder bias {bias_share:+.3f}):")
            for c in contribs[:top_k]:
                lines.append(f"  L{c.layer:<3} #{c.feature:<6} act {c.activation:>8.3f}  ‖write‖ {c.norm:>8.3f}  "
                             f"share {c.share:+.3f}")
        lines.extend(pf.notes)

        legend = (f"Activation of feature #{chosen} at layer {layer} ({pf.hook_in}), 0 → {hi:.3g}"
                  + (f": {chosen_label}" if chosen_label else "") + "."
                  if chosen is not None else f"No feature is active at token {t + 1}; nothing to colour.")
        per_token_fvu = [pf.fvu(i) for i in range(n)]
        return ModeResult(
            values=values, lo=0.0, hi=hi, colors=("#f7f7f7", "#d95f02"), legend=legend, unit="activation",
            fmt="{:.3f}",
            checks={k: v for k, v in (("l0", float(pf.l0[t])), ("fvu", token_fvu), ("prompt_fvu", pf.prompt_fvu),
                                      ("reference_fvu", ref_fvu[t] if ref_fvu else None)) if v is not None},
            details=tuple(lines),
            extra={
                "layer": layer, "layers": catalog.layers, "hook_in": pf.hook_in, "hook_out": pf.hook_out,
                "sae": loaded.describe(), "d_sae": pf.d_sae, "position": t, "token": tok_text,
                "features": features, "l0": int(pf.l0[t]), "fvu": token_fvu, "prompt_fvu": pf.prompt_fvu,
                "feature": chosen, "feature_selected": feature is not None, "feature_label": chosen_label,
                "feature_contexts": [{"activation": c.activation, "before": c.before, "token": c.token,
                                      "after": c.after} for c in contexts],
                "l0_per_token": [int(v) for v in pf.l0], "fvu_per_token": per_token_fvu,
                "reference_fvu": ref_fvu[t] if ref_fvu else None, "reference_fvu_per_token": ref_fvu,
                "reference_variance": reference,
                "cross_layer": cross, "bias_share": bias_share, "notes": list(pf.notes),
            },
        )
