"""The decoding lab (issue 5): decoding settings live on the next-token table, bans and biases.

While the lab is on, the table shows each token's raw probability (softmax of the logits),
its processed probability (after transformers' own logits processors for the settings, in
generate()'s order: ``explorer/engine/decoding/pipeline.py``) and the stage that removed it; the lab
contributes those columns through a column provider (explorer/ui/extensions.py). A settings
change re-scores the current step in a "lab-score" job with no forward pass; the newest
request wins (results carry the key they were computed for). Sampling, generation and beams
are in lab_runs.py, the regex constraint in lab_regex.py. The engine is imported lazily:
importing the UI must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rich.text import Text
from textual.message import Message

from explorer.engine.decoding.settings import DecodingSettings
from explorer.errors import ExplorerError, InputError
from explorer.ui.extensions import Column, ColumnProvider
from explorer.ui.features import lab_settings as ls
from explorer.ui.features.lab_regex import ActiveConstraint, _allowed_view
from explorer.ui.features.lab_runs import GENERATE_N
from explorer.ui.render import token_cell
from explorer.ui.widgets.lab_panel import LabPanel

BIAS_STEP = 2.0
"""Logits added (B) or taken away (V) per press."""
LAB_TABLE_WIDTH = 56

#: Short stage names for the table's "cut by" column.
STAGE_LABELS = {"sequence_bias": "bias", "repetition_penalty": "rep-pen", "ban": "ban", "regex": "regex",
                "temperature": "temp", "top_k": "top-k", "top_p": "top-p", "min_p": "min-p",
                "typical_p": "typical", "epsilon": "epsilon", "eta": "eta", "fallback": "fallback"}

LAB_COLUMNS = [("#", "rank"), ("token", "token"), ("id", "id"), ("raw p", "prob"), ("lab p", "lab"),
               ("cut by", "cut")]
"""The table's (header, key) pairs while the lab is on."""


# ---------------------------------------------------------------------------- messages
@dataclass
class LabScored(Message):
    """A LabView (and the regex state) for the key it was computed for."""

    key: tuple
    view: Any
    constraint: Any = None
    error: str | None = None


def _pct(x: float) -> str:
    """A share as a percentage, keeping small ones readable (a regex may keep 0.0003 % of the mass)."""
    return f"{x:8.2%}" if x >= 0.001 or x == 0 else f"{x * 100:7.2g}%"


def prob_text(p: float) -> str:
    """A probability in 7 characters; tiny ones in scientific notation rather than 0.0000."""
    return f"{p:.4f}" if p >= 1e-4 or p == 0 else f"{p:.1e}"


