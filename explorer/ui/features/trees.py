"""Token trees, generation and the logprob export on the main screen (keys T, g, G, X, Escape).

* ``T`` builds the seed notebook's token tree from the current prompt as a job
  (progress in ``#extra-panels``, Escape stops it and keeps what was built), then pushes the
  tree screen (explorer/ui/screens/tree.py); Enter there opens a path as a new prompt.
* ``g`` / ``G`` generate GENERATE_TOKENS tokens (greedy / sampled with the session seed, so a
  run replays) and append them to the current prompt, so every mode applies to them.
* ``X`` appends the current prompt's trace to ``data_dir()/logprobs.jsonl`` in the notebook's
  record format: ``prompt`` is the prompt as it was opened, ``response`` what was appended since.

All model work runs through the engine (build_tree, generate, trace_steps, logprob_record);
one job of each kind at a time, run through ``app.jobs``. Expected refusals (context full, nothing to export) are
warnings; anything else reaches the app's one error boundary.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from textual.message import Message
from textual.widgets import Static

from explorer.errors import InputError

GENERATE_TOKENS = 20
PROGRESS_EVERY_S = 0.1  # at most this often a progress message crosses to the UI thread
EXPORT_TOP = 5  # alternatives per token in the JSONL record (the notebook's other_tokens)


def app_tree_params():
    """The notebook's thresholds, with limits small enough to stay interactive in the app."""
    from explorer.engine.tree import TreeParams

    return TreeParams(max_depth=40, max_completed_paths=5)


# ---------------------------------------------------------------- messages from the jobs
@dataclass
class TreeBuilt(Message):
    result: Any  # explorer.engine.tree.TreeResult
    prompt_ids: list


@dataclass
class TokensGenerated(Message):
    snapshot: tuple  # (uid, ids) the generation started from
    generation: Any  # explorer.engine.decoding.generate.Generation
    sampled: bool
    seed: int


@dataclass
class TraceExported(Message):
    path: str
    tokens: int


@dataclass
class ProgressText(Message):
    text: str


