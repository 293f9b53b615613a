"""Painting the current mode: the coloured prompt, the panel (legend, cursor line, details),
the per-layer plot or scatter, and the heatmap. Reads the ModeResult's typed plot fields."""

from __future__ import annotations

import math

from rich.style import Style
from rich.text import Text

from explorer.ui.render import legend_bar, lerp_color, prompt_text, scale_color
from explorer.ui.widgets.mode_panel import ModePanel
from explorer.ui.widgets.prompt_view import PromptView

MAX_HEATMAP_ROWS = 40


class ModeRenderMixin:
    def _render_all(self) -> None:
        self._render_prompt()
        self._render_panel()
        self._refresh_status()

    def _token_colors(self, n: int) -> list[str | None]:
        r = self.mode_result
        if r is None or self.view is None:
            return [None] * n
        values = r.color_values if r.color_values is not None else r.values
        return [scale_color(values[i], r.lo, r.hi, r.colors) if i < len(values) else None for i in range(n)]

    def _render_prompt(self) -> None:
        if self.session is None or self.view is None:
            return
        from explorer.engine.view import TokenInfo

        ids = self.session.current.ids
        # Tokens already computed keep their numbers; tokens appended since show plain text.
        tokens = []
        for i, tid in enumerate(ids):
            if i < len(self.view.tokens) and self.view.ids[i] == tid and self.view.uid == self.session.current.uid:
                tokens.append(self.view.tokens[i])
            else:
                tokens.append(TokenInfo(i, tid, self.session.wrapper.token_text(tid), *([None] * 8)))
        colors = self._token_colors(len(tokens))
        cursor = self._cursor() if self.session.cursor_visible else None
        follow = self.session.current.cursor is None
        self.query_one(PromptView).show(prompt_text(tokens, colors, cursor), follow_end=follow)

    def _render_panel(self) -> None:
        if not self.ready:
            return
        analysis = self._analysis()
        r = self.mode_result
        legend = Text()
        legend.append(f"{analysis.label}: ", "bold")
        if self.mode_error:
            legend.append(self.mode_error, "italic red")
        elif r is None:
            legend.append(getattr(analysis, "busy_text", "computing…"), "italic yellow")
        else:
            legend.append(r.legend)
            if any(v is not None for v in (r.color_values or r.values)):
                legend.append("\n")
                legend.append_text(legend_bar(f"{r.lo:.3g}", f"{r.hi:.3g}", r.colors))
        details = Text("\n".join(r.details)) if r is not None and r.details else Text()
        heatmap = self.heatmap_text()
        if heatmap is not None:
            details.append_text(heatmap)
        self.query_one(ModePanel).show(legend, self._cursor_line(), details)
        self._render_plot()

    def _cursor_line(self) -> Text:
        i = self._cursor()
        line = Text()
        if not self.view_is_current() or i >= len(self.view.tokens):
            return line
        tok = self.view.tokens[i]
        line.append(f"Token {i + 1}/{len(self.view.tokens)} ", "bold")
        line.append(repr(tok.text.text))
        line.append(f"  id {tok.id}")
        if tok.prob is None:
            line.append("  (first token: nothing predicts it)", "dim")
        else:
            if tok.entropy_bits is None:  # a served model: log-probabilities only
                line.append(f"  p={tok.prob:.4f}  rank {tok.rank or '> top-k'}")
            else:
                line.append(f"  p={tok.prob:.4f}  rank {tok.rank}  H={tok.entropy_bits:.2f} bits  E={tok.energy:.2f}")
            if self.session.show_zscores and tok.zscore is not None:
                line.append(f"  z={tok.zscore:+.2f}")
        r = self.mode_result
        if r is not None and i < len(r.values) and r.values[i] is not None and \
                getattr(self._analysis(), "value_in_cursor_line", True):
            line.append(f"  value {r.fmt.format(r.values[i])} {r.unit}".rstrip())
        if self.view.entropy_is_lower_bound:  # SCIENCE 5.13: the tail of a top-k list is unknown
            line.append(f"\nNext token: H >= {self.view.next_entropy_bits:.2f} bits (lower bound over the top "
                        f"{len(self.view.candidates)}, {self.view.covered_mass:.1%} of the mass), E not available", "dim")
        else:
            line.append(f"\nNext token: H={self.view.next_entropy_bits:.2f} bits, E={self.view.next_energy:.2f}", "dim")
        return line

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
        elif r.scatter is not None:
            labels = [t.text.text for t in self.view.tokens]
            panel.show_plot().show_scatter(f"{label} ({r.scatter.title})", r.scatter.points, labels)
        else:
            panel.hide_plot()

    def heatmap_text(self) -> Text | None:
        """The result's heatmap (e.g. tokens × residual layers) as coloured cells, one row per token."""
        r = self.mode_result
        if r is None or r.heatmap is None or not r.heatmap.values:
            return None
        values = r.heatmap.values
        flat = [v for row in values for v in row if v is not None]
        if not flat:
            return None
        # The first token's residual norms are orders of magnitude above the rest (the attention
        # sink: 2.4 → 22,146 on SmolLM2), so the scale leaves row 1 out and is logarithmic for
        # positive values (norms); the cells of row 1 are clamped to the top colour.
        rest = [v for row in values[1:] for v in row if v is not None]
        scale = rest if len(values) > 1 and rest else flat
        log = min(scale) > 0
        lo, hi = min(scale), max(scale)
        pos = (lambda v: math.log(v)) if log else (lambda v: v)
        how = (" log scale" if log else "") + (", token 1 (attention sink) left out of the scale"
                                                if scale is rest else "")
        text = Text(f"\nHeatmap: {r.heatmap.rows} × {r.heatmap.columns} (yellow {lo:.2f} → blue {hi:.2f}{how})\n",
                    style="bold")
        start = max(0, len(values) - MAX_HEATMAP_ROWS)
        for i in range(start, len(values)):
            tok = self.view.tokens[i].text.text if i < len(self.view.tokens) else ""
            label = tok.replace("\n", "↵")[:10]
            text.append(f"{label:>10} ")
            for v in values[i]:
                t = 0.0 if v is None or hi == lo else (pos(max(v, lo)) - pos(lo)) / (pos(hi) - pos(lo))
                text.append(" ", Style(bgcolor=lerp_color("#ffffcc", "#253494", t)))
            text.append("\n")
        if start:
            text.append(f"(first {start} tokens not shown)\n", style="dim")
        return text
