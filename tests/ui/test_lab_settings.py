"""The lab's setting steps: readable values, and a step out of range refused with the range."""

from __future__ import annotations

import pytest

from explorer.engine.decoding.settings import DecodingSettings
from explorer.errors import InputError
from explorer.ui.features import lab_settings as ls

INDEX = {spec.name: i for i, spec in enumerate(ls.SETTINGS)}


def walk(name: str, direction: int, times: int, start: DecodingSettings | None = None) -> DecodingSettings:
    s = start or DecodingSettings()
    for _ in range(times):
        s = ls.stepped(s, INDEX[name], direction)
    return s


def test_every_field_of_the_lab_is_a_decoding_setting():
    fields = {"temperature", "top_k", "top_p", "min_p", "typical_p", "repetition_penalty", "epsilon", "eta"}
    assert set(INDEX) == fields
    assert all(len(spec.short) <= 12 for spec in ls.SETTINGS)


def test_steps_are_readable_and_reversible():
    assert [walk("temperature", +1, k).temperature for k in (1, 2, 3)] == [1.25, 1.56, 1.95]
    assert walk("temperature", -1, 1).temperature == 0.8
    assert [walk("top_k", +1, k).top_k for k in (1, 2, 3, 4, 5)] == [1, 2, 3, 5, 10]
    assert isinstance(walk("top_k", +1, 4).top_k, int)
    assert walk("top_p", -1, 2).top_p == 0.9
    assert walk("top_p", +1, 2, walk("top_p", -1, 2)).top_p == 1.0
    assert walk("repetition_penalty", +1, 1).repetition_penalty == 1.1


@pytest.mark.parametrize("name, direction, times, words", [
    ("top_k", -1, 1, "top-k must be a whole number of at least 0"),
    ("top_p", +1, 1, "top-p must be in (0, 1]"),
    ("top_p", -1, 20, "top-p must be in (0, 1]"),
    ("typical_p", +1, 1, "typical-p must be in (0, 1]"),
    ("min_p", -1, 1, "min-p must be in [0, 1]"),
    ("epsilon", +1, 10, "epsilon must be in [0, 1)"),
    ("eta", -1, 1, "eta must be in [0, 1)"),
    ("repetition_penalty", -1, 5, "repetition penalty must be greater than 0"),
    ("temperature", +1, 25, "temperature must be greater than 0 and at most 100"),
    ("temperature", -1, 25, "temperature is at its smallest step"),
])
def test_out_of_range_is_refused_with_the_range(name, direction, times, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        walk(name, direction, times)


def test_reset_and_bias_helpers():
    s = DecodingSettings(temperature=2.0, top_k=5).with_bias(7, 4.0).with_ban(9)
    assert ls.reset(s, INDEX["top_k"]).top_k == 0
    assert ls.reset(s, INDEX["top_k"]).temperature == 2.0
    assert ls.single_bias(s, 7) == 4.0 and ls.single_bias(s, 8) == 0.0
    assert ls.is_banned(s, 9) and not ls.is_banned(s, 7)
    assert ls.format_value(s, INDEX["top_p"]) == "1 (off)" and ls.format_value(s, INDEX["top_k"]) == "5"
