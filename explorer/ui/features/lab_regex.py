"""The decoding lab's regex constraint (key /): compile a regex (or a .regex file) for the
model's tokens, keep the table to the tokens that keep the text a possible match, and veto an
append that would break it (an append guard, see explorer/ui/extensions.py).

Threads: the tracker is only used inside jobs while they hold ``wrapper.lock``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.message import Message

from explorer.engine.decoding.settings import DecodingSettings
from explorer.errors import ExplorerError
from explorer.ui.extensions import Veto


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


def _regex_file(text: str) -> Path | None:
    """The regex file ``text`` names (as given, or inside prompts/), or None when it is a pattern."""
    for candidate in (Path(text), Path("prompts") / text):
        try:
            if candidate.is_file():
                return candidate
        except (OSError, ValueError):  # a pattern is not always a legal file name
            continue
    return Path(text) if text.endswith(".regex") else None



class LabRegexMixin:
    """Key /: the regex constraint; its state shows in the lab panel."""

    _constraint: ActiveConstraint | None = None
    _regex_compiling: str | None = None
    _regex_request: int = 0

    def install_lab_regex(self) -> None:
        self.extensions.append_guards.append(self._regex_veto)
        self.extensions.step_listeners.append(self._regex_step_ready)

    def _regex_step_ready(self) -> None:
        c = self._constraint
        if c is not None and c.uid == self.session.current.uid and len(self.session.current.ids) < c.start:
            self._constraint = None
            self.notify("Tokens from before the regex began were removed; the constraint is released.",
                        title="Regex", timeout=5)

    def _regex_veto(self, cand) -> Veto | None:
        """Refuse a token the active regex does not allow (the table marks it "regex")."""
        c = self._constraint_applying()
        if c is None:
            return None
        ids = tuple(self.session.current.ids)
        if c.state is None or c.state_ids != ids:
            return Veto("The regex constraint is being checked for this step; try again in a moment.", "Regex",
                        "information")
        if c.state.allowed is not None and not bool(c.state.allowed[cand.id]):
            return Veto(f"{cand.text.visible()!r} does not keep the text a match of the regex "
                        f'"{c.compiled.regex}"; press / and Enter on an empty line to release it.', "Regex")
        return None

    def _constraint_applying(self) -> ActiveConstraint | None:
        c = self._constraint
        if c is None or self.session is None:
            return None
        if c.uid != self.session.current.uid or len(self.session.current.ids) < c.start:
            return None
        return c

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
        request = self._regex_request
        self.jobs.start("regex", "compiling the regex", lambda job: self._compile_regex(request, text))
        self._render_lab_panel()

    def _compile_regex(self, request: int, text: str) -> None:
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
