"""Token trees, generation and the logprob export on the main screen (keys T, g, G, X, Escape).

* ``T`` builds the seed notebook's token tree from the current prompt in a thread worker
  (progress in ``#extra-panels``, Escape stops it and keeps what was built), then pushes the
  tree screen (explorer/ui/screens/tree.py); Enter there opens a path as a new prompt.
* ``g`` / ``G`` generate GENERATE_TOKENS tokens (greedy / sampled with the session seed, so a
  run replays) and append them to the current prompt, so every mode applies to them.
* ``X`` appends the current prompt's trace to ``data_dir()/logprobs.jsonl`` in the notebook's
  record format: ``prompt`` is the prompt as it was opened, ``response`` what was appended since.

All model work runs through the engine (build_tree, generate, trace_steps, logprob_record);
one job of each kind at a time. Expected refusals (context full, nothing to export) are
warnings; anything else reaches the app's one error boundary.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from textual import work
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from explorer.errors import InputError

GENERATE_TOKENS = 20
PROGRESS_EVERY_S = 0.1  # at most this often a progress message crosses to the UI thread
EXPORT_TOP = 5  # alternatives per token in the JSONL record (the notebook's other_tokens)


def app_tree_params():
    """The notebook's thresholds, with limits small enough to stay interactive in the app."""
    from explorer.engine.tree import TreeParams

    return TreeParams(max_depth=40, max_completed_paths=5)


# ---------------------------------------------------------------- messages from the workers
@dataclass
class JobProgressed(Message):
    text: str


@dataclass
class JobEnded(Message):
    kind: str  # "tree" or "generate"


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


class TreesMixin:
    """Keys: T tree, g/G generate, X export, Escape stops a running tree or generation."""

    _tree_stop: threading.Event | None = None
    _gen_stop: threading.Event | None = None
    _export_lock = threading.Lock()  # two quick X presses must not read-modify-write the file at once
    last_tree = None  # the last TreeResult (tests and the screen read it)

    # ------------------------------------------------------------ shared bits
    def _has_view(self) -> bool:
        return self.session is not None and self.ready

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

    def on_job_progressed(self, msg: JobProgressed) -> None:
        if self._tree_stop is not None or self._gen_stop is not None:
            self._show_progress(msg.text)

    def on_job_ended(self, msg: JobEnded) -> None:
        if msg.kind == "tree":
            self._tree_stop = None
        else:
            self._gen_stop = None
        if self._tree_stop is None and self._gen_stop is None:
            self._show_progress(None)

    def action_stop_job(self) -> None:
        """Escape: stop a running tree build or generation; what was made so far is kept."""
        for stop in (self._tree_stop, self._gen_stop):
            if stop is not None:
                stop.set()

    # ------------------------------------------------------------ T: token tree
    def action_build_tree(self) -> None:
        if not self._has_view():
            return
        if self._tree_stop is not None:
            self.notify("A token tree is already being built (Esc stops it).", severity="warning", timeout=3)
            return
        ids = list(self.session.current.ids)
        if not self._fits_context(ids, "grow a tree"):
            return
        self._tree_stop = threading.Event()
        params = app_tree_params()
        self._show_progress(f"Building the token tree (max depth {params.max_depth}, "
                            f"{params.max_completed_paths} completed paths)… Esc stops")
        self.build_tree_worker(ids, params, self._tree_stop)

    @work(thread=True, exclusive=True, group="tree", exit_on_error=False, description="Building a token tree")
    def build_tree_worker(self, ids: list[int], params, stop: threading.Event) -> None:
        from explorer.engine.tree import build_tree

        worker = get_current_worker()
        last = [0.0]

        def on_progress(p) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                self.post_message(JobProgressed(
                    f"Token tree: {p.nodes} nodes, depth {p.depth}, {p.completed_paths}/"
                    f"{params.max_completed_paths} completed paths, queue {p.queue}, {p.seconds:.1f} s — "
                    "Esc stops and keeps what was built"))

        try:
            wrapper = self.session.wrapper
            result = build_tree(wrapper, ids, params, prompt_text=wrapper.decode(ids), on_progress=on_progress,
                                should_stop=lambda: stop.is_set() or worker.is_cancelled)
            if not worker.is_cancelled:
                self.post_message(TreeBuilt(result, ids))
        finally:
            self.post_message(JobEnded("tree"))

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
        if not self._has_view():
            return
        if self._gen_stop is not None:
            self.notify("Already generating (Esc stops).", severity="warning", timeout=3)
            return
        snapshot = self.session.snapshot()
        if not self._fits_context(list(snapshot[1]), "generate"):
            return
        self._gen_stop = threading.Event()
        how = f"sampling with seed {self.session.seed}" if sampled else "greedy"
        self._show_progress(f"Generating {GENERATE_TOKENS} tokens ({how})… Esc stops")
        self.generate_worker(snapshot, sampled, int(self.session.seed), self._gen_stop)

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False, description="Generating tokens")
    def generate_worker(self, snapshot: tuple, sampled: bool, seed: int, stop: threading.Event) -> None:
        from explorer.engine.decoding.generate import generate

        worker = get_current_worker()
        count = [0]

        def on_token(_step) -> None:
            count[0] += 1
            self.post_message(JobProgressed(f"Generating: {count[0]}/{GENERATE_TOKENS} tokens — "
                                            "Esc stops and keeps them"))

        try:
            gen = generate(self.session.wrapper, list(snapshot[1]), GENERATE_TOKENS, sample=sampled, seed=seed,
                           should_stop=lambda: stop.is_set() or worker.is_cancelled, on_token=on_token)
            if not worker.is_cancelled:
                self.post_message(TokensGenerated(snapshot, gen, sampled, seed))
        finally:
            self.post_message(JobEnded("generate"))

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
        if not self._has_view():
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
        self.export_worker(self.session.snapshot(), start)

    @work(thread=True, exclusive=False, group="export", exit_on_error=False, description="Exporting logprobs")
    def export_worker(self, snapshot: tuple, start: int) -> None:
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
