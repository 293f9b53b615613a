"""Guided generation's tokenization: which one is scored when a token crosses the blank line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from explorer.engine.guided import guided_input
from explorer.errors import InputError

VOCAB = ["<unk>", "hello", "world", "go", "\n", "\n\n", "\n\n\n", " go"]


@pytest.fixture(scope="module")
def newline_wrapper():
    """A word-level tokenizer that has one token for a run of two or three newlines (as BPE merges do)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\n+| ?[a-z]+"), behavior="isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    return SimpleNamespace(tokenizer=fast, encode=lambda text: list(fast(text, add_special_tokens=True)["input_ids"]))


def test_no_merge_forces_the_tokenizers_own_guide(newline_wrapper):
    got = guided_input(newline_wrapper, "hello", "go")
    assert got.context == [1, 5] and got.forced == [3]
    assert got.tokenization == "joint" and got.join_merges is False


def test_a_merge_across_the_blank_line_is_recorded(newline_wrapper):
    # "hello\n\n" + "\ngo": the joined text has one "\n\n\n" token where the parts have "\n\n" and "\n".
    separate = guided_input(newline_wrapper, "hello", "\ngo")
    assert separate.context == [1, 5] and separate.forced == [4, 3]
    assert separate.tokenization == "separate" and separate.join_merges is True
    joint = guided_input(newline_wrapper, "hello", "\ngo", tokenization="joint")
    assert joint.context == [1] and joint.forced == [6, 3]  # the tokenizer's own split of "hello\n\n\ngo"
    assert joint.tokenization == "joint" and joint.join_merges is True
    fields = joint.record_fields(lambda ids: "".join(VOCAB[i] for i in ids))
    assert fields == {"guide_tokenization": "joint", "guide_join_merges": True, "forced_text": "\n\n\ngo"}
    with pytest.raises(InputError):
        guided_input(newline_wrapper, "hello", "go", tokenization="both")


@pytest.mark.integration
def test_bundled_tokenizer_splits_the_blank_line_before_a_word(bundled_wrapper):
    """SmolLM2 has one "\\n\\n" token at the end of a text but two "\\n" before a word: every plain guide merges."""
    w = bundled_wrapper
    separate = guided_input(w, "Write a haiku", "Autumn")
    joint = guided_input(w, "Write a haiku", "Autumn", tokenization="joint")
    assert separate.join_merges and joint.join_merges
    assert separate.context == w.encode("Write a haiku\n\n") and separate.forced == w.encode("Autumn")
    assert joint.context + joint.forced == w.encode("Write a haiku\n\nAutumn")
    assert w.decode(joint.forced) == "\n\nAutumn" and w.decode(joint.context) == "Write a haiku"
