"""`main.py logprobs`: the seed's JSONL (prob in percent), guided generation, seeded sampling, bad input."""

from __future__ import annotations

import json
import math

import pytest

from explorer.cli import main


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _check_record(rec: dict) -> None:
    assert {"prompt", "response", "data"} <= set(rec)
    assert isinstance(rec["prompt"], str) and isinstance(rec["response"], str)
    for entry in rec["data"]:
        assert {"token", "logprob", "prob", "other_tokens"} <= set(entry)
        assert entry["logprob"] <= 0
        assert entry["prob"] == pytest.approx(100 * math.exp(entry["logprob"]))  # percent
        for alt in entry["other_tokens"]:
            assert set(alt) == {"token", "logprob", "prob"}
            assert alt["prob"] == pytest.approx(100 * math.exp(alt["logprob"]))


@pytest.mark.integration
def test_greedy_record_and_append(tmp_path, capsys):
    out_file = tmp_path / "data.jsonl"
    argv = ["logprobs", "--prompt", "The capital of France is", "--max-new-tokens", "6", "--top", "4",
            "--out", str(out_file)]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    code, out2, _ = _run(argv, capsys)
    assert code == 0
    lines = out_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2  # appended, not replaced
    rec = json.loads(lines[0])
    _check_record(rec)
    assert rec["prompt"] == "The capital of France is" and "guided" not in rec
    assert len(rec["data"]) == 6 and all(len(e["other_tokens"]) == 4 for e in rec["data"])
    assert rec["data"][0]["token"] == " Paris" and rec["data"][0]["prob"] > 50
    assert rec["response"] == "".join(e["token"] for e in rec["data"])
    assert json.loads(lines[1])["response"] == rec["response"]  # greedy is deterministic
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["tokens"] == 6


@pytest.mark.integration
def test_guided_generation_starts_with_the_guide(tmp_path, capsys):
    out_file = tmp_path / "data.jsonl"
    code, out, err = _run(["logprobs", "--prompt", "Write a function that adds two numbers.", "--guide", "```python",
                           "--max-new-tokens", "8", "--out", str(out_file)], capsys)
    assert code == 0, err
    rec = json.loads(out_file.read_text(encoding="utf-8").splitlines()[0])
    _check_record(rec)
    assert rec["guided"] is True and rec["guide"] == "```python"
    assert rec["response"].startswith("```python")
    forced = [e for e in rec["data"] if e.get("forced")]
    assert "".join(e["token"] for e in forced) == "```python"
    assert len(rec["data"]) == len(forced) + 8


@pytest.mark.integration
def test_sampling_replays_with_its_seed(tmp_path, capsys):
    out_file = tmp_path / "data.jsonl"
    base = ["logprobs", "--prompt", "Once upon a time", "--max-new-tokens", "8", "--sample", "--out", str(out_file)]
    for seed in ("3", "3"):
        assert _run([*base, "--seed", seed], capsys)[0] == 0
    a, b = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert a["response"] == b["response"] and a["seed"] == 3 and a["sampled"] is True


@pytest.mark.integration
def test_chat_template(tmp_path, capsys):
    out_file = tmp_path / "data.jsonl"
    code, _, err = _run(["logprobs", "--prompt", "Say hello.", "--chat", "--max-new-tokens", "4",
                         "--out", str(out_file)], capsys)
    assert code == 0, err
    rec = json.loads(out_file.read_text(encoding="utf-8"))
    assert rec["chat"] is True and rec["prompt"] == "Say hello."


@pytest.mark.parametrize("flags, fragment", [
    (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--top", "0"], "--top"),
    (["--top", "50"], "--top"),
    (["--guide", " "], "--guide"),
])
def test_bad_flags_exit_2(tmp_path, capsys, flags, fragment):
    code, _, err = _run(["logprobs", "--prompt", "hi", "--out", str(tmp_path / "d.jsonl"), *flags], capsys)
    assert code == 2 and err.startswith("error: ") and fragment in err and len(err.strip().splitlines()) == 1


def test_empty_prompt_and_bad_out_exit_2(tmp_path, capsys):
    code, _, err = _run(["logprobs", "--prompt", "", "--out", str(tmp_path / "d.jsonl")], capsys)
    assert code == 2 and "empty" in err
    code, _, err = _run(["logprobs", "--prompt", "hi", "--out", str(tmp_path / "no" / "d.jsonl")], capsys)
    assert code == 2 and "does not exist" in err
