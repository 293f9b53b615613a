"""The decoding lab (issue 5): decoding settings live on the next-token table, seeded sampling,
bans and biases, regex-constrained stepping, and the beam-search screen.

While the lab is on, the table shows each token's raw probability (softmax of the logits),
its processed probability (after transformers' own logits processors for the settings, in
generate()'s order: ``explorer/engine/decoding/pipeline.py``) and the stage that removed it. A
settings change re-scores the current step in a worker with no forward pass; the newest
request wins (results carry the key they were computed for). The engine is imported lazily:
importing the UI must not import torch.

Threads: the regex tracker and the seeded sampler are only used inside workers while they
hold ``wrapper.lock``, and at most one sampling/generation worker runs at a time, so their
state advances in the order the keys were pressed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.message import Message
from textual.worker import Worker, WorkerState, get_current_worker

from explorer.engine.decoding.settings import DecodingSettings
from explorer.errors import ExplorerError, InputError
from explorer.ui.features import lab_settings as ls
from explorer.ui.render import token_cell
from explorer.ui.widgets.lab_panel import LabPanel
from explorer.ui.widgets.token_table import TokenTable

GENERATE_N = 20
"""Tokens the N key generates."""
BIAS_STEP = 2.0
"""Logits added (B) or taken away (V) per press."""
LAB_TABLE_WIDTH = 56

#: Short stage names for the table's "cut by" column.
STAGE_LABELS = {"sequence_bias": "bias", "repetition_penalty": "rep-pen", "ban": "ban", "regex": "regex",
                "temperature": "temp", "top_k": "top-k", "top_p": "top-p", "min_p": "min-p",
                "typical_p": "typical", "epsilon": "epsilon", "eta": "eta", "fallback": "fallback"}

LAB_COLUMNS = [("#", "rank"), ("token", "token"), ("id", "id"), ("raw p", "raw"), ("lab p", "lab"),
               ("cut by", "cut")]


# ---------------------------------------------------------------------------- messages
@dataclass
class LabScored(Message):
    """A LabView (and the regex state) for the key it was computed for."""

    key: tuple
    view: Any
    constraint: Any = None
    error: str | None = None


@dataclass
class LabSampled(Message):
    snapshot: tuple
    token: int | None
    prob: float = 0.0
    draws: int = 0
    error: str | None = None


@dataclass
class LabGenerated(Message):
    snapshot: tuple
    new_ids: list
    stopped: str
    error: str | None = None


@dataclass
class LabGenerationProgressed(Message):
    done: int
    total: int


@dataclass
class RegexCompiled(Message):
    request: int
    regex: str
    compiled: Any
    error: str | None = None


# ---------------------------------------------------------------------------- constraint bookkeeping
@dataclass
class ActiveConstraint:
    """A compiled regex applied to one prompt from token ``start`` on."""

    compiled: Any  # constraint.CompiledRegex
    tracker: Any  # constraint.ConstraintTracker: used only in workers, under wrapper.lock
    uid: int
    start: int
    serial: int
    """Tells results for this constraint from those for an earlier one."""
    state: Any = None
    """The last ConstraintState seen, and the ids it was computed for."""
    state_ids: tuple | None = None


class _FromConstraintStart:
    """Adapts a tracker for generate_tokens, which passes only the ids generated in that call."""

    def __init__(self, tracker, before: list[int]) -> None:
        self.tracker = tracker
        self.before = before

    def step(self, generated_ids):
        return self.tracker.step(self.before + list(generated_ids))


def _allowed_view(wrapper, trace, settings: DecodingSettings, top_n: int, allowed: list[int], order: str):
    """Like decoding.lab_view, but the rows are the tokens the regex allows (best first), so the
    table is limited to tokens that keep the text a possible match."""
    import torch

    from explorer.engine.decoding.pipeline import lab_rows, process_logits
    from explorer.engine.decoding.settings import LabView

    step = process_logits(trace.last_row(), trace.ids, settings, eos_ids=wrapper.eos_ids, allowed_ids=allowed)
    ids = torch.tensor(allowed, dtype=torch.long)  # [n_allowed]
    key = step.raw_logits[ids] if order == "raw" else step.probs[ids]
    best = ids[torch.argsort(key, descending=True, stable=True)[:top_n]].tolist()
    rows = lab_rows(step, wrapper.token_text, 0, include=best)
    return LabView(rows=rows, stages=step.stages, survivors=step.survivors, vocab_size=int(step.scores.shape[-1]),
                   notes=step.notes, settings=settings)


def _pct(x: float) -> str:
    """A share as a percentage, keeping small ones readable (a regex may keep 0.0003 % of the mass)."""
    return f"{x:8.2%}" if x >= 0.001 or x == 0 else f"{x * 100:7.2g}%"


def prob_text(p: float) -> str:
    """A probability in 7 characters; tiny ones in scientific notation rather than 0.0000."""
    return f"{p:.4f}" if p >= 1e-4 or p == 0 else f"{p:.1e}"


def _regex_file(text: str) -> Path | None:
    """The regex file ``text`` names (as given, or inside prompts/), or None when it is a pattern."""
    for candidate in (Path(text), Path("prompts") / text):
        try:
            if candidate.is_file():
                return candidate
        except (OSError, ValueError):  # a pattern is not always a legal file name
            continue
    return Path(text) if text.endswith(".regex") else None


# ---------------------------------------------------------------------------- the mixin
class DecodingLabMixin:
    """ExplorerApp's decoding lab: keys D [ ] - = 0 b B V g r n N / o Esc (see keymap.py)."""

    lab_on: bool = False
    lab_settings: DecodingSettings = DecodingSettings()
    lab_selected: int = 0
    lab_order: str = "raw"
    _lab_key: tuple | None = None
    _lab_result: LabScored | None = None
    _lab_rows_shown: tuple = ()
    _lab_follow: tuple | None = None
    """(snapshot, token id) the table cursor stays on after a ban or a bias, so the token can be seen moving."""
    _lab_sampler: Any = None
    _lab_busy: str | None = None
    _lab_progress: tuple[int, int] | None = None
    _lab_last: str = ""
    _constraint: ActiveConstraint | None = None
    _regex_compiling: str | None = None
    _regex_request: int = 0

    # ------------------------------------------------------------ hooks
    def _render_table(self, keep_row: int = 0) -> None:
        table = self.query_one(TokenTable)
        if not self.lab_on:
            table.styles.width = None  # back to app.tcss
            self._lab_rows_shown = ()
            super()._render_table(keep_row)
            return
        table.styles.width = LAB_TABLE_WIDTH
        result = self._lab_current()
        rows, shown = [], []
        if result is not None and result.view is not None:
            settings = result.view.settings
            for r in result.view.rows:
                rows.append(self._lab_cells(r.rank, r.id, r.text, r.raw_prob, r.processed_prob, r.removed_by, settings))
                shown.append((r, r.removed_by))
        else:  # scoring is on its way: raw numbers now, processed ones in a moment
            for c in self.view.candidates:
                rows.append(self._lab_cells(c.rank, c.id, c.text, c.prob, None, None, self.lab_settings))
                shown.append((c, None))
        follow = self._lab_follow
        if follow is not None and follow[0] == self.session.snapshot():  # only on the step it was set for
            keep_row = next((i for i, (r, _) in enumerate(shown) if r.id == follow[1]), keep_row)
        self._lab_rows_shown = tuple(shown)
        table.show_rows(LAB_COLUMNS, rows, keep_row)

    def on_step_ready(self) -> None:
        super().on_step_ready()
        c = self._constraint
        if c is not None and c.uid == self.session.current.uid and len(self.session.current.ids) < c.start:
            self._constraint = None
            self.notify("Tokens from before the regex began were removed; the constraint is released.",
                        title="Regex", timeout=5)
        self._lab_rescore()

    def selected_candidate(self):
        if not self.lab_on:
            return super().selected_candidate()
        if not self.ready or not self._lab_rows_shown:
            return None
        row = self.query_one(TokenTable).cursor_row
        return self._lab_rows_shown[max(0, min(row, len(self._lab_rows_shown) - 1))][0]

    def action_append(self) -> None:
        """Refuse a token the active regex does not allow (the table marks it "regex")."""
        c = self._constraint_applying()
        cand = self.selected_candidate() if self.ready else None
        if c is not None and cand is not None and self._pending is None:
            ids = tuple(self.session.current.ids)
            if c.state is None or c.state_ids != ids:
                self.notify("The regex constraint is being checked for this step; try again in a moment.",
                            title="Regex", timeout=3)
                return
            if c.state.allowed is not None and not bool(c.state.allowed[cand.id]):
                self.notify(f"{cand.text.visible()!r} does not keep the text a match of the regex "
                            f'"{c.compiled.regex}"; press / and Enter on an empty line to release it.',
                            title="Regex", severity="warning", timeout=5)
                return
        super().action_append()

    # ------------------------------------------------------------ scoring
    def _constraint_applying(self) -> ActiveConstraint | None:
        c = self._constraint
        if c is None or self.session is None:
            return None
        if c.uid != self.session.current.uid or len(self.session.current.ids) < c.start:
            return None
        return c

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
        key = (snapshot, self.lab_settings, constraint.serial if constraint else None, self.lab_order, top_n)
        if key != self._lab_key:  # else that request is already on its way (or done)
            self._lab_key = key
            self.lab_score(key, snapshot, self.lab_settings, constraint, self.lab_order, top_n)
        self._render_lab_panel()

    @work(thread=True, exclusive=True, group="lab", exit_on_error=False, description="Re-scoring with the lab settings")
    def lab_score(self, key: tuple, snapshot: tuple, settings: DecodingSettings, constraint: ActiveConstraint | None,
                  order: str, top_n: int) -> None:
        from explorer.engine.decoding.pipeline import lab_view

        wrapper = self.session.wrapper
        state = None
        try:
            with wrapper.lock:
                if get_current_worker().is_cancelled:
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
        if not get_current_worker().is_cancelled:
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
            self._render_table(keep_row=self.query_one(TokenTable).cursor_row)
        self._render_lab_panel()

    # ------------------------------------------------------------ table cells and panel
    def _lab_cells(self, rank, tid, text, raw, processed, removed_by, settings) -> list[Text]:
        gone = removed_by is not None
        style = "dim strike" if gone else ""
        token = token_cell(text.text, text.kind)
        if gone:
            token.stylize("dim strike")
        bias = ls.single_bias(settings, tid)
        if bias:
            token.append(f" {bias:+g}", "bold green" if bias > 0 else "bold red")
        if processed is None:
            lab = Text("…", style="italic yellow")
        else:
            lab = Text("—" if gone else prob_text(processed), style=style or ("bold" if processed > raw + 1e-9 else ""))
        return [Text(str(rank), style="dim"), token, Text(str(tid), style="dim"), Text(prob_text(raw), style=style),
                lab, Text(STAGE_LABELS.get(removed_by, removed_by or ""), style="italic red" if gone else "")]

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
        if self._lab_busy == "generating" and self._lab_progress:
            done, total = self._lab_progress
            t.append(f"Generating {done}/{total}… (Esc stops)\n", "bold yellow")
        elif self._lab_busy:
            t.append(f"{self._lab_busy.capitalize()}…\n", "bold yellow")
        if self._lab_last:
            t.append(self._lab_last + "\n", "dim")
        t.append("[ ] pick  - = change  0 reset  t greedy  r order  b ban  B/V bias ±2  n sample  "
                 f"N {GENERATE_N} tokens  / regex  o beams", "dim")
        return t

    def _regex_line(self) -> Text:
        t = Text()
        if self._regex_compiling is not None:
            t.append("Regex: ", "bold")
            t.append(f"compiling {self._regex_compiling!r}…\n", "italic yellow")
            return t
        c = self._constraint
        if c is None:
            return t
        t.append("Regex: ", "bold")
        t.append(f"{c.compiled.regex}  ")
        if self._constraint_applying() is None:
            t.append(f"(set on another prompt; it applies there from token {c.start + 1})\n", "dim")
            return t
        state = c.state if c.state_ids == tuple(self.session.current.ids) else None
        if state is None:
            t.append("checking…\n", "italic yellow")
        elif state.error:
            t.append(state.error + "\n", "red")
        else:
            n_gen = len(self.session.current.ids) - c.start
            t.append(f"{state.n_allowed} tokens allowed after {n_gen} constrained tokens")
            t.append("; the text already matches (it may grow)\n" if state.accepting else "\n")
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
        self._render_table(keep_row=self.query_one(TokenTable).cursor_row)
        self._lab_rescore()

    def action_lab_toggle(self) -> None:
        if self.ready:
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

    # ------------------------------------------------------------ actions: sampling and generating
    def _sampler(self):
        if self._lab_sampler is None or self._lab_sampler.seed != self.session.seed:
            from explorer.engine.decoding.pipeline import SeededSampler

            self._lab_sampler = SeededSampler(self.session.seed)
        return self._lab_sampler

    def _lab_can_run(self) -> ActiveConstraint | None | bool:
        """False when n/N cannot start now (said why); else the constraint to apply (or None)."""
        if not self.ready:
            return False
        if self._lab_busy:
            self.notify(f"Still {self._lab_busy}; wait for it or press Esc.", title="Decoding lab", timeout=3)
            return False
        if self._pending is not None:
            return False  # the step is being computed; as for l, a queued press would act on a stale table
        if self._regex_compiling is not None:
            self.notify("The regex is still compiling.", title="Regex", timeout=3)
            return False
        c = self._constraint_applying()
        if c is not None and c.state is not None and c.state_ids == tuple(self.session.current.ids) and c.state.error:
            self.notify(c.state.error, title="Regex", severity="warning", timeout=5)
            return False
        return c

    def action_lab_sample(self) -> None:
        c = self._lab_can_run()
        if c is False:
            return
        self._lab_busy = "sampling"
        self.lab_sample(self.session.snapshot(), self.lab_settings, c, self._sampler())
        self._render_lab_panel()

    @work(thread=True, exclusive=True, group="lab-run", exit_on_error=False, description="Sampling a token")
    def lab_sample(self, snapshot: tuple, settings: DecodingSettings, constraint, sampler) -> None:
        from explorer.engine.decoding.pipeline import sample_next

        wrapper = self.session.wrapper
        try:
            with wrapper.lock:
                trace = self.session.trace_for(*snapshot)
                allowed = None
                if constraint is not None:
                    state = constraint.tracker.step(list(snapshot[1][constraint.start:]))
                    if state.error:
                        raise InputError(state.error)
                    allowed = None if state.finished else state.allowed_ids()
                token, step = sample_next(wrapper, trace, settings, sampler, allowed_ids=allowed)
        except ExplorerError as exc:
            self.post_message(LabSampled(snapshot, None, error=exc.message))
            return
        self.post_message(LabSampled(snapshot, token, float(step.probs[token]), sampler.draws))

    def on_lab_sampled(self, msg: LabSampled) -> None:
        self._lab_busy = None
        if msg.error or msg.token is None:
            self.notify(msg.error or "Nothing was sampled.", title="Sampling", severity="warning", timeout=5)
            self._render_lab_panel()
            return
        if msg.snapshot != self.session.snapshot():
            self.notify("The prompt changed while sampling; the token was not appended.", timeout=4)
            return
        text = self.session.wrapper.token_text(msg.token).visible()
        try:
            self.session.append(msg.token)
        except InputError as exc:
            self._tell(exc)
            return
        self._lab_last = f"Sampled {text!r} (lab p = {msg.prob:.4f}; seed {self.session.seed}, draw {msg.draws})."
        if not self.lab_on:
            self.notify(self._lab_last, title="Sampled", timeout=4)
        self._request_step()

    def action_lab_generate(self) -> None:
        c = self._lab_can_run()
        if c is False:
            return
        self._lab_busy = "generating"
        self._lab_progress = (0, GENERATE_N)
        self.lab_generate(self.session.snapshot(), self.lab_settings, c, self._sampler(), GENERATE_N)
        self._render_lab_panel()
        if not self.lab_on:
            self.notify(f"Generating {GENERATE_N} tokens with {self.lab_settings.describe()} (Esc stops).", timeout=3)

    @work(thread=True, exclusive=True, group="lab-run", exit_on_error=False, description="Generating tokens")
    def lab_generate(self, snapshot: tuple, settings: DecodingSettings, constraint, sampler, n: int) -> None:
        from explorer.engine.decoding.generate import generate_tokens

        worker = get_current_worker()
        wrapper = self.session.wrapper
        uid, ids = snapshot
        try:
            with wrapper.lock:
                room = wrapper.context_length - len(ids)
                if room < 1:
                    raise InputError(f"The prompt fills the model's context ({wrapper.context_length} tokens).")
                trace = self.session.trace_for(*snapshot)
                tracker = None
                if constraint is not None:
                    tracker = _FromConstraintStart(constraint.tracker, list(ids[constraint.start:]))
                result = generate_tokens(
                    wrapper, ids, settings, min(n, room), sampler, trace=trace, stop_at_eos=True, constraint=tracker,
                    should_stop=lambda: worker.is_cancelled,
                    on_token=lambda i, _t: self.post_message(LabGenerationProgressed(i + 1, n)))
        except ExplorerError as exc:
            self.post_message(LabGenerated(snapshot, [], "error", exc.message))
            return
        self.post_message(LabGenerated(snapshot, result.new_ids, result.stopped))

    def on_lab_generation_progressed(self, msg: LabGenerationProgressed) -> None:
        if self._lab_busy == "generating":
            self._lab_progress = (msg.done, msg.total)
            self._render_lab_panel()

    def on_lab_generated(self, msg: LabGenerated) -> None:
        self._lab_busy = None
        self._lab_progress = None
        if msg.error:
            self.notify(msg.error, title="Generating", severity="warning", timeout=5)
            self._render_lab_panel()
            return
        if msg.snapshot != self.session.snapshot():
            self.notify(f"The prompt changed while generating; the {len(msg.new_ids)} tokens were not appended.",
                        timeout=5)
            self._render_lab_panel()
            return
        added = 0
        for token in msg.new_ids:
            try:
                self.session.append(token)
            except InputError as exc:
                self._tell(exc)
                break
            added += 1
        why = {"length": "", "eos": " (stopped at the end-of-sequence token)",
               "constraint": "; match complete, the regex constraint is released",
               "cancelled": " (stopped by Esc)", "context": " (the context is full)"}.get(msg.stopped, "")
        if msg.stopped == "constraint":
            self._constraint = None
        self._lab_last = f"Generated {added} tokens{why}."
        self.notify(self._lab_last, title="Generated", timeout=4)
        self._request_step()

    def action_lab_cancel(self) -> None:
        if self._lab_busy == "generating":
            self.workers.cancel_group(self, "lab-run")
            self.notify("Stopping…", timeout=2)
        elif self.ready:
            self.notify("Nothing to stop (Esc stops N generation).", timeout=2)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A crashed sampling/compiling worker must not leave the lab waiting (the app's one
        error boundary reports the error itself)."""
        if event.state == WorkerState.ERROR and event.worker.group == "lab-run":
            self._lab_busy, self._lab_progress = None, None
            self._render_lab_panel()
        elif event.state == WorkerState.ERROR and event.worker.group == "regex":
            self._regex_compiling = None
            self._render_lab_panel()

    # ------------------------------------------------------------ actions: regex
    def action_lab_regex(self) -> None:
        if not self.ready:
            return
        from explorer.ui.screens.regex_input import RegexInput

        current = self._constraint.compiled.regex if self._constraint is not None else self._regex_compiling
        self.push_screen(RegexInput(current), callback=self._regex_entered)

    def _regex_entered(self, text: str | None) -> None:
        if text is None or self.session is None:
            return
        if not text.strip():
            if self._constraint is not None or self._regex_compiling is not None:
                self._constraint, self._regex_compiling = None, None
                self._regex_request += 1  # a compilation still running is ignored
                self.notify("The regex constraint is released.", title="Regex", timeout=3)
                self._lab_rescore()
            else:
                self.notify("No regex was given, so there is nothing to constrain.", title="Regex", timeout=3)
            return
        self._regex_request += 1
        self._regex_compiling = text
        self._constraint = None
        if not self.lab_on:
            self._lab_set_on(True)
        self.compile_regex(self._regex_request, text)
        self._render_lab_panel()

    @work(thread=True, exclusive=True, group="regex", exit_on_error=False, description="Compiling the regex")
    def compile_regex(self, request: int, text: str) -> None:
        from explorer.engine.decoding.constraint import compile_regex, read_regex_file

        regex = text
        try:
            path = _regex_file(text)
            if path is not None:
                regex = read_regex_file(path)
            compiled = compile_regex(self.session.wrapper, regex)
        except ExplorerError as exc:
            self.post_message(RegexCompiled(request, regex, None, exc.message))
            return
        self.post_message(RegexCompiled(request, regex, compiled))

    def on_regex_compiled(self, msg: RegexCompiled) -> None:
        if msg.request != self._regex_request:
            return
        self._regex_compiling = None
        if msg.error or msg.compiled is None:
            self.notify(msg.error or "The regex did not compile.", title="Regex", severity="warning", timeout=6)
            self._render_lab_panel()
            return
        uid, ids = self.session.snapshot()
        self._constraint = ActiveConstraint(msg.compiled, msg.compiled.new_tracker(), uid, len(ids), msg.request)
        if msg.compiled.note:
            self.notify(msg.compiled.note, title="Regex", timeout=6)
        self._lab_follow = None
        self._lab_rescore()

    # ------------------------------------------------------------ actions: beam search
    def action_beam_open(self) -> None:
        if not self.ready:
            return
        from explorer.ui.screens.beam import BeamScreen

        self.push_screen(BeamScreen(self.session, self.session.snapshot()), callback=self._beam_closed)

    def _beam_closed(self, opened: bool | None) -> None:
        if opened:
            self.notify(f"The beam is open as prompt {self.session.index + 1}/{self.session.count}.", timeout=4)
            self._request_step()
