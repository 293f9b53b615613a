"""Mode options and plots: layer, head and method keys; the per-layer plot; heatmaps; PCA scatter.

Reads each mode's ``params`` (ParamSpec) to know what it accepts; results come from the
app's mode machinery (lazy modes in a worker, through the ResultCache).
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from explorer.ui.render import lerp_color
from explorer.ui.widgets.mode_panel import ModePanel

MAX_HEATMAP_ROWS = 40


class ModeViewsMixin:
    """Keys: < > layer, { } head, m method, M baseline, v plotted series."""

    plot_series: dict[str, int]

    def _analysis(self):
        from explorer.analyses import get_analysis

        return get_analysis(self.session.mode)

    def _spec(self, key: str):
        for spec in getattr(self._analysis(), "params", ()) or ():
            if spec.key == key:
                return spec
        return None

    def _set_param(self, key: str, value) -> None:
        name = self.session.mode
        params = self.mode_params.setdefault(name, {})
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
        self._refresh_mode()
        self._autosave()  # mode options (the SAE layer of p, ...) are part of the saved session

    def _no_option(self, what: str) -> None:
        self.notify(f"The {self._analysis().label} mode has no {what} option.", severity="warning", timeout=3)

    # ------------------------------------------------------------ layer / head / method
    def _layer_count(self) -> int:
        n = self.session.wrapper.n_layers
        return n if self.session.mode == "attention" else n + 1

    def _current_layer(self) -> int:
        params = self.mode_params.get(self.session.mode, {})
        if "layer" in params:
            return int(params["layer"]) % self._layer_count()
        extra = self.mode_result.extra if self.mode_result is not None else {}
        if "layer" in extra and extra["layer"] is not None:
            return int(extra["layer"])
        return self._layer_count() - 1

    def _step_layer(self, delta: int) -> None:
        if self.session is None or not self.ready:
            return
        if self._spec("layer") is None:
            self._no_option("layer")
            return
        if self.session.mode == "attention" and self.mode_params.get("attention", {}).get("method", "rollout") == "rollout":
            self.mode_params.setdefault("attention", {})["method"] = "raw"
            self.notify("Layer choice applies to raw attention: switched from rollout to raw.", timeout=3)
        layer = max(0, min(self._layer_count() - 1, self._current_layer() + delta))
        self._set_param("layer", layer)

    def action_layer_down(self) -> None:
        self._step_layer(-1)

    def action_layer_up(self) -> None:
        self._step_layer(+1)

    def _step_head(self, delta: int) -> None:
        if self.session is None or not self.ready:
            return
        if self._spec("head") is None:
            self._no_option("head")
            return
        heads = int(getattr(self.session.wrapper.config, "num_attention_heads", 1))
        current = self.mode_params.get(self.session.mode, {}).get("head")
        order = [None] + list(range(heads))  # None = mean over heads
        i = order.index(current) if current in order else 0
        params = self.mode_params.setdefault(self.session.mode, {})
        if params.get("method", "rollout") == "rollout":
            params["method"] = "raw"
        self._set_param("head", order[(i + delta) % len(order)])

    def action_head_down(self) -> None:
        self._step_head(-1)

    def action_head_up(self) -> None:
        self._step_head(+1)

    def _cycle_choice(self, key: str) -> None:
        if self.session is None or not self.ready:
            return
        spec = self._spec(key)
        if spec is None or not spec.choices:
            self._no_option(key)
            return
        current = self.mode_params.get(self.session.mode, {}).get(key, spec.default)
        choices = list(spec.choices)
        i = choices.index(current) if current in choices else -1
        self._set_param(key, choices[(i + 1) % len(choices)])
        self.notify(f"{key}: {choices[(i + 1) % len(choices)]}", timeout=2)

    def action_cycle_method(self) -> None:
        self._cycle_choice("method")

    def action_cycle_baseline(self) -> None:
        self._cycle_choice("baseline")

    def action_cycle_series(self) -> None:
        if self.mode_result is None or not self.mode_result.layers:
            self.notify("This mode has no per-layer plot.", severity="warning", timeout=3)
            return
        name = self.session.mode
        self.plot_series[name] = self.plot_series.get(name, 0) + 1
        self._render_plot()

    # ------------------------------------------------------------ SAE features
    def cycle_sae_layer(self) -> None:
        """Key p in the SAE mode: the next configured SAE layer."""
        from explorer.analyses.sae_features import SaeFeaturesMode
        from explorer.errors import ExplorerError

        current = self.mode_params.get("sae_features", {}).get("layer")
        if current is None and self.mode_result is not None:
            current = self.mode_result.extra.get("layer")
        try:
            layer = SaeFeaturesMode.next_layer(self.session.config, self.session.wrapper, current)
        except ExplorerError as exc:
            self.notify(exc.message, severity="warning")
            return
        params = self.mode_params.setdefault("sae_features", {})
        params.pop("feature", None)  # feature numbers belong to one SAE
        self._set_param("layer", layer)
        self.notify(f"SAE layer {layer}", timeout=2)

    def _step_feature(self, delta: int) -> None:
        if self.session is None or not self.ready:
            return
        if self.session.mode != "sae_features":
            self.notify("f / F select a feature in the SAE features mode (cycle modes with e).",
                        severity="warning", timeout=3)
            return
        r = self.mode_result
        features = [f["index"] for f in (r.extra.get("features") or [])] if r is not None else []
        if not features:
            self.notify("No active feature at this token to select.", severity="warning", timeout=3)
            return
        order = [None] + features  # None = colour by the cursor token's strongest feature
        current = self.mode_params.get("sae_features", {}).get("feature")
        i = order.index(current) if current in order else 0
        self._set_param("feature", order[(i + delta) % len(order)])

    def action_feature_next(self) -> None:
        self._step_feature(+1)

    def action_feature_prev(self) -> None:
        self._step_feature(-1)

    # ------------------------------------------------------------ panel extras
    def _render_plot(self) -> None:
        panel = self.query_one(ModePanel)
        r = self.mode_result
        if r is None:
            panel.hide_plot()
            return
        label = self._analysis().label
        if r.layers:
            names = list(r.layers)
            name = names[self.plot_series.get(self.session.mode, 0) % len(names)]
            extra = f" (v: next of {len(names)})" if len(names) > 1 else ""
            panel.show_plot().show_series(f"{label}: {name}{extra}", name, list(r.layers[name]))
        elif "coords" in r.extra:
            labels = [t.text.text for t in self.view.tokens]
            pv = r.extra.get("explained_variance_ratio") or [0, 0]
            panel.show_plot().show_scatter(f"{label} (PC1 {pv[0]:.0%}, PC2 {pv[1]:.0%})", r.extra["coords"], labels)
        else:
            panel.hide_plot()

    def heatmap_text(self) -> Text | None:
        """Tokens × layers heatmap (residual norms) as coloured cells, one row per token."""
        r = self.mode_result
        if r is None or not isinstance(r.extra.get("heatmap"), dict):
            return None
        values = r.extra["heatmap"].get("values") or []
        if not values:
            return None
        flat = [v for row in values for v in row if v is not None]
        lo, hi = min(flat), max(flat)
        text = Text(f"\nHeatmap: {r.extra['heatmap'].get('rows', 'rows')} × "
                    f"{r.extra['heatmap'].get('columns', 'columns')} (yellow {lo:.2f} → blue {hi:.2f})\n", style="bold")
        start = max(0, len(values) - MAX_HEATMAP_ROWS)
        for i in range(start, len(values)):
            tok = self.view.tokens[i].text.text if i < len(self.view.tokens) else ""
            label = tok.replace("\n", "↵")[:10]
            text.append(f"{label:>10} ")
            for v in values[i]:
                t = 0.0 if hi == lo else (v - lo) / (hi - lo)
                text.append(" ", Style(bgcolor=lerp_color("#ffffcc", "#253494", t)))
            text.append("\n")
        if start:
            text.append(f"(first {start} tokens not shown)\n", style="dim")
        return text
