"""Modes on the main screen: computing the current mode, and the keys e, p and the option keys.

Everything about a mode comes from its declarations (explorer/analyses/base.py): the option
keys (``< > { } m M f F p``) step or cycle the ParamSpec that lists the key, ``needs_flag``
puts a mode behind ``p`` and a command-line flag, ``requires`` names engine capabilities. No
code here names a mode. Lazy modes run as "mode" jobs: a new cursor position, option, mode
or prompt stops the running one at the engine's next safe point, and a result for another
key than the current one is dropped.
"""

from __future__ import annotations

from typing import Any

from explorer.errors import ExplorerError
from explorer.ui.features.mode_render import ModeRenderMixin
from explorer.ui.keymap import OPTION_WORDS
from explorer.ui.messages import ModeComputed


class ModeViewsMixin(ModeRenderMixin):
    """Keys: e, p, < > { } m M f F (mode options), v (plotted series)."""

    result_cache = None  # explorer.analyses.cache.ResultCache, made once the session exists
    mode_result = None
    mode_error: str | None = None
    _mode_pending: tuple | None = None
    _mode_job = None  # the job computing _mode_pending

    def install_modes(self) -> None:
        self.mode_params: dict[str, dict[str, Any]] = {}
        self.plot_series: dict[str, int] = {}
        self.extensions.key_conditions["has_series"] = lambda: bool(
            self.mode_result is not None and self.mode_result.layers and len(self.mode_result.layers) > 1)

    def _analysis(self):
        from explorer.analyses import get_analysis

        return get_analysis(self.session.mode)

    def _analysis_context(self, analysis):
        from explorer.analyses import AnalysisContext

        flags = frozenset(name for name, on in (("cross_layer", self.cross_layer), ("layer_prob", self.layer_prob))
                          if on)
        # The step inputs (the comparison view) go to every mode beside its options, as in analyze.
        params = {**self.step_inputs, **self.mode_params.get(analysis.name, {})}
        return AnalysisContext(self.view, self.session.wrapper, self._cursor(), params, cache=self.result_cache,
                               config=self.session.config, flags=flags)

    # ------------------------------------------------------------ computing
    def stop_stale_work(self) -> None:
        """The prompt changed: a mode computation for the old one would be thrown away."""
        self.jobs.stop("mode")
        self._mode_pending = None

    def _refresh_mode(self) -> None:
        """Compute the current mode for the current view: inline when cheap, as a job when not."""
        from explorer.analyses.cache import compute_mode, result_key

        if not self.ready:
            return
        if not self.view_is_current():
            # The view belongs to the prompt before an append: its cursor positions do not match
            # the session's. The step on its way calls this again.
            self.stop_stale_work()
            self.mode_result, self.mode_error = None, None
            self._render_all()
            return
        analysis = self._analysis()
        ctx = self._analysis_context(analysis)
        key = result_key(analysis, ctx)
        if key == self._mode_pending:
            return  # already computing exactly this
        self.mode_error = None
        cached = self.result_cache.get(key) if analysis.lazy else None
        if not analysis.lazy or cached is not None:
            self.jobs.stop("mode")
            self._mode_pending = None
            try:
                self.mode_result = cached if cached is not None else compute_mode(analysis, ctx, self.result_cache)
            except ExplorerError as exc:
                self.mode_result, self.mode_error = None, exc.message
        else:
            self.mode_result = None
            self._mode_pending = key
            self._mode_job = self.jobs.start("mode", f"computing {analysis.label}",
                                             lambda job: self._compute_mode(job, key, analysis, ctx), esc=True,
                                             on_end=self._mode_job_ended)
        self._render_all()
        self._refresh_bindings()

    def _compute_mode(self, job, key: tuple, analysis, ctx) -> None:
        from dataclasses import replace

        from explorer.analyses.cache import compute_mode

        if job.should_stop():
            return  # the user moved on before it began: never start the work
        try:
            result = compute_mode(analysis, replace(ctx, should_stop=job.should_stop), self.result_cache)
        except ExplorerError as exc:
            self.post_message(ModeComputed(key, None, exc.message))
            return
        if not job.should_stop():
            self.post_message(ModeComputed(key, result))

    def _mode_job_ended(self, job) -> None:
        """The current mode job ended without a result: it was stopped by Esc; say so."""
        if job is self._mode_job and self._mode_pending is not None and job.stopping:
            self._mode_pending = None
            self.mode_error = "Stopped (Esc). Move the cursor, change an option or press e to compute it again."
            self._render_all()

    def on_mode_computed(self, msg: ModeComputed) -> None:
        if msg.key != self._mode_pending:
            return
        self._mode_pending = None
        self.mode_result = msg.result
        self.mode_error = msg.error
        self._render_all()
        self._refresh_bindings()

    def _after_view_change(self) -> None:
        if self.ready:
            self._refresh_mode()
        else:
            self._refresh_status()

    # ------------------------------------------------------------ e and p
    def _cycle_modes(self) -> list[str]:
        from explorer.analyses import ANALYSES

        return [a.name for a in ANALYSES if not getattr(a, "needs_flag", None)]

    def action_cycle_mode(self) -> None:
        if self.session is None:
            return
        names = self._cycle_modes()
        i = names.index(self.session.mode) if self.session.mode in names else -1
        self.session.mode = names[(i + 1) % len(names)]
        self._after_view_change()
        self._autosave()

    def _reachable_modes(self) -> list[tuple[str, str]]:
        """Every mode the user can reach now, (name, label): the e cycle, then the layer views if on."""
        from explorer.analyses import ANALYSES

        return [(a.name, a.label) for a in ANALYSES
                if not getattr(a, "needs_flag", None) or getattr(self, a.needs_flag, False)]

    def action_set_mode(self, name: str) -> None:
        """Go straight to a mode (the mode picker E and the palette's "Mode: …" entries)."""
        if self.session is None:
            return
        if name not in dict(self._reachable_modes()):
            self.notify(f"The mode {name!r} is not available (the layer views need --layer_prob).",
                        severity="warning")
            return
        self.session.mode = name
        self._after_view_change()
        self._autosave()

    def action_scroll_mode(self, lines: int) -> None:
        """J / K: the mode panel scrolls with the keyboard too (small terminals cut its details)."""
        from explorer.ui.widgets.mode_panel import ModePanel

        self.query_one(ModePanel).scroll_relative(y=lines, animate=False)

    def action_pick_mode(self) -> None:
        if self.session is None:
            return
        from explorer.ui.screens.mode_picker import ModePicker

        def chosen(name: str | None) -> None:
            if name:
                self.action_set_mode(name)

        self.push_screen(ModePicker(self._reachable_modes(), self.session.mode), chosen)

    def action_layer_toggle(self) -> None:
        """p: the mode's own p option (the SAE layer) if it declares one, else the layer views."""
        if self.session is None:
            return
        from explorer.analyses import ANALYSES

        if self.ready and self._option_spec("p") is not None:
            self.action_mode_option("p")
            return
        cycle = [a.name for a in ANALYSES if getattr(a, "needs_flag", None) == "layer_prob"]
        if not cycle:
            self.notify("Layer views are not available in this build.", severity="warning")
            return
        if not self.layer_prob:
            self.notify("Layer views are off: start with --layer_prob to enable them.", severity="warning")
            return
        if self.session.mode in cycle:
            nxt = cycle.index(self.session.mode) + 1
            # Out of the layer views: back to the mode the user came from, not to Plain.
            self.session.mode = cycle[nxt] if nxt < len(cycle) else getattr(self, "mode_before_layers", "plain")
        else:
            self.mode_before_layers = self.session.mode
            self.session.mode = cycle[0]
        self._after_view_change()
        self._autosave()  # the layer view is the saved mode

    # ------------------------------------------------------------ option keys
    def _option_spec(self, key: str):
        from explorer.analyses.base import param_for_key

        return param_for_key(self._analysis(), key)

    def action_mode_option(self, key: str) -> None:
        """One of < > { } m M f F p: change the option of the current mode that declares the key."""
        if not self.ready:
            return
        found = self._option_spec(key)
        analysis = self._analysis()
        if found is None:
            self.notify(f"The {analysis.label} mode has no {OPTION_WORDS.get(key, key)} option.",
                        severity="warning", timeout=3)
            return
        spec, direction = found
        params = self.mode_params.setdefault(analysis.name, {})
        try:
            values = list(spec.options(self.session.wrapper, self.session.config, self.mode_result)) \
                if spec.options is not None else list(spec.choices)
        except ExplorerError as exc:
            self.notify(exc.message, severity="warning", timeout=3)
            return
        if not values:
            return
        new = self._next_value(spec, values, params, direction)
        for other, value in spec.sets:
            if params.get(other, self._declared_default(analysis, other)) != value:
                self.notify(f"{spec.key.capitalize()} choice applies to {other} {value}: switched to {value}.",
                            timeout=3)
                params[other] = value
        for other in spec.resets:
            params.pop(other, None)
        if new is None:
            params.pop(spec.key, None)
        else:
            params[spec.key] = new
        if len(spec.keys) == 1:
            self.notify(f"{spec.key}: {'default' if new is None else new}", timeout=2)
        self._refresh_mode()
        self._autosave()  # mode options (the SAE layer of p, ...) are part of the saved session

    @staticmethod
    def _declared_default(analysis, key: str):
        from explorer.analyses.base import mode_params

        return next((s.default for s in mode_params(analysis) if s.key == key), None)

    def _next_value(self, spec, values: list, params: dict, direction: int):
        """The value after the current one: a key of two steps (clamped, or wrapping), one key cycles."""
        current = params.get(spec.key)
        # A wrapping option's None is a value of its own (mean over heads, strongest feature);
        # otherwise an unset option shows the value the mode chose (its default layer).
        if spec.key not in params and not spec.wrap and self.mode_result is not None:
            current = self.mode_result.extra.get(spec.key)
        if current is None:
            current = spec.default
        if isinstance(current, int) and not isinstance(current, bool) and current < 0 and -len(values) <= current:
            current = values[current]  # "-1" means the last one
        if len(spec.keys) == 1:
            i = values.index(current) if current in values else -1
            return values[(i + 1) % len(values)]
        if current in values:
            i = values.index(current) + direction
        else:
            i = (0 if spec.wrap else len(values) - 1) + (direction if spec.wrap else 0)
        return values[i % len(values)] if spec.wrap else values[max(0, min(len(values) - 1, i))]

    def action_cycle_series(self) -> None:
        if self.mode_result is None or not self.mode_result.layers:
            self.notify("This mode has no per-layer plot.", severity="warning", timeout=3)
            return
        name = self.session.mode
        self.plot_series[name] = self.plot_series.get(name, 0) + 1
        self._render_plot()
