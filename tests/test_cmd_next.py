"""`next` with decoding-lab flags and `beam`: JSON fields, agreement with the engine, exit 2 on bad input.

The commands load a model by name, so the tiny model is saved once as a local HF directory.
"""

from __future__ import annotations

import json

import pytest
import torch

from explorer.cli import main

PROMPT = "once upon a time there was a big dog"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tiny_llama, tiny_tokenizer):
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_llama.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_next_keeps_its_plain_output(capsys, tiny_dir):
    out = run_json(capsys, ["next", "--model", tiny_dir, "--device", "cpu", "--prompt", PROMPT, "--top", "5", "--json"])
    assert "decoding" not in out
    assert set(out["candidates"][0]) == {"rank", "token", "id", "prob", "logprob", "logit", "zscore", "special"}


def test_next_json_has_raw_processed_and_removed_by(capsys, tiny_dir, tiny_llama, tiny_tokenizer):
    out = run_json(capsys, ["next", "--model", tiny_dir, "--device", "cpu", "--prompt", PROMPT, "--top", "50",
                            "--temperature", "0.7", "--top-k", "10", "--ban", "id:6", "--bias", "dog=2.5", "--json"])
    cands = out["candidates"]
    assert len(cands) == 50
    kept = [c for c in cands if c["removed_by"] is None]
    assert len(kept) == 10 == out["decoding"]["survivors"]
    assert {c["removed_by"] for c in cands} == {None, "top_k", "ban"}
    assert next(c for c in cands if c["id"] == 6)["removed_by"] == "ban"
    assert sum(c["processed_prob"] for c in cands) == pytest.approx(1.0, abs=1e-5)
    assert all(c["raw_prob"] == pytest.approx(c["prob"]) for c in cands)
    assert [s["name"] for s in out["decoding"]["stages"]] == ["sequence_bias", "ban", "temperature", "top_k"]
    # the same numbers as generate() for these settings
    ids = out["token_ids"]
    x = torch.tensor([ids])
    ref = tiny_llama.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=1, do_sample=True, temperature=0.7,
                              top_k=10, bad_words_ids=[[6]], sequence_bias=[[[tiny_tokenizer.convert_tokens_to_ids("dog")], 2.5]],
                              output_scores=True, return_dict_in_generate=True, pad_token_id=3).scores[0][0].softmax(-1)
    for c in cands:
        assert c["processed_prob"] == pytest.approx(float(ref[c["id"]]), abs=1e-6)


def test_next_regex_limits_to_digits(capsys, tiny_dir):
    out = run_json(capsys, ["next", "--model", tiny_dir, "--device", "cpu", "--prompt", PROMPT, "--top", "50",
                            "--regex-file", "prompts/date.regex", "--sample", "--seed", "3", "--json"])
    alive = {c["token"] for c in out["candidates"] if c["processed_prob"] > 0}
    assert alive == {str(d) for d in range(10)}
    assert out["decoding"]["regex"]["allowed"] == 10
    assert out["decoding"]["sampled"]["token"] in alive


def test_next_text_table_shows_stages(capsys, tiny_dir):
    assert main(["next", "--model", tiny_dir, "--device", "cpu", "--prompt", PROMPT, "--top-p", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "processed" in text and "top_p" in text and "TopPLogitsWarper" in text


@pytest.mark.parametrize("flags, words", [
    (["--temperature", "0"], "temperature must be greater than 0"),
    (["--top-p", "1.5"], "top-p must be in (0, 1]"),
    (["--top-k", "-3"], "top-k must be a whole number of at least 0"),
    (["--min-p", "2"], "min-p must be in [0, 1]"),
    (["--typical-p", "0"], "typical-p must be in (0, 1]"),
    (["--repetition-penalty", "-1"], "repetition penalty must be greater than 0"),
    (["--epsilon", "1"], "epsilon must be in [0, 1)"),
    (["--eta", "5"], "eta must be in [0, 1)"),
    (["--bias", "dog"], "--bias needs TOKEN=VALUE"),
    (["--bias", "dog=lots"], "not a number"),
    (["--temperature", "nan"], "finite"),
])
def test_bad_settings_exit_2_with_the_range(capsys, flags, words):
    # The model is never loaded: the settings are checked first.
    assert main(["next", "--model", "/nonexistent", "--prompt", PROMPT, *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_bad_regex_exit_2(capsys, tiny_dir):
    assert main(["next", "--model", tiny_dir, "--device", "cpu", "--prompt", PROMPT, "--regex", "("]) == 2
    assert "not valid: unclosed group" in capsys.readouterr().err


def test_beam_command_json(capsys, tiny_dir):
    out = run_json(capsys, ["beam", "--model", tiny_dir, "--device", "cpu", "--prompt", PROMPT, "--num-beams", "3",
                            "--max-new-tokens", "4", "--json"])
    assert len(out["steps"]) == 4
    assert out["winner"] == out["finished"][0]
    assert out["winner_text"].startswith(out["prompt"])
    assert {"tokens", "token_logprobs", "cum_logprob", "score", "status"} <= set(out["steps"][0]["candidates"][0])


def test_beam_bad_input_exit_2(capsys):
    assert main(["beam", "--model", "/nonexistent", "--prompt", PROMPT, "--num-beams", "100"]) == 2
    assert "num_beams must be a whole number from 1 to 64" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["beam", "--prompt", PROMPT, "--early-stopping", "maybe"])  # argparse's own error path
    assert exit_.value.code == 2
    assert "must be true, false or never" in capsys.readouterr().err
