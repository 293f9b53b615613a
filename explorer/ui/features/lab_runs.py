"""The decoding lab's runs: n samples one token, N generates GENERATE_N tokens with the lab
settings (seeded, replayable; Esc stops and keeps them), o opens the beam-search screen.

At most one sampling/generation job runs at a time, so the sampler's state advances in the
order the keys were pressed.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from explorer.engine.decoding.settings import DecodingSettings
from explorer.errors import ExplorerError, InputError
from explorer.ui.features.lab_regex import ActiveConstraint, _FromConstraintStart

GENERATE_N = 20
"""Tokens the N key generates."""


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


class LabRunsMixin:
    """Keys: n, N, o."""

    _lab_sampler = None
    _lab_busy: str | None = None
    _lab_last: str = ""

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
        snapshot, settings, sampler = self.session.snapshot(), self.lab_settings, self._sampler()
        self.jobs.start("lab-run", "sampling", lambda job: self._lab_sample(snapshot, settings, c, sampler))
        self._render_lab_panel()

    def _lab_sample(self, snapshot: tuple, settings: DecodingSettings, constraint, sampler) -> None:
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
        snapshot, settings, sampler = self.session.snapshot(), self.lab_settings, self._sampler()
        self.jobs.start("lab-run", "generating (lab)",
                        lambda job: self._lab_generate(job, snapshot, settings, c, sampler, GENERATE_N), esc=True)
        self._render_lab_panel()
        if not self.lab_on:
            self.notify(f"Generating {GENERATE_N} tokens with {self.lab_settings.describe()} (Esc stops).", timeout=3)

    def _lab_generate(self, job, snapshot: tuple, settings: DecodingSettings, constraint, sampler, n: int) -> None:
        from explorer.engine.decoding.generate import generate_tokens

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
                    should_stop=job.should_stop,
                    on_token=lambda i, _t: self.jobs.report(job, i + 1, n))
        except ExplorerError as exc:
            self.post_message(LabGenerated(snapshot, [], "error", exc.message))
            return
        self.post_message(LabGenerated(snapshot, result.new_ids, result.stopped))

    def on_lab_generated(self, msg: LabGenerated) -> None:
        self._lab_busy = None
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

    def lab_job_failed(self, group: str) -> None:
        """A crashed sampling/compiling job must not leave the lab waiting (the app reports the error)."""
        if group.startswith("job-lab-run-"):
            self._lab_busy = None
            self._render_lab_panel()
        elif group.startswith("job-regex-"):
            self._regex_compiling = None
            self._render_lab_panel()

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
