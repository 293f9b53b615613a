"""Where training text comes from: local files split into windows, or the model's own seeded samples.

Both sources are deterministic and indexable: document ``i`` is always the same token
sequence, so a resumed run continues exactly where it stopped. Held-out documents come from
a disjoint part of the source (every 20th corpus window; a separate seed stream for samples).
Never imports Textual or Rich.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from explorer.errors import InputError

TEXT_SUFFIXES = {".txt", ".md", ".rst", ".text", ".markdown", ".org", ".tex", ".html", ".htm", ".xml",
                 ".json", ".jsonl", ".csv", ".py", ".toml", ".yaml", ".yml", ".ini", ".cfg", ""}
MAX_FILE_BYTES = 50 * 1024 * 1024
HELDOUT_EVERY = 20

# Openers for self-sampled text: varied registers so the activations are not all one genre.
OPENERS = [
    "Once upon a time", "The capital of France is", "def fibonacci(n):", "In 1969, the first",
    "Dear hiring manager,", "The recipe calls for", "Q: What is photosynthesis?\nA:", "The stock market",
    "import numpy as np\n", "The history of the Roman Empire", "My favourite book is", "Breaking news:",
    "The theorem states that", "Here is a list of", "She opened the door and", "To install the package, run",
    "The weather today", "In a small village", "The function returns", "Scientists have discovered",
    "1. Preheat the oven", "The meaning of life", "According to the report,", "Chapter 1\n\n",
]


def read_corpus_files(paths: list[str]) -> list[Path]:
    """Files named directly, plus text-like files under named folders (sorted, so the order is fixed)."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES
                                and not any(part.startswith(".") for part in f.relative_to(p).parts)))
        else:
            raise InputError(f"Corpus path {p} does not exist.")
    return files


class CorpusSource:
    """Windows of ``context`` tokens cut from local text files.

    Args:
        wrapper: the model wrapper (its tokenizer).
        paths: files and folders.
        context: tokens per window.
        seed: shuffles the window order.
    """

    kind = "corpus"

    def __init__(self, wrapper, paths: list[str], context: int, seed: int) -> None:
        files = read_corpus_files(paths)
        windows: list[list[int]] = []
        tok = wrapper.tokenizer
        for f in files:
            if f.stat().st_size > MAX_FILE_BYTES:
                continue
            try:
                text = f.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # binary or unreadable: not text
            if not text.strip():
                continue
            ids = tok(text, add_special_tokens=False)["input_ids"]
            windows.extend(ids[i:i + context] for i in range(0, len(ids) - context + 1, context))
        if not windows:
            raise InputError(f"The corpus ({', '.join(paths)}) holds no UTF-8 text of at least {context} tokens.")
        random.Random(seed).shuffle(windows)
        self.heldout = windows[::HELDOUT_EVERY]
        self.train = [w for i, w in enumerate(windows) if i % HELDOUT_EVERY]
        self.description = f"{len(files)} local file(s), {len(windows)} windows of {context} tokens"

    def train_doc(self, i: int) -> list[int] | None:
        """Training window i, or None once the corpus is used up."""
        return self.train[i] if i < len(self.train) else None

    def heldout_doc(self, i: int) -> list[int] | None:
        return self.heldout[i] if i < len(self.heldout) else None


class SampledSource:
    """Text the model writes itself: document i = an opener + ``context`` sampled tokens (T = 1,
    end-of-sequence suppressed so every document is full length), with a generator seeded
    by (seed, i), so the same command always trains on the same text.

    Args:
        wrapper: the model.
        context: tokens per document.
        seed: the run's seed.
        batch: documents sampled together (they share an opener, so no padding is needed).
    """

    kind = "sampled"

    def __init__(self, wrapper, context: int, seed: int, batch: int = 16) -> None:
        self.w, self.context, self.seed, self.batch = wrapper, context, seed, batch
        self._cache: dict[tuple[str, int], list[int]] = {}
        self.description = f"the model's own samples (seed {seed}, T = 1, {context} tokens each)"

    def _sample_group(self, stream: str, group: int) -> None:
        from transformers import DynamicCache

        opener = OPENERS[group % len(OPENERS)]
        prefix = self.w.tokenizer(opener, add_special_tokens=False)["input_ids"]
        salt = 0 if stream == "train" else 1_000_003
        gen = torch.Generator().manual_seed(self.seed * 7_919 + group + salt)
        ids = torch.tensor([prefix] * self.batch, dtype=torch.long, device=self.w.device)  # [B, p]
        out_tokens = []
        with self.w.lock, torch.no_grad():
            cache = DynamicCache()
            logits = self.w.model(input_ids=ids, past_key_values=cache, use_cache=True).logits[:, -1].float()
            n_new = max(1, self.context - len(prefix))
            for _ in range(n_new):
                for e in self.w.eos_ids:
                    logits[:, e] = float("-inf")
                probs = torch.softmax(logits.cpu(), dim=-1)  # [B, vocab]
                nxt = torch.multinomial(probs, 1, generator=gen)  # [B, 1]
                out_tokens.append(nxt)
                logits = self.w.model(input_ids=nxt.to(self.w.device), past_key_values=cache,
                                      use_cache=True).logits[:, -1].float()
        docs = torch.cat([ids.cpu()] + out_tokens, dim=1)[:, : self.context]  # [B, context]
        for b in range(self.batch):
            self._cache[(stream, group * self.batch + b)] = docs[b].tolist()

    def _doc(self, stream: str, i: int) -> list[int]:
        if (stream, i) not in self._cache:
            self._sample_group(stream, i // self.batch)
        return self._cache.pop((stream, i))

    def train_doc(self, i: int) -> list[int]:
        return self._doc("train", i)

    def heldout_doc(self, i: int) -> list[int]:
        return self._doc("heldout", i)
