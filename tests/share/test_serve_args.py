"""`serve` flags: the app command each browser tab runs, and bad input in one sentence (exit 2)."""

from __future__ import annotations

import shlex
import socket
import sys

from explorer.cli import main
from explorer.commands import serve


def _args(*argv):
    import argparse

    p = argparse.ArgumentParser()
    serve.add_arguments(p)
    return p.parse_args(list(argv))


def test_app_command_passes_the_app_flags(tmp_path):
    prompt = tmp_path / "my prompt.txt"
    cmd = shlex.split(serve.app_command(_args("--input", str(prompt), "--seed", "4", "--layer_prob", "--bf16")))
    assert cmd[:3] == [sys.executable, "-m", "explorer"]
    assert cmd[3:] == ["--input", str(prompt.resolve()), "--bf16", "--layer_prob", "--seed", "4"]


def test_bad_port_missing_input_and_taken_port(capsys, tmp_path):
    assert main(["serve", "--port", "70000"]) == 2
    assert "between 1 and 65535" in capsys.readouterr().err
    assert main(["serve", "--input", str(tmp_path / "nope.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"Cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
