"""Regex-constrained stepping with llguidance: which tokens keep the text a possible match.

llguidance (Microsoft's constrained-decoding engine, a Rust extension with a Python API) takes
the model's tokenizer and a regex and answers, token by token, the set of tokens that keep
the text a prefix of a match, whether the text is already a full match, and whether it can
grow at all. We use it instead of compiling regexes to token automata by hand.

Costs (SmolLM2, 49k tokens, 2 CPU cores): building llguidance's tokenizer ~2 s once per
model; compiling a regex ~10-30 ms; one mask ~1 ms. Neither the tokenizer nor a compiled
matcher can be serialised (llguidance 1.x has no such API), so both are cached in memory
(per model, and an LRU of regexes); only the cheap grammar text could go to disk, which
would save nothing. ``compile_regex`` blocks: the UI calls it in a worker.

The regex is matched against the text generated since the constraint started, as bytes
(``\\d`` is Unicode-aware in llguidance's regex dialect; write ``[0-9]`` for ASCII digits).
Never imports Textual or Rich.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from explorer.errors import InputError

if TYPE_CHECKING:
    from explorer.engine.model import ModelWrapper

_REGEX_CACHE_SIZE = 32
_lock = threading.Lock()
_tokenizers: dict[int, tuple[object, object, str | None]] = {}  # id(hf tokenizer) -> (tokenizer, LLTokenizer, note)
_compiled: OrderedDict[tuple[int, str], "CompiledRegex"] = OrderedDict()


class _VocabStrings:
    """The minimal tokenizer llguidance's TokenizerWrapper needs, for tokenizers without a byte decoder.

    Word-level tokenizers (the test tokenizer) have no decoder llguidance recognises; there a
    token's bytes are its vocabulary string, and the constrained text is the tokens' strings
    concatenated.
    """

    def __init__(self, tok, n_vocab: int) -> None:
        self._tok = tok
        self.eos_token_id = tok.eos_token_id
        self.bos_token_id = tok.bos_token_id
        special = set(getattr(tok, "all_special_ids", []) or [])
        self.special_token_ids = sorted(special)
        names = tok.convert_ids_to_tokens(list(range(n_vocab)))
        # llguidance marks special tokens with a leading 0xFF byte (they never match text).
        self.tokens = [(b"\xff" if i in special else b"") + (n or "").encode("utf-8") for i, n in enumerate(names)]

        self._by_bytes = {b: i for i, b in enumerate(self.tokens) if b and not b.startswith(b"\xff")}
        self._longest = max((len(b) for b in self._by_bytes), default=1)

    def __call__(self, text) -> list[int]:
        """Greedy longest-match over the vocabulary strings; stops at text no token spells.

        (The tokenizer's own encode maps unknown text to <unk>, which llguidance would then
        take for those bytes.)
        """
        data = text if isinstance(text, bytes) else str(text).encode("utf-8")
        out, i = [], 0
        while i < len(data):
            for j in range(min(len(data), i + self._longest), i, -1):
                tid = self._by_bytes.get(data[i:j])
                if tid is not None:
                    out.append(tid)
                    i = j
                    break
            else:
                break
        return out


def llg_tokenizer(wrapper: "ModelWrapper"):
    """llguidance's tokenizer for the wrapper's tokenizer, built once per tokenizer (~2 s for 49k tokens).

    Returns:
        (LLTokenizer, note) where note says when the fallback for tokenizers without a byte-level
        decoder was used (None otherwise).
    """
    import llguidance
    import llguidance.hf

    tok = wrapper.tokenizer
    with _lock:
        hit = _tokenizers.get(id(tok))
        if hit is not None and hit[0] is tok:
            return hit[1], hit[2]
    note = None
    try:
        llt = llguidance.hf.from_tokenizer(tok, n_vocab=wrapper.vocab_size)
    except ValueError as exc:
        if "decoder" not in str(exc):
            raise InputError(f"llguidance cannot read this model's tokenizer: {exc}.") from None
        n_vocab = min(wrapper.vocab_size, len(tok))
        llt = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_VocabStrings(tok, n_vocab)), n_vocab=wrapper.vocab_size)
        note = "This tokenizer has no byte-level decoder; tokens are matched by their vocabulary strings, concatenated."
    with _lock:
        _tokenizers[id(tok)] = (tok, llt, note)
    return llt, note


def _one_sentence(message: str) -> str:
    """llguidance's multi-line parse error -> its 'error: ...' line."""
    found = re.search(r"^error: (.+)$", message, flags=re.MULTILINE)
    if found:
        return found.group(1).strip().rstrip(".")
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return first.strip().rstrip(".")


@dataclass
class CompiledRegex:
    """A regex compiled against one model's vocabulary. Immutable once built; share it freely."""

    regex: str
    grammar: str
    vocab_size: int
    note: str | None
    _llt: object
    _start: object  # an LLMatcher at the start; trackers deep-copy it

    def new_tracker(self) -> "ConstraintTracker":
        return ConstraintTracker(self)


