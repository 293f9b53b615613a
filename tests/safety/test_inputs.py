"""Bad inputs end with one sentence and exit 2: surrogates, huge seeds, /dev/zero, FIFOs, pipes read once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from explorer.cli import main
from explorer.config import load_config
from explorer.errors import ConfigError, InputError
from explorer import inputs as reading
from explorer.io.prompts import read_prompt_file

SURROGATE = "caf\udce9"  # what Python makes of the argv bytes b"caf\xe9"


def _one_sentence(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv", [
    ["next", "--prompt", SURROGATE],
    ["logprobs", "--prompt", "the cat", "--guide", SURROGATE, "--out", "x.jsonl"],
    ["next", "--prompt", "the cat", "--regex", SURROGATE],
    ["--seed", "99999999999999999999999"],
    ["next", "--prompt", "the cat", "--sample", "--seed", "99999999999999999999999"],
    ["next", "--input", "/dev/zero"],
    ["next", "--prompt", "x", "--config", "/dev/zero"],
])
def test_refused_before_the_model_loads(argv, capsys):
    assert main(argv) == 2
    err = _one_sentence(capsys)
    assert any(s in err for s in ("not UTF-8", "--seed must be", "limit"))


def test_dev_zero_names_the_limit():
    with pytest.raises(InputError, match="16 MB limit"):
        read_prompt_file("/dev/zero")
    with pytest.raises(ConfigError, match="1 MB limit"):
        load_config("/dev/zero")


def test_a_fifo_nobody_writes_to_does_not_hang(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "PIPE_IDLE_SECONDS", 0.3)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(InputError, match="Nothing arrived"):
        read_prompt_file(fifo)
    assert time.monotonic() - t0 < 5


def test_a_fifo_with_a_writer_is_read_once(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w") as fh:
            fh.write("the cat sat")

    threading.Thread(target=write, daemon=True).start()
    assert read_prompt_file(fifo).text == "the cat sat"


def test_process_substitution_and_dev_stdin_are_read_once(tmp_path):
    """A pipe can be read only once: the early check and the prompt must share one read."""
    code = ("import sys; from explorer.commands.common import check_input_early, prompt_file_from_args;"
            "import argparse; a = argparse.Namespace(input=sys.argv[1], prompt=None);"
            "check_input_early(a); print(prompt_file_from_args(a).text)")
    for path in ("/dev/stdin", "-"):
        out = subprocess.run([sys.executable, "-c", code, path], input="the cat sat", capture_output=True,
                             text=True, timeout=60, cwd=os.getcwd())
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "the cat sat"
    bash = subprocess.run(["bash", "-c", f'{sys.executable} -c "$0" <(printf "a dog ran")', code],
                          capture_output=True, text=True, timeout=60)
    assert bash.returncode == 0, bash.stderr
    assert bash.stdout.strip() == "a dog ran"