class TreesMixin:
    """Keys: T tree, g/G generate, X export. Esc (the app's) stops a build or a generation and
    keeps what was made: these jobs hand back their partial result when stopped."""

    _export_lock = threading.Lock()  # two quick X presses must not read-modify-write the file at once
    last_tree = None  # the last TreeResult (tests and the screen read it)

    # ------------------------------------------------------------ shared bits
    def _show_progress(self, text: str | None) -> None:
        panels = self.query_one("#extra-panels")
        found = panels.query("#job-progress")
        if text is None:
            found.remove()
        elif found:
            found.first(Static).update(text)
        else:
            panels.mount(Static(text, id="job-progress"))

    def _fits_context(self, ids: list[int], what: str) -> bool:
        limit = self.session.wrapper.context_length
        if len(ids) >= limit - 1:
            self.notify(f"The prompt fills the model's context ({limit} tokens); no room to {what}.",
                        severity="warning", timeout=4)
            return False
        return True

    def on_progress_text(self, msg: ProgressText) -> None:
        if self.jobs.busy("tree") or self.jobs.busy("generate"):
            self._show_progress(msg.text)

    def _progress_done(self) -> None:
        """A tree or generation job ended: the progress line goes once neither runs."""
        if not (self.jobs.busy("tree") or self.jobs.busy("generate")):
            self._show_progress(None)

    # ------------------------------------------------------------ T: token tree
    def action_build_tree(self) -> None:
        if not self.ready:
            return
        if self.jobs.busy("tree"):
            self.notify("A token tree is already being built (Esc stops it).", severity="warning", timeout=3)
            return
        ids = list(self.session.current.ids)
        if not self._fits_context(ids, "grow a tree"):
            return
        params = app_tree_params()
        self._show_progress(f"Building the token tree (max depth {params.max_depth}, "
                            f"{params.max_completed_paths} completed paths)… Esc stops")
        self.jobs.start("tree", "building the token tree", lambda job: self._build_tree(job, ids, params), esc=True,
                        on_end=lambda _job: self._progress_done())

    def _build_tree(self, job, ids: list[int], params) -> None:
        from explorer.engine.tree import build_tree

        last = [0.0]

        def on_progress(p) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                self.post_message(ProgressText(
                    f"Token tree: {p.nodes} nodes, depth {p.depth}, {p.completed_paths}/"
                    f"{params.max_completed_paths} completed paths, queue {p.queue}, {p.seconds:.1f} s — "
                    "Esc stops and keeps what was built"))

        wrapper = self.session.wrapper
        result = build_tree(wrapper, ids, params, prompt_text=wrapper.decode(ids), on_progress=on_progress,
                            should_stop=job.should_stop)
        self.post_message(TreeBuilt(result, ids))  # stopped or not: what was built is kept

    def on_tree_built(self, msg: TreeBuilt) -> None:
        from explorer.ui.screens.tree import TreeScreen

        self.last_tree = msg.result
        if msg.result.incomplete:
            self.notify(f"{msg.result.message} (marked incomplete)", title="Token tree", severity="warning",
                        timeout=5)
        self.push_screen(TreeScreen(msg.result, msg.prompt_ids, app_limits=True))

    def open_path_as_prompt(self, ids: list[int]) -> bool:
        """Open ``ids`` as a new prompt entry and compute it; False (with a notice) past max_prompts."""
        limit = self.session.wrapper.context_length
        if len(ids) > limit:
            # A tree stopped by the context can hold leaves one token past it.
            self.notify(f"That path makes a prompt of {len(ids)} tokens, past the model's context of {limit}; "
                        "choose a shallower node.", severity="warning", timeout=4)
            return False
        try:
            self.session.new_prompt(ids)
        except InputError as exc:
            self._tell(exc)
            return False
        self._request_step()
        self.notify(f"Prompt {self.session.index + 1}/{self.session.count}: the tree path "
                    f"({len(ids)} tokens)", timeout=3)
        return True

    # ------------------------------------------------------------ g / G: generation
    def action_generate_greedy(self) -> None:
        self._start_generation(sampled=False)

    def action_generate_sampled(self) -> None:
        self._start_generation(sampled=True)

    def _start_generation(self, sampled: bool) -> None:
        if not self.ready:
            return
        if self.jobs.busy("generate"):
            self.notify("Already generating (Esc stops).", severity="warning", timeout=3)
            return
        snapshot = self.session.snapshot()
        if not self._fits_context(list(snapshot[1]), "generate"):
            return
        how = f"sampling with seed {self.session.seed}" if sampled else "greedy"
        self._show_progress(f"Generating {GENERATE_TOKENS} tokens ({how})… Esc stops")
        seed = int(self.session.seed)
        self.jobs.start("generate", "generating", lambda job: self._generate(job, snapshot, sampled, seed), esc=True,
                        on_end=lambda _job: self._progress_done())

    def _generate(self, job, snapshot: tuple, sampled: bool, seed: int) -> None:
        from explorer.engine.decoding.generate import generate

        count = [0]

        def on_token(_step) -> None:
            count[0] += 1
            self.jobs.report(job, count[0], GENERATE_TOKENS)
            self.post_message(ProgressText(f"Generating: {count[0]}/{GENERATE_TOKENS} tokens — "
                                           "Esc stops and keeps them"))

        gen = generate(self.session.wrapper, list(snapshot[1]), GENERATE_TOKENS, sample=sampled, seed=seed,
                       should_stop=job.should_stop, on_token=on_token)
        self.post_message(TokensGenerated(snapshot, gen, sampled, seed))  # stopped or not: keep them

    def on_tokens_generated(self, msg: TokensGenerated) -> None:
        gen = msg.generation
        if self.session.snapshot() != msg.snapshot:
            self.notify("The prompt changed while generating; the generated tokens were not appended.",
                        severity="warning", timeout=4)
            return
        added = 0
        try:
            for token_id in gen.new_ids:
                self.session.append(token_id)
                added += 1
        except InputError as exc:
            self._tell(exc)
        self._request_step()
        how = f"sampled, seed {msg.seed}" if msg.sampled else "greedy"
        why = {"eos": "; stopped at end-of-sequence", "cancelled": "; stopped", "context": "; context full"}
        self.notify(f"Appended {added} tokens ({how}){why.get(gen.stop_reason, '')}.", timeout=3)

    # ------------------------------------------------------------ X: logprob export
    def action_export_trace(self) -> None:
        if not self.ready:
            return
        entry = self.session.current
        start = 0
        for a, b in zip(entry.ids, entry.original_ids):
            if a != b:
                break
            start += 1
        start = max(1, start)  # nothing predicts the first token
        if start >= len(entry.ids):
            self.notify("Nothing was appended to this prompt since it was opened; generate (g, G) or "
                        "append (l) first.", severity="warning", timeout=4)
            return
        snapshot = self.session.snapshot()
        self.jobs.start("export", "exporting logprobs", lambda job: self._export(snapshot, start), replace=False)

    def _export(self, snapshot: tuple, start: int) -> None:
        from explorer.engine.decoding.generate import logprob_record, trace_steps
        from explorer.io.exports import append_jsonl
        from explorer.paths import data_dir

        wrapper = self.session.wrapper
        with wrapper.lock:
            trace = self.session.trace_for(*snapshot)
            steps = trace_steps(trace, start)
        ids = list(snapshot[1])
        record = logprob_record(wrapper, wrapper.decode(ids[:start]), steps, top=EXPORT_TOP,
                                extra={"model": wrapper.name, "source": "explorer"})
        with self._export_lock:
            path = append_jsonl(data_dir() / "logprobs.jsonl", record)
        self.post_message(TraceExported(str(path), len(steps)))

    def on_trace_exported(self, msg: TraceExported) -> None:
        self.notify(f"Appended a record of {msg.tokens} tokens to {msg.path}", title="Logprobs exported", timeout=6)
