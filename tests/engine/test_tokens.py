"""Tokens are shown faithfully: whitespace visible, specials marked, partial UTF-8 as bytes."""

from __future__ import annotations

from explorer.engine.tokens import TokenRenderer, safe_for_display, visible_whitespace


def test_visible_whitespace_and_controls():
    assert visible_whitespace(" a\n\tb\x1b") == "␣a↵⇥b\\x1b"
    assert safe_for_display("a\x1b[31mred\n") == "a\\x1b[31mred\n"


def test_special_tokens_are_marked(tiny_tokenizer):
    r = TokenRenderer(tiny_tokenizer)
    assert r(1).kind == "special" and r(1).text == "<bos>"
    assert r(4).kind == "normal"


def test_byte_level_bpe_partial_utf8_is_bytes():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from explorer.engine.tokens import _byte_level_decoder

    enc = {v: k for k, v in _byte_level_decoder().items()}  # byte -> unicode char
    euro = "€".encode()  # 3 bytes
    vocab = {"<eos>": 0, "Ġhello": 1, enc[euro[0]] + enc[euro[1]]: 2, enc[euro[2]]: 3, "Ċ": 4}
    for b in range(256):
        vocab.setdefault(enc[b], len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")
    r = TokenRenderer(hf)
    assert r(1).text == " hello" and r(1).kind == "normal"
    assert r(2).kind == "bytes" and r(2).text == "<0xE2><0x82>"
    assert r(3).text == "<0xAC>"
    assert r(4).text == "\n"
