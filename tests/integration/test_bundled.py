"""What only a real model shows, on the bundled SmolLM2-135M-Instruct (offline, real weights)."""

from __future__ import annotations

import pytest
import torch

from explorer.engine.trace import Trace

pytestmark = pytest.mark.integration  # every test here loads the bundled model


def test_paris_is_the_top_token(bundled_wrapper, test_config):
    from explorer.engine.session import Session

    s = Session(bundled_wrapper, test_config, prompts=[bundled_wrapper.encode("The capital of France is")])
    view = s.compute()
    assert view.candidates[0].text.text == " Paris"
    assert 0.5 < view.candidates[0].prob < 1.0


def test_incremental_equals_full_pass_on_the_real_model(bundled_wrapper):
    w = bundled_wrapper
    ids = w.encode("Once upon a time, there was a little girl who lived in a village near the forest.")
    trace = Trace(w)
    trace.extend(ids[:4])
    for t in ids[4:]:
        trace.extend([t])
    with torch.no_grad():
        ref = w.model(torch.tensor([ids])).logits[0].float()
    assert torch.allclose(trace.last_row(), ref[-1], atol=1e-3)
    lse = torch.logsumexp(ref, -1)
    for i in range(1, len(ids)):
        assert trace.actual_logp(i) == pytest.approx(float(ref[i - 1, ids[i]] - lse[i - 1]), abs=1e-3)
    trace.truncate(6)
    assert torch.allclose(trace.last_row(), ref[5], atol=1e-3)


def test_converted_weights_equal_the_gguf_dequantized_weights(bundled_wrapper):
    """The cache holds exactly what transformers dequantizes from the GGUF (no second rounding)."""
    from transformers import AutoModelForCausalLM

    from explorer.engine.loading import bundled_gguf_path

    gguf = bundled_gguf_path()
    direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    ours = dict(bundled_wrapper.model.named_parameters())
    for name, param in direct.named_parameters():
        assert torch.equal(param.detach().cpu(), ours[name].detach().cpu()), name


def test_special_and_whitespace_tokens_render(bundled_wrapper):
    w = bundled_wrapper
    assert w.token_text(w.tokenizer.eos_token_id).kind == "special"
    ids = w.encode("a\n\tb")
    assert "".join(w.token_text(i).text for i in ids) == "a\n\tb"
    euro = w.encode("€")
    text = "".join(w.token_text(i).text for i in euro)
    assert text == "€" or "<0x" in text


def test_escape_sequences_in_a_prompt_are_shown_as_text(bundled_wrapper):
    ids = bundled_wrapper.encode("red \x1b[31malert\x1b[0m and [/b] markup")
    shown = "".join(bundled_wrapper.token_text(i).text for i in ids)
    assert "\x1b" not in shown and "\\x1b[31m" in shown and "[/b]" in shown
