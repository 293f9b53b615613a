"""ExplorerApp's interventions (issue 11): the panel, the add keys, the effect columns, the status.

* ``I`` shows the interventions panel and gives it the keys (``j``/``k`` select, ``space``
  on/off, ``-``/``=`` strength, ``<``/``>`` layer, ``x`` remove: the panel's own bindings,
  which Textual asks before the app's, so the lab's ``-``/``=`` and the mode options' ``<``/``>``
  work again once ``I`` hides it); ``I`` again hides it (the interventions stay on).
* ``S`` steers along a vector read from a file, ``U`` along the SAE feature selected in the
  SAE features mode, ``C`` clamps that feature, ``A`` ablates a head or an MLP. Each asks for
  its settings in the ``--steer`` / ``--clamp`` / ``--ablate`` syntax of the commands and adds
  to the list (several compose). Bad input is one notification; the list is unchanged.
* While one is on, a column provider adds ``base p``, ``int p`` and ``Δp`` (from
  ``StepView.effect``, the paired baseline/intervened step of ``Session.compute``), the panel
  shows KL(intervened ‖ baseline) of the next token and the status bar "interventions on (N)".

Building and installing interventions runs as a job (a vector file, an SAE or a mean may take
a while); errors reach the app's one error boundary as a notification.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.message import Message

from explorer.errors import ExplorerError, InputError
from explorer.ui.extensions import Column, ColumnProvider
from explorer.ui.widgets.interventions_panel import InterventionsPanel

EFFECT_TABLE_WIDTH = 74  # the core columns plus three of 8 characters


@dataclass
class InterventionsApplied(Message):
    """The worker put a new list in force; ``what`` says what changed."""

    what: str


def _p(v: float) -> str:
    return f"{v:.4f}" if v >= 1e-4 or v == 0 else f"{v:.1e}"


def _dp(v: float) -> Text:
    return Text(f"{v:+.4f}", style="green" if v > 0 else ("red" if v < 0 else ""))


class InterventionsMixin:
    iv_panel_on: bool = False

    def install_interventions(self) -> None:
        ext = self.extensions
        ext.column_providers.append(ColumnProvider(active=self._iv_effect_on, columns=self._iv_columns,
                                                   width=EFFECT_TABLE_WIDTH))
        ext.step_listeners.append(self._render_iv_panel)
        ext.key_conditions["interventions_panel"] = lambda: self.ready and self.iv_panel_on

    # ------------------------------------------------------------ state
    def _iv_effect(self):
        return getattr(self.view, "effect", None) if self.ready else None

    def _iv_effect_on(self) -> bool:
        return self._iv_effect() is not None and self.interventions_enabled() > 0

    def interventions_enabled(self) -> int:
        return sum(1 for i in self.session.interventions if i.enabled) if self.session is not None else 0

    def interventions_status(self) -> str:
        n = self.interventions_enabled()
        return f"interventions on ({n})" if n else ""

    def interventions_view_state(self) -> dict:
        """For the session file: the list as spec JSON (vectors and means inline)."""
        from explorer.engine.interventions.spec import to_json

        items = self.session.interventions if self.session is not None else ()
        return {"interventions": to_json(items)} if items else {}

    def interventions_export(self) -> dict:
        """What an export records: the interventions in force, or nothing when there are none."""
        return self.interventions_view_state()

    def restore_interventions(self, saved_view: dict) -> None:
        """--resume: put the saved list back before the first step (a bad list is a note, not a crash)."""
        from explorer.engine.interventions.spec import from_json

        data = saved_view.get("interventions")
        if not data:
            return
        try:
            self.session.set_interventions(from_json(data))
        except ExplorerError as exc:
            self.notify(f"The saved interventions were not restored: {exc.message}", severity="warning", timeout=10)

    # ------------------------------------------------------------ table columns
    def _iv_columns(self) -> list[Column]:
        effect = self._iv_effect()
        by_id = {r.id: r for r in effect.baseline_rows}
        by_id.update({r.id: r for r in effect.rows})

        def cell(attr: str):
            def read(row) -> Text:
                found = by_id.get(row.id)
                if found is None:  # a lab row outside both top lists
                    return Text("–", style="dim")
                v = getattr(found, attr)
                return _dp(v) if attr == "delta_p" else Text(_p(v))
            return read

        return [Column("base p", "base_p", cell("base_p")), Column("int p", "int_p", cell("int_p")),
                Column("Δp", "delta_p", cell("delta_p"))]

    # ------------------------------------------------------------ panel
    def _iv_panel(self) -> InterventionsPanel:
        found = self.query("#interventions-panel")
        if found:
            return found.first(InterventionsPanel)
        panel = InterventionsPanel(n_layers=self.session.wrapper.n_layers, id="interventions-panel")
        self.query_one("#extra-panels").mount(panel)
        return panel

    def _render_iv_panel(self) -> None:
        if not self.iv_panel_on or self.session is None:
            return
        effect = self._iv_effect() if self.interventions_enabled() else None
        self._iv_panel().show(self.session.interventions, effect.kl_next if effect is not None else None)

    def _iv_open(self) -> None:
        self.iv_panel_on = True
        panel = self._iv_panel()
        panel.display = True
        self._render_iv_panel()
        panel.focus()
        self._refresh_bindings()

    def action_interventions_toggle(self) -> None:
        if self.session is None:
            return
        if not self.iv_panel_on:
            self._iv_open()
            return
        self.iv_panel_on = False
        panel = self._iv_panel()
        panel.display = False
        self.set_focus(None)  # the keys go back to the table, the lab and the mode options
        self._refresh_bindings()

    def on_interventions_panel_changed(self, msg: InterventionsPanel.Changed) -> None:
        msg.stop()
        self._iv_apply(tuple(msg.items), msg.what)

    # ------------------------------------------------------------ applying
    def _iv_apply(self, items: tuple, what: str, build: tuple | None = None) -> None:
        """Put ``items`` (plus the ones ``build`` = (specs, sae_path, sae_format) makes) in force, in a job."""
        session, ids = self.session, list(self.session.current.ids)

        def run(job) -> None:
            new = items
            if build is not None:
                from explorer.engine.interventions.build import build_interventions

                specs, sae_path, sae_format = build
                with session.wrapper.lock:
                    new = items + tuple(build_interventions(session.wrapper, specs, ids, sae_path, sae_format))
            session.set_interventions(new)  # raises before changing anything
            self.post_message(InterventionsApplied(what if build is None else
                                                   "added: " + "; ".join(i.describe() for i in new[len(items):])))

        self.jobs.start("interventions", "applying interventions", run, replace=False)

    def on_interventions_applied(self, msg: InterventionsApplied) -> None:
        from explorer.analyses.cache import ResultCache

        # Lazy mode results are keyed by the ids, not the interventions: computed under the old
        # list they would be shown as if they belonged to the new one.
        self.result_cache = ResultCache(self.session.config.display.cache_size)
        self.notify(msg.what, title="Interventions", timeout=4)
        if not self.iv_panel_on:
            self._iv_open()
        self._render_iv_panel()
        self._request_step()

    def _iv_ask(self, title: str, hint: str, value: str, then) -> None:
        from explorer.ui.screens.intervention_input import InterventionInput

        def done(text: str | None) -> None:
            if text is None or not text.strip():
                return
            try:
                then(text.strip())
            except ExplorerError as exc:
                self._tell(exc)

        self.push_screen(InterventionInput(title, hint, value), done)

    # ------------------------------------------------------------ adding: S U C A
    def action_intervene_vector(self) -> None:
        from explorer.engine.interventions.build import parse_specs

        if not self.ready:
            return
        layer = self.session.wrapper.n_layers // 2

        def add(text: str) -> None:
            self._iv_apply(self.session.interventions, "", build=(parse_specs([text], [], [], None), None, None))

        self._iv_ask("Steer along a vector from a file",
                     "vector=FILE (.safetensors, .npy or a llama.cpp .gguf control vector), layer=L (the block "
                     "whose output is steered), alpha=A (h ← h + A·v), optional from=P (first position).",
                     f"layer={layer},alpha=4,vector=", add)  # the cursor ends where the path goes

    def _selected_sae_feature(self) -> tuple[int, int] | None:
        """(layer, feature) the SAE features mode colours by now, or None with a notification."""
        result = self.mode_result if self.mode == "sae_features" else None
        if result is None or result.extra.get("feature") is None:
            self.notify("Choose a feature first: the SAE features mode (e), then f / F.", severity="warning",
                        timeout=5)
            return None
        return int(result.extra["layer"]), int(result.extra["feature"])

    def _sae_build(self, specs: list[dict], layer: int, what_items: tuple) -> None:
        """Add SAE-based specs: the SAE file is the one the SAE features mode shows at ``layer``."""
        from explorer.engine.sae.catalog import catalog_for

        loaded = catalog_for(self.session.config, self.session.wrapper).load(layer)
        self._iv_apply(what_items, "", build=(specs, str(loaded.path), loaded.entry.format))

    def action_intervene_feature(self) -> None:
        from explorer.engine.interventions.build import parse_specs

        if not self.ready or (chosen := self._selected_sae_feature()) is None:
            return
        layer, feature = chosen

        def add(text: str) -> None:
            specs = parse_specs([f"layer={layer},feature={feature},{text}"], [], [], "sae")
            self._sae_build(specs, layer, self.session.interventions)

        self._iv_ask(f"Steer along SAE feature #{feature} (layer {layer})",
                     "alpha=A: h ← h + A·d, d the feature's decoder row, at the output of the SAE's layer; "
                     "optional from=P.", "alpha=4", add)

    def action_intervene_clamp(self) -> None:
        from explorer.engine.interventions.build import parse_specs

        if not self.ready or (chosen := self._selected_sae_feature()) is None:
            return
        layer, feature = chosen

        def add(text: str) -> None:
            specs = parse_specs([], [f"layer={layer},feature={feature},{text}"], [], "sae")
            self._sae_build(specs, layer, self.session.interventions)

        self._iv_ask(f"Clamp SAE feature #{feature} (layer {layer})",
                     "value=V (set the activation) or scale=S (multiply it), optional strength=S (0..1) and from=P; "
                     "the SAE's error term is kept.", "value=0", add)

    def action_intervene_ablate(self) -> None:
        from explorer.engine.interventions.build import parse_specs

        if not self.ready:
            return

        def add(text: str) -> None:
            specs = parse_specs([], [], [text], None)
            if not 0 <= specs[0]["layer"] < self.session.wrapper.n_layers:
                raise InputError(f"Layer {specs[0]['layer']} is out of range; the model has layers "
                                 f"0..{self.session.wrapper.n_layers - 1}.")
            self._iv_apply(self.session.interventions, "", build=(specs, None, None))

        self._iv_ask("Ablate a head or an MLP",
                     "head=L.H (one attention head) or mlp=L (the MLP of layer L), how=zero or how=mean (mean over "
                     "this prompt's tokens), optional strength=S (0..1) and from=P.", "head=0.0,how=zero", add)