class DecodingLabMixin:
    """ExplorerApp's decoding lab: keys D [ ] - = 0 t r b B V (see keymap.py); n N o in lab_runs.py,
    / in lab_regex.py. Its table columns come through a column provider."""

    lab_on: bool = False
    lab_settings: DecodingSettings = DecodingSettings()
    lab_selected: int = 0
    lab_order: str = "raw"
    _lab_key: tuple | None = None
    _lab_result: LabScored | None = None
    _lab_follow: tuple | None = None
    """(snapshot, token id) the table cursor stays on after a ban or a bias, so the token can be seen moving."""

    def install_lab(self) -> None:
        ext = self.extensions
        ext.column_providers.append(ColumnProvider(active=lambda: self.lab_on, columns=self._lab_columns,
                                                   rows=self._lab_rows, follow=self._lab_follow_row,
                                                   width=LAB_TABLE_WIDTH))
        ext.step_listeners.append(self._lab_rescore)
        ext.job_listeners.append(self._render_lab_panel)  # the panel shows N's progress
        ext.key_conditions["lab_on"] = lambda: self.ready and self.lab_on

    # ------------------------------------------------------------ table columns
    def _lab_rows(self) -> list:
        """The lab's rows (removed tokens included, struck out), or the candidates while it scores."""
        result = self._lab_current()
        return list(result.view.rows) if result is not None and result.view is not None else None

    def _lab_columns(self) -> list[Column]:
        scored = self._lab_current() is not None and self._lab_current().view is not None
        settings = self._lab_current().view.settings if scored else self.lab_settings

        def gone(r) -> bool:
            return getattr(r, "removed_by", None) is not None

        def token(r) -> Text:
            cell = token_cell(r.text.text, r.text.kind)
            if gone(r):
                cell.stylize("dim strike")
            bias = ls.single_bias(settings, r.id)
            if bias:
                cell.append(f" {bias:+g}", "bold green" if bias > 0 else "bold red")
            return cell

        def raw(r) -> Text:
            return Text(prob_text(r.raw_prob if scored else r.prob), style="dim strike" if gone(r) else "")

        def lab(r) -> Text:
            if not scored:
                return Text("…", style="italic yellow")  # scoring is on its way
            if gone(r):
                return Text("—", style="dim strike")
            return Text(prob_text(r.processed_prob), style="bold" if r.processed_prob > r.raw_prob + 1e-9 else "")

        def cut(r) -> Text:
            return Text(STAGE_LABELS.get(r.removed_by, r.removed_by or ""), style="italic red") if gone(r) else Text("")

        return [Column("token", "token", token), Column("raw p", "prob", raw), Column("", "logit", None),
                Column("", "z", None), Column("lab p", "lab", lab), Column("cut by", "cut", cut)]

    def _lab_follow_row(self, rows: list) -> int | None:
        follow = self._lab_follow
        if follow is None or follow[0] != self.session.snapshot():  # only on the step it was set for
            return None
        return next((i for i, r in enumerate(rows) if r.id == follow[1]), None)

    # ------------------------------------------------------------ scoring
    def _lab_current(self) -> LabScored | None:
        """The newest lab result if it belongs to the prompt as it is now."""
        r = self._lab_result
        if r is None or self.session is None or r.key[0] != self.session.snapshot():
            return None
        return r

    def _lab_rescore(self) -> None:
        if not self.ready or not (self.lab_on or self._constraint_applying()):
            self._render_lab_panel()
            return
        snapshot = self.session.snapshot()
        constraint = self._constraint_applying()
        top_n = self.session.config.display.tokens_to_show
        settings, order = self.lab_settings, self.lab_order
        key = (snapshot, settings, constraint.serial if constraint else None, order, top_n)
        if key != self._lab_key:  # else that request is already on its way (or done)
            self._lab_key = key
            self.jobs.start("lab-score", "re-scoring (lab)",
                            lambda job: self._lab_score(job, key, snapshot, settings, constraint, order, top_n))
        self._render_lab_panel()

    def _lab_score(self, job, key: tuple, snapshot: tuple, settings: DecodingSettings,
                   constraint: ActiveConstraint | None, order: str, top_n: int) -> None:
        from explorer.engine.decoding.pipeline import lab_view

        wrapper = self.session.wrapper
        state = None
        try:
            with wrapper.lock:
                if job.should_stop():  # a newer request replaced this one while it waited for the lock
                    return
                trace = self.session.trace_for(*snapshot)
                allowed = None
                if constraint is not None:
                    state = constraint.tracker.step(list(snapshot[1][constraint.start:]))
                    if state.error is None and not state.finished:
                        allowed = state.allowed_ids()
                if allowed is None:
                    view = lab_view(wrapper, trace, settings, top_n, order=order)
                else:
                    view = _allowed_view(wrapper, trace, settings, top_n, allowed, order)
        except ExplorerError as exc:
            self.post_message(LabScored(key, None, state, exc.message))
            return
        if not job.should_stop():
            self.post_message(LabScored(key, view, state))

    def on_lab_scored(self, msg: LabScored) -> None:
        if msg.key != self._lab_key:
            return  # a newer request is on its way
        self._lab_result = msg
        c = self._constraint
        if c is not None and msg.constraint is not None and msg.key[2] == c.serial:
            c.state, c.state_ids = msg.constraint, msg.key[0][1]
            if msg.constraint.finished:
                self._constraint = None
                self.notify(f'The text now matches "{c.compiled.regex}": match complete, the constraint is released.',
                            title="Regex", timeout=6)
                self._lab_rescore()
            elif msg.constraint.error:
                self.notify(msg.constraint.error, title="Regex", severity="warning", timeout=6)
        if msg.error:
            self.notify(msg.error, title="Decoding lab", severity="warning", timeout=6)
        if self.lab_on and self.ready:
            self.render_table()
        self._render_lab_panel()

    def _lab_panel(self) -> LabPanel:
        found = self.query("#lab-panel")
        if found:
            return found.first(LabPanel)
        panel = LabPanel(id="lab-panel")
        self.query_one("#extra-panels").mount(panel)
        return panel

    def _render_lab_panel(self) -> None:
        if not self.lab_on or self.session is None:
            return
        self._lab_panel().show(self._lab_panel_text())

    def _lab_panel_text(self) -> Text:
        s = self.lab_settings
        t = Text()
        t.append("Decoding lab", "bold")
        draws = self._lab_sampler.draws if self._lab_sampler is not None else 0
        t.append(f" — {'sampling' if s.do_sample else 'greedy'} · seed {self.session.seed} · {draws} draws"
                 f" · rows by {self.lab_order} p\n", "dim")
        half = (len(ls.SETTINGS) + 1) // 2
        for row in range(half):
            for col in (row, row + half):
                if col >= len(ls.SETTINGS):
                    continue
                spec = ls.SETTINGS[col]
                chosen = col == self.lab_selected
                cell = Text(("▸ " if chosen else "  ") + f"{spec.short:<12}")
                value = ls.format_value(s, col)
                cell.append(f"{value:<10}", "bold" if not ls.is_off(s, col) else "dim")
                if chosen:
                    cell.stylize("reverse")
                t.append_text(cell)
                t.append("  ")
            t.append("\n")
        result = self._lab_current()
        if result is not None and result.view is not None:
            v = result.view
            t.append(f"{v.survivors} of {v.vocab_size} tokens can be chosen", "bold")
            if result.key[1] != s or result.key[3] != self.lab_order:
                t.append("  re-scoring…", "italic yellow")
            t.append("\n")
            for st in v.stages:
                t.append(f"  {STAGE_LABELS.get(st.name, st.name):<9}{st.survivors:>6} left {_pct(st.mass_kept)} of its input "
                         f"{_pct(st.raw_mass_kept)} of raw", "red" if st.kept_by_floor else "")
                if st.kept_by_floor:
                    t.append("  (kept the best one)", "red")
                t.append("\n")
            if not v.stages:
                t.append("  no stage is on: processed = raw\n", "dim")
            for note in v.notes:
                t.append(f"note: {note}\n", "italic yellow")
        else:
            t.append("scoring…\n", "italic yellow")
        wrapper = self.session.wrapper
        if s.bans:
            t.append("Banned: ", "bold")
            t.append(", ".join(f"{wrapper.token_text(b[-1]).visible()!r} [{b[-1]}]" if len(b) == 1 else
                               f"{wrapper.decode(list(b))!r}" for b in s.bans) + "\n")
        if s.biases:
            t.append("Biased: ", "bold")
            t.append(", ".join(f"{wrapper.token_text(k[-1]).visible()!r} [{k[-1]}] {v:+g}" if len(k) == 1 else
                               f"{wrapper.decode(list(k))!r} {v:+g}" for k, v in s.biases) + "\n")
        t.append_text(self._regex_line())
        progress = next((j.progress for j in self.jobs.running if j.kind == "lab-run" and j.progress), None)
        if self._lab_busy == "generating" and progress:
            done, total = progress
            t.append(f"Generating {done}/{total}… (Esc stops)\n", "bold yellow")
        elif self._lab_busy:
            t.append(f"{self._lab_busy.capitalize()}…\n", "bold yellow")
        if self._lab_last:
            t.append(self._lab_last + "\n", "dim")
        t.append("[ ] pick  - = change  0 reset  t greedy  r order  b ban  B/V bias ±2  n sample  "
                 f"N {GENERATE_N} tokens  / regex  o beams", "dim")
        return t

    # ------------------------------------------------------------ actions: lab panel and settings
    def _lab_needs_panel(self) -> bool:
        if not self.ready:
            return True
        if not self.lab_on:
            self.notify("The decoding lab is off; press D to open it.", title="Decoding lab", timeout=3)
            return True
        return False

    def _lab_set_on(self, on: bool) -> None:
        self.lab_on = on
        self._lab_follow = None
        panel = self._lab_panel()
        panel.display = on
        self.render_table()
        self._lab_rescore()
        self._refresh_bindings()

    def action_lab_scroll(self, lines: int) -> None:
        """PgDn / PgUp: the lab panel is taller than a small terminal leaves it."""
        if not self.lab_on:
            self.notify("The decoding lab is closed: D opens it.", timeout=2)
            return
        self._lab_panel().scroll_relative(y=lines, animate=False)

    def action_lab_toggle(self) -> None:
        if not self.ready:
            return
        if not self.lab_on and "full_logits" not in getattr(self.session.wrapper, "capabilities", ()):
            # The lab re-scores the whole logits row; a served model returns only its top-k log-probabilities.
            from explorer.engine.interface import unavailable_message

            self.notify(f"Decoding lab: {unavailable_message({'full_logits'})}", title="Decoding lab",
                        severity="warning", timeout=5)
            return
        self._lab_set_on(not self.lab_on)

    def _lab_apply(self, settings: DecodingSettings, follow: int | None = None) -> None:
        self.lab_settings = settings
        self._lab_follow = None if follow is None else (self.session.snapshot(), follow)
        self._lab_rescore()

    def action_lab_prev_setting(self) -> None:
        if not self._lab_needs_panel():
            self.lab_selected = (self.lab_selected - 1) % len(ls.SETTINGS)
            self._render_lab_panel()

    def action_lab_next_setting(self) -> None:
        if not self._lab_needs_panel():
            self.lab_selected = (self.lab_selected + 1) % len(ls.SETTINGS)
            self._render_lab_panel()

    def _lab_step(self, direction: int) -> None:
        if self._lab_needs_panel():
            return
        try:
            new = ls.stepped(self.lab_settings, self.lab_selected, direction)
        except InputError as exc:
            self.notify(exc.message, title="Setting refused", severity="warning", timeout=5)
            return
        self._lab_apply(new)

    def action_lab_increase(self) -> None:
        self._lab_step(+1)

    def action_lab_decrease(self) -> None:
        self._lab_step(-1)

    def action_lab_reset_setting(self) -> None:
        if not self._lab_needs_panel():
            self._lab_apply(ls.reset(self.lab_settings, self.lab_selected))

    def action_lab_greedy(self) -> None:
        if not self._lab_needs_panel():
            self._lab_apply(replace(self.lab_settings, do_sample=not self.lab_settings.do_sample))

    def action_lab_order(self) -> None:
        if not self._lab_needs_panel():
            self.lab_order = "processed" if self.lab_order == "raw" else "raw"
            self._lab_follow = None
            self._lab_rescore()

    def _lab_selected_token(self):
        if self._lab_needs_panel():
            return None
        cand = self.selected_candidate()
        if cand is None:
            self.notify("No token is selected.", title="Decoding lab", timeout=3)
        return cand

    def action_lab_ban(self) -> None:
        cand = self._lab_selected_token()
        if cand is None:
            return
        s = self.lab_settings
        if ls.is_banned(s, cand.id):
            self._lab_apply(s.without_ban(cand.id), follow=cand.id)
            self._lab_last = f"Unbanned {cand.text.visible()!r}."
        else:
            self._lab_apply(s.with_ban(cand.id), follow=cand.id)
            self._lab_last = f"Banned {cand.text.visible()!r} (b again to unban)."
        self._render_lab_panel()

    def _lab_bias(self, delta: float) -> None:
        cand = self._lab_selected_token()
        if cand is None:
            return
        value = ls.single_bias(self.lab_settings, cand.id) + delta
        try:
            new = self.lab_settings.with_bias(cand.id, value)
        except InputError as exc:
            self.notify(exc.message, title="Bias refused", severity="warning", timeout=5)
            return
        self._lab_apply(new, follow=cand.id)
        self._lab_last = (f"Bias of {cand.text.visible()!r}: {value:+g} logits." if value else
                          f"{cand.text.visible()!r} has no bias any more.")
        self._render_lab_panel()

    def action_lab_boost(self) -> None:
        self._lab_bias(+BIAS_STEP)

    def action_lab_lower(self) -> None:
        self._lab_bias(-BIAS_STEP)
