"""Commands: `next` prints the table the app shows; bad input is one sentence and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_llama, tiny_sp_tokenizer):
    """The tiny model saved in Hugging Face layout: exercises the local-directory source."""
    d = tmp_path_factory.mktemp("tiny-model")
    tiny_llama.save_pretrained(d)
    tiny_sp_tokenizer.save_pretrained(d)
    return d


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_next_json_matches_the_session(capsys, tiny_model_dir, tiny_llama, tiny_sp_tokenizer):
    import torch

    code, out, err = run_cli(capsys, "next", "--model", str(tiny_model_dir), "--prompt", "the cat sat",
                             "--top", "5", "--json")
    assert code == 0, err
    data = json.loads(out)
    ids = tiny_sp_tokenizer("the cat sat")["input_ids"]
    assert data["token_ids"] == ids
    with torch.no_grad():
        probs = tiny_llama(torch.tensor([ids])).logits[0, -1].softmax(-1)
    top = torch.topk(probs, 5)
    assert [c["id"] for c in data["candidates"]] == top.indices.tolist()
    for c, p in zip(data["candidates"], top.values.tolist()):
        assert c["prob"] == pytest.approx(p, rel=1e-5)
        assert set(c) >= {"token", "id", "prob", "logit", "zscore"}


def test_next_text_table(capsys, tiny_model_dir):
    code, out, _ = run_cli(capsys, "next", "--model", str(tiny_model_dir), "--prompt", "the cat", "--top", "3")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["rank", "token", "id"] and len(lines) == 5


def test_next_from_saved_json_keeps_ids(capsys, tiny_model_dir, tmp_path):
    from explorer.io.prompts import save_prompt

    # ids that re-tokenizing the text would not give back: "the" "cat" as one path
    path = save_prompt("the cat", [4, 5, 5], ["the", "cat", "cat"], "tiny-model", directory=tmp_path)
    code, out, err = run_cli(capsys, "next", "--model", str(tiny_model_dir), "--input",
                             str(path.with_suffix(".json")), "--json")
    assert code == 0, err
    # the model name differs (directory name vs "tiny-model"), so the text is re-tokenized
    assert json.loads(out)["token_ids"]


@pytest.mark.parametrize("argv, message", [
    (["next", "--prompt", "x", "--config", "/nonexistent.toml"], "does not exist"),
    (["next", "--input", "/nonexistent.txt"], "does not exist"),
    (["next", "--prompt", "   "], "empty"),
    (["next", "--prompt", "x", "--top", "0"], "--top"),
    (["next", "--prompt", "x", "--model", "/no/such/dir"], "does not exist"),
    (["next", "--prompt", "x", "--device", "tpu"], "Unknown device"),
    (["bogus"], "Unknown command"),
])
def test_bad_input_exit_2_one_sentence(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_config_values_exit_2(capsys, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[display]\ntokens_too_show = 3\n")
    code, _, err = run_cli(capsys, "next", "--prompt", "x", "--config", str(cfg))
    assert code == 2 and 'Did you mean "tokens_to_show"' in err


def test_unknown_hub_model_offline_names_bundled(capsys):
    code, _, err = run_cli(capsys, "next", "--prompt", "x", "--model", "someone/not-a-model")
    assert code == 2 and "bundled" in err


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    """The real entry point, as a user runs it."""
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"\x00\xff")
    for argv in (["main.py", "--input", str(bad)], ["main.py", "next", "--input", str(tmp_path)],
                 ["main.py", "--nope"]):
        out = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
        assert out.returncode == 2, (argv, out.stderr)
        assert out.stderr.startswith("error:") and "Traceback" not in out.stderr


def test_a_reader_that_goes_away_is_not_a_traceback():
    """`main.py config --show | head -0`: the closed pipe ends the command quietly (exit 141)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "main.py", "config", "--show"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command writes
    err = proc.stderr.read().decode(errors="replace")
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err
