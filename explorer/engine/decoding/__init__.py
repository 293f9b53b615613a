"""Decoding: everything between a next-token logits row and the token that is chosen.

Modules:

* ``settings``: ``DecodingSettings``, declared once (fields, ranges, flags, UI steps); no torch.
* ``pipeline``: transformers' logits processors applied stage by stage (the lab), and the
  ``SeededSampler``.
* ``generate``: the one generation loop (greedy, sampled, lab settings, regex-constrained,
  guided), the JSONL log-prob record.
* ``constraint``: regex constraints through llguidance.
* ``beam``: beam search with every step recorded.

This package's ``__init__`` imports nothing, so the UI can read ``settings`` without torch.
Never imports Textual or Rich.
"""