def compile_regex(wrapper: "ModelWrapper", regex: str) -> CompiledRegex:
    """Compile ``regex`` for the wrapper's vocabulary (blocking: call it from a worker).

    Raises:
        InputError: the regex is empty or invalid, or no token of the model can start a match.
    """
    import llguidance

    if not isinstance(regex, str) or not regex.strip():
        raise InputError("The regex is empty; type a pattern such as [0-9]{4}-[0-9]{2}-[0-9]{2}.")
    regex = regex.strip("\n")
    key = (id(wrapper.tokenizer), regex)
    with _lock:
        hit = _compiled.get(key)
        if hit is not None:
            _compiled.move_to_end(key)
            return hit
    llt, note = llg_tokenizer(wrapper)
    grammar = llguidance.LLMatcher.grammar_from_regex(regex)
    problem = llguidance.LLMatcher.validate_grammar(grammar, llt)
    if problem and not problem.startswith("WARNING"):
        raise InputError(f'The regex "{regex}" is not valid: {_one_sentence(problem)}.')
    matcher = llguidance.LLMatcher(llt, grammar, log_level=0)
    if matcher.is_error():
        raise InputError(f'The regex "{regex}" is not valid: {_one_sentence(matcher.get_error())}.')
    compiled = CompiledRegex(regex, grammar, wrapper.vocab_size, note, llt, matcher)
    first = ConstraintTracker(compiled).step([])
    if first.accepting and first.finished:
        raise InputError(f'The regex "{regex}" only matches empty text, so there is nothing to constrain.')
    if first.n_allowed == 0 or (first.n_allowed == 1 and first.eos_only):
        raise InputError(f'No token of this model can start a match of the regex "{regex}".')
    with _lock:
        _compiled[key] = compiled
        while len(_compiled) > _REGEX_CACHE_SIZE:
            _compiled.popitem(last=False)
    return compiled


@dataclass(frozen=True)
class ConstraintState:
    """What the constraint allows next, after the ids generated so far."""

    allowed: torch.Tensor | None
    """bool ``[vocab]``: tokens that keep the text a possible match (EOS included once it matches). None on error."""
    accepting: bool
    """The text so far is a complete match (it may still be able to grow)."""
    finished: bool
    """The match is complete and cannot grow: the constraint is released."""
    error: str | None = None
    """One sentence when the ids already broke the constraint (e.g. a token typed by hand)."""
    eos_only: bool = False

    @property
    def n_allowed(self) -> int:
        return 0 if self.allowed is None else int(self.allowed.sum())

    def allowed_ids(self) -> list[int]:
        return [] if self.allowed is None else torch.nonzero(self.allowed).flatten().tolist()


class ConstraintTracker:
    """Follows one generated sequence under a compiled regex, incrementally.

    ``step(ids)`` takes all ids generated since the constraint started; when they extend the
    previous call's ids only the new ones are consumed, and a shorter list rolls the matcher
    back (a pop), so stepping costs one mask computation per token. Not thread-safe: one per worker.
    """

    def __init__(self, compiled: CompiledRegex) -> None:
        self.compiled = compiled
        self._matcher = compiled._start.deep_copy()
        self._ids: list[int] = []

    def _sync(self, ids: list[int]) -> str | None:
        common = 0
        for a, b in zip(self._ids, ids):
            if a != b:
                break
            common += 1
        if self._matcher.is_error() or common < len(self._ids):
            # A pop rolls back; a matcher in its error state cannot, so it restarts and replays.
            if self._matcher.is_error() or not self._matcher.rollback(len(self._ids) - common):
                self._matcher = self.compiled._start.deep_copy()
                self._ids, common = [], 0
            else:
                del self._ids[common:]
        m = self._matcher
        for t in ids[common:]:
            if not m.consume_token(int(t)):
                self._ids.append(int(t))
                text = self.compiled._llt.decode_str([int(t)])
                return (f'Token {len(self._ids)} ("{text}") does not fit the regex '
                        f'"{self.compiled.regex}"; remove it or release the constraint.')
            self._ids.append(int(t))
        return None

    def step(self, generated_ids: Sequence[int]) -> ConstraintState:
        """The allowed-token mask for the next step after ``generated_ids``.

        Args:
            generated_ids: every token generated since the constraint started.
        """
        import numpy as np

        error = self._sync([int(t) for t in generated_ids])
        m = self._matcher
        if error is not None:
            return ConstraintState(None, False, False, error)
        accepting = bool(m.is_accepting())
        finished = bool(m.is_stopped())
        bits = np.unpackbits(np.frombuffer(m.compute_bitmask(), dtype=np.uint8), bitorder="little")
        vocab = self.compiled.vocab_size
        mask = np.zeros(vocab, dtype=bool)
        n = min(vocab, bits.shape[0])
        mask[:n] = bits[:n].astype(bool)
        allowed = torch.from_numpy(mask)  # [vocab] bool
        eos = set(getattr(self.compiled._llt, "eos_tokens", []) or [])
        n_allowed = int(allowed.sum())
        eos_only = 0 < n_allowed <= len(eos) and set(torch.nonzero(allowed).flatten().tolist()) <= eos
        return ConstraintState(allowed, accepting, finished, None, eos_only)


MAX_REGEX_FILE_BYTES = 1 << 20


def read_regex_file(path: str | Path) -> str:
    """The regex in a file (e.g. prompts/date.regex): its first non-empty line that is not a # comment."""
    from explorer.inputs import read_input_text

    p = Path(path)
    if not p.exists():
        raise InputError(f"No regex file at {p}.")
    # Read once and bounded: a FIFO or /dev/zero named as a regex file must not hang the app.
    text = read_input_text(p, "Regex file", MAX_REGEX_FILE_BYTES)
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.rstrip("\r")
    raise InputError(f"The regex file {p} holds no pattern.")
