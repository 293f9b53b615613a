"""Session: the prompts, the current one, its cursor; the headless object the UI, CLI and tests drive.

The bookkeeping methods (append, pop, add, remove, switch, cursor moves) are pure list
operations, cheap enough for the UI thread. ``compute`` is the only model work: it makes
the prompt's Trace hold the prompt's ids (a one-token pass after an append, a crop after a
pop) and returns a StepView. Prompts are kept as token ids, so a path built token by token
survives switching, saving and resuming exactly. Never imports Textual or Rich.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field

from explorer.config import Config
from explorer.engine.model import ModelWrapper
from explorer.engine.trace import Trace
from explorer.engine.view import StepView
from explorer.errors import InputError

_uids = itertools.count(1)


@dataclass
class PromptEntry:
    ids: list[int]
    original_ids: list[int]
    """What Ctrl+r goes back to."""
    cursor: int | None = None
    """Token index under the cursor; None follows the last token."""
    uid: int = field(default_factory=lambda: next(_uids))

    def cursor_index(self) -> int:
        n = len(self.ids)
        if self.cursor is None or self.cursor >= n:
            return n - 1
        return max(0, self.cursor)


class Session:
    """Several prompts over one model.

    Args:
        wrapper: the engine: the local model (ModelWrapper) or a served one (RemoteEngine), both
            ``explorer.engine.interface.Engine``.
        config: the checked configuration (max_prompts, tokens_to_show, cache_size).
        prompts: token-id lists to start with; default: the config's example prompt.
        seed: the random seed for sampling (shown in the status bar so a run can be replayed).
    """

    def __init__(self, wrapper: ModelWrapper, config: Config, prompts: list[list[int]] | None = None,
                 *, seed: int = 0, mode: str = "plain") -> None:
        self.wrapper = wrapper
        self.config = config
        self.seed = seed
        self.mode = mode
        self.show_zscores = False
        self.cursor_visible = True
        self.notes: list[str] = []
        self.comparison = None
        """A Comparison (explorer.engine.compare) when a second model steps beside this one."""
        if not prompts:
            prompts = [self.ids_from_text(config.prompt.example_prompt)]
        prompts = [list(p) for p in prompts][: config.prompt.max_prompts]
        for p in prompts:
            if not p:
                raise InputError("A prompt must hold at least one token.")
        self.prompts: list[PromptEntry] = [PromptEntry(list(p), list(p)) for p in prompts]
        self.index = 0
        self._traces: OrderedDict[int, Trace] = OrderedDict()
        self._intervention_items: tuple = ()
        self._hooks = None  # InterventionHooks installed on the model while interventions are on
        self._paired: OrderedDict[int, object] = OrderedDict()  # uid -> PairedTrace

    @property
    def context_length(self) -> int:
        """The model's context, or the shorter of the two models' while comparing."""
        if self.comparison is not None:
            return self.comparison.context_length
        return self.wrapper.context_length

    # ------------------------------------------------------------ text -> ids
    def ids_from_text(self, text: str) -> list[int]:
        """Tokenize a prompt, keeping it inside the model's context (a note says what was cut)."""
        if not text or not text.strip():
            raise InputError("The prompt is empty; give some text to start from.")
        ids = self.wrapper.encode(text)
        if not ids:
            raise InputError("The prompt produced no tokens.")
        limit = self.context_length - 1  # leave room for the next token
        if len(ids) > limit:
            keep_bos = self.wrapper.bos_id is not None and ids[0] == self.wrapper.bos_id
            cut = len(ids) - limit
            ids = ([ids[0]] + ids[1 + cut:]) if keep_bos else ids[cut:]
            self.notes.append(
                f"The prompt was {len(ids) + cut} tokens, longer than the model's context of "
                f"{self.context_length}; its first {cut} tokens were dropped."
            )
        return ids

    # ------------------------------------------------------------- prompts
    @property
    def current(self) -> PromptEntry:
        return self.prompts[self.index]

    @property
    def count(self) -> int:
        return len(self.prompts)

    def append(self, token_id: int) -> None:
        entry = self.current
        if len(entry.ids) + 1 > self.context_length:
            raise InputError(f"The prompt fills the model's context ({self.context_length} tokens).")
        if not 0 <= int(token_id) < self.wrapper.vocab_size:
            raise InputError(f"Token id {token_id} is outside the vocabulary (0..{self.wrapper.vocab_size - 1}).")
        follow = entry.cursor is None
        entry.ids.append(int(token_id))
        if follow:
            entry.cursor = None

    def pop(self) -> int:
        entry = self.current
        if len(entry.ids) <= 1:
            raise InputError("Nothing left to remove: the model needs at least one token to predict from.")
        token = entry.ids.pop()
        if entry.cursor is not None and entry.cursor >= len(entry.ids):
            entry.cursor = None
        return token

    def add_prompt(self) -> PromptEntry:
        """Copy the current prompt into a new entry after the last one and switch to it (key d)."""
        if self.count >= self.config.prompt.max_prompts:
            raise InputError(
                f"The session already holds {self.count} prompts, the most max_prompts allows; "
                "remove one with a first."
            )
        entry = PromptEntry(list(self.current.ids), list(self.current.ids), self.current.cursor)
        self.prompts.append(entry)
        self.index = self.count - 1
        return entry

    def remove_prompt(self) -> PromptEntry:
        if self.count <= 1:
            raise InputError("This is the only prompt; a session keeps at least one.")
        entry = self.prompts.pop(self.index)
        self._traces.pop(entry.uid, None)
        if self.comparison is not None:
            self.comparison.forget(entry.uid)
        self.index = min(self.index, self.count - 1)
        return entry

    def next_prompt(self) -> None:
        self.index = (self.index + 1) % self.count

    def prev_prompt(self) -> None:
        self.index = (self.index - 1) % self.count

    def reset(self) -> None:
        entry = self.current
        entry.ids = list(entry.original_ids)
        entry.cursor = None

    def replace_ids(self, ids: list[int]) -> None:
        if not ids:
            raise InputError("A prompt must hold at least one token.")
        self.current.ids = list(ids)
        self.current.cursor = None

    def new_prompt(self, ids: list[int]) -> PromptEntry:
        """Open ``ids`` as a new entry (tree paths, beams) and switch to it."""
        if self.count >= self.config.prompt.max_prompts:
            raise InputError(f"The session already holds max_prompts = {self.count} prompts; remove one with a first.")
        entry = PromptEntry(list(ids), list(ids))
        self.prompts.append(entry)
        self.index = self.count - 1
        return entry

    # -------------------------------------------------------------- cursor
    def cursor_index(self) -> int:
        return self.current.cursor_index()

    def _set_cursor(self, i: int) -> None:
        n = len(self.current.ids)
        i = max(0, min(n - 1, i))
        self.current.cursor = None if i == n - 1 else i

    def cursor_next(self) -> None:
        self._set_cursor(self.cursor_index() + 1)

    def cursor_prev(self) -> None:
        self._set_cursor(self.cursor_index() - 1)

    def cursor_start(self) -> None:
        self._set_cursor(0)

    def cursor_end(self) -> None:
        self._set_cursor(len(self.current.ids) - 1)

    def _word_starts(self) -> list[bool]:
        texts = [self.wrapper.token_text(t).text for t in self.current.ids]
        starts = []
        for i, text in enumerate(texts):
            prev = texts[i - 1] if i else ""
            starts.append(i == 0 or text[:1].isspace() or prev[-1:].isspace()
                          or (text[:1].isalnum() and not prev[-1:].isalnum()))
        return starts

    def cursor_next_word(self) -> None:
        starts = self._word_starts()
        i = self.cursor_index()
        nxt = next((j for j in range(i + 1, len(starts)) if starts[j]), len(starts) - 1)
        self._set_cursor(nxt)

    def cursor_prev_word(self) -> None:
        starts = self._word_starts()
        i = self.cursor_index()
        prv = next((j for j in range(i - 1, -1, -1) if starts[j]), 0)
        self._set_cursor(prv)

    # ------------------------------------------------------------ compute
    def snapshot(self) -> tuple[int, tuple[int, ...]]:
        """What a worker needs to compute the current prompt, taken on the UI thread."""
        return self.current.uid, tuple(self.current.ids)

    def trace_for(self, uid: int, ids: tuple[int, ...]) -> Trace:
        """The Trace of prompt ``uid``, synced to ``ids``. Holds the model lock."""
        with self.wrapper.lock:
            trace = self._traces.get(uid)
            if trace is None:
                trace = self._seed_trace(ids)
                self._traces[uid] = trace
            self._traces.move_to_end(uid)
            while len(self._traces) > self.config.display.cache_size:
                self._traces.popitem(last=False)
            if self.comparison is not None:
                self.comparison.sync(uid, trace, ids)  # steps model B over the same tokens
            else:
                trace.sync(ids)
            return trace

    def _seed_trace(self, ids: tuple[int, ...]) -> Trace:
        """Start a new trace from the cached one sharing the longest prefix (a duplicate costs no forward)."""
        best, best_len = None, 0
        for other in self._traces.values():
            n = 0
            for a, b in zip(other.ids, ids):
                if a != b:
                    break
                n += 1
            if n > best_len:
                best, best_len = other, n
        if best is None:
            return self.wrapper.new_trace()
        trace = best.clone()
        trace.sync(ids[:best_len])
        return trace

    # -------------------------------------------------------- interventions
    @property
    def interventions(self) -> tuple:
        """The interventions in force (enabled and disabled), as data."""
        return self._intervention_items

    def set_interventions(self, items) -> None:
        """Put ``items`` in force (an empty list switches them off).

        The hooks stay on the model, so generation, trees, beams and the decoding lab run on
        the intervened model too; every cached trace is dropped because its numbers were
        computed under the previous interventions. Bad items raise before anything changes.
        """
        from explorer.engine.interventions.hooks import InterventionHooks, require_hookable

        items = tuple(items)
        with self.wrapper.lock:
            hooks = None
            if any(i.enabled for i in items):
                require_hookable(self.wrapper.model)
                hooks = InterventionHooks(self.wrapper.model, items)
            if self._hooks is not None:
                self._hooks.remove()
            self._hooks = hooks.install() if hooks is not None else None
            self._intervention_items = items
            self._traces.clear()
            self._paired.clear()

    def _compute_paired(self, uid: int, ids: tuple[int, ...]) -> StepView:
        from dataclasses import replace

        from explorer.engine.interventions.paired import PairedTrace, build_effect

        paired = self._paired.get(uid)
        if paired is None or paired.hooks is not self._hooks:
            paired = PairedTrace(self.wrapper, self._hooks)
            self._paired[uid] = paired
        self._paired.move_to_end(uid)
        while len(self._paired) > self.config.display.cache_size:
            self._paired.popitem(last=False)
        paired.sync(ids)
        top = self.config.display.tokens_to_show
        view = self.wrapper.read_view(paired.intervened, top, uid=uid, notes=tuple(self.notes))
        return replace(view, effect=build_effect(paired, top))

    def compute(self, snapshot: tuple[int, tuple[int, ...]] | None = None) -> StepView:
        """Bring the prompt's trace up to date and read it. Safe to call from a worker thread.

        While interventions are on, baseline and intervened run as one batch of two and the
        view holds the intervened numbers plus ``effect`` (baseline, Δp, KL).
        """
        uid, ids = snapshot if snapshot is not None else self.snapshot()
        with self.wrapper.lock:
            if self._hooks is not None:
                return self._compute_paired(uid, ids)
            trace = self.trace_for(uid, ids)
            return self.wrapper.read_view(trace, self.config.display.tokens_to_show, uid=uid, notes=tuple(self.notes))

    def cached_trace(self, uid: int) -> Trace | None:
        return self._traces.get(uid)
