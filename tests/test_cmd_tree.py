"""`main.py tree`: the notebook's JSON, ranked paths, the stats line, bad input, Ctrl+C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main
from tests.engine.tree_compare import NODE_FIELDS

REPO = Path(__file__).resolve().parents[1]


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration
def test_tree_writes_the_notebook_json(tmp_path, capsys):
    out_file = tmp_path / "tree.json"
    code, out, err = _run(["tree", "--prompt", "The capital of France is", "--max-depth", "5",
                           "--soft-queue-limit", "8", "--out", str(out_file)], capsys)
    assert code == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert set(stats) == {"nodes", "forward_passes", "completed_paths", "seconds"}
    assert stats["nodes"] > 5 and stats["forward_passes"] <= 1 + 5  # prompt pass + one per level
    data = json.loads(out_file.read_text(encoding="utf-8"))
    assert data["metadata"]["prompt"] == "The capital of France is"
    assert data["metadata"]["parameters"] == {
        "min_branch_threshold": 0.1, "max_branch_threshold": 0.5, "soft_queue_limit": 8,
        "candidate_threshold": 0.01, "max_depth": 5, "max_completed_paths": 5}
    assert data["metadata"]["incomplete"] is False
    count, stack = 0, [data["tree"]]
    while stack:
        node = stack.pop()
        count += 1
        assert set(NODE_FIELDS) <= set(node)
        stack.extend(node["children"])
    assert count == stats["nodes"]
    assert " Paris" in [c["text"] for c in data["tree"]["candidates"]]
    ranked = [line for line in out.splitlines() if line[:1].isdigit() and ". " in line[:5]]
    probs = [float(line.split()[1].rstrip("%")) for line in ranked]
    assert probs == sorted(probs, reverse=True) and len(probs) >= 1
    assert "tree:" in err  # progress on stderr


@pytest.mark.integration
def test_eos_ids_override_ends_paths(tmp_path, capsys):
    # " Paris" (7042) as end-of-sequence: the first level already completes a path.
    out_file = tmp_path / "tree.json"
    code, out, err = _run(["tree", "--prompt", "The capital of France is", "--max-depth", "3",
                           "--eos-ids", "7042", "--max-completed-paths", "1", "--out", str(out_file)], capsys)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["completed_paths"] == 1
    data = json.loads(out_file.read_text(encoding="utf-8"))
    assert data["metadata"]["eos_ids"] == [7042]
    paris = [c for c in data["tree"]["children"] if c["token_id"] == 7042]
    assert paris and paris[0]["is_finished"] and paris[0]["children"] == []


@pytest.mark.parametrize("flags, fragment", [
    (["--min-branch-threshold", "1.5"], "between 0 and 1"),
    (["--max-branch-threshold", "-0.2"], "between 0 and 1"),
    (["--candidate-threshold", "3"], "between 0 and 1"),
    (["--min-branch-threshold", "0.6", "--max-branch-threshold", "0.5"], "must not be above"),
    (["--soft-queue-limit", "0"], "positive"),
    (["--max-depth", "-3"], "positive"),
    (["--max-completed-paths", "0"], "positive"),
    (["--eos-ids", "2,x"], "--eos-ids"),
    (["--max-memory", "0"], "--max-memory"),
])
def test_bad_flags_exit_2_with_one_sentence(tmp_path, capsys, flags, fragment):
    code, out, err = _run(["tree", "--prompt", "hi", "--out", str(tmp_path / "t.json"), *flags], capsys)
    assert code == 2
    assert err.startswith("error: ") and fragment in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.json").exists()


def test_empty_prompt_and_unwritable_out_exit_2(tmp_path, capsys):
    code, _, err = _run(["tree", "--prompt", "  ", "--out", str(tmp_path / "t.json")], capsys)
    assert code == 2 and "empty" in err
    code, _, err = _run(["tree", "--prompt", "hi", "--out", str(tmp_path / "missing" / "t.json")], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = _run(["tree", "--prompt", "hi", "--out", str(tmp_path)], capsys)
    assert code == 2 and "directory" in err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root can write anywhere; the check is moot then
            code, _, err = _run(["tree", "--prompt", "hi", "--out", str(locked / "t.json")], capsys)
            assert code == 2 and "not writable" in err
    finally:
        locked.chmod(0o700)


@pytest.mark.integration
def test_ctrl_c_writes_the_partial_tree(tmp_path):
    out_file = tmp_path / "tree.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "main.py", "tree", "--prompt", "Once upon a time", "--max-depth", "1000",
         "--max-completed-paths", "1000", "--min-branch-threshold", "0.05", "--out", str(out_file)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stderr:  # wait until the build has started
            if line.startswith("tree:"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    data = json.loads(out_file.read_text(encoding="utf-8"))
    assert data["metadata"]["incomplete"] is True and data["metadata"]["stop_reason"] == "cancelled"
    assert json.loads(out.strip().splitlines()[-1])["nodes"] >= 1
