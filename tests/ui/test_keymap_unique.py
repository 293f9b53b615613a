"""Every key does one thing: no two entries of the key map share a key (features are added in parallel)."""

from __future__ import annotations

from collections import Counter

from explorer.ui.keymap import KEYMAP


def test_no_key_is_bound_twice():
    counts = Counter(key for spec in KEYMAP for key in spec.keys.split(","))
    assert [key for key, n in counts.items() if n > 1] == []
