"""--out and every other writer: append in place, keep links and modes, refuse special files."""

from __future__ import annotations

import json
import os
import stat

import pytest

from explorer.errors import InputError, PersistenceError
from explorer.io.atomic import append_text, atomic_write_text, check_output_path
from explorer.io.exports import append_jsonl, check_writable, write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_append_keeps_inode_and_mode(tmp_path):
    target = tmp_path / "log.jsonl"
    target.write_text('{"a": 1}\n')
    os.chmod(target, 0o644)
    inode = os.stat(target).st_ino
    append_jsonl(target, {"b": 2})
    assert os.stat(target).st_ino == inode  # in place: an append is not a rename
    assert _mode(target) == 0o644
    assert [json.loads(line) for line in target.read_text().splitlines()] == [{"a": 1}, {"b": 2}]


def test_append_to_a_file_without_final_newline_starts_a_new_line(tmp_path):
    target = tmp_path / "log.jsonl"
    target.write_text('{"a": 1}')
    append_jsonl(target, {"b": 2})
    assert target.read_text() == '{"a": 1}\n{"b": 2}\n'


def test_symlink_is_followed_and_stays_a_link(tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_text('{"a": 1}\n')
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    append_jsonl(link, {"b": 2})
    assert link.is_symlink()
    assert real.read_text().splitlines()[-1] == '{"b": 2}'
    write_text(link, "{}")  # replacing through a link writes the target
    assert link.is_symlink() and real.read_text() == "{}"


def test_hard_links_survive_append_and_replace(tmp_path):
    a = tmp_path / "a.json"
    a.write_text("old")
    b = tmp_path / "b.json"
    os.link(a, b)
    write_text(a, "new")
    assert b.read_text() == "new" and os.stat(a).st_ino == os.stat(b).st_ino
    append_text(a, "more\n")
    assert b.read_text() == "new\nmore\n"


def test_replace_keeps_mode_and_new_file_follows_umask(tmp_path):
    old = tmp_path / "old.json"
    old.write_text("x")
    os.chmod(old, 0o640)
    write_text(old, "y")
    assert _mode(old) == 0o640
    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.json", "z")
    finally:
        os.umask(mask)
    assert _mode(tmp_path / "new.json") == 0o644  # not mkstemp's 0600


def test_fifo_and_device_are_refused_with_one_sentence(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for bad in (fifo, "/dev/null"):
        with pytest.raises(InputError, match="not a regular file"):
            check_writable(bad)
        with pytest.raises(PersistenceError, match="not a regular file"):
            atomic_write_text(bad, "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_dash_is_standard_output(tmp_path, capsys):
    assert check_output_path("-") is None
    assert str(check_writable("-")) == "-"
    append_jsonl("-", {"a": 1})
    write_text("-", "tree\n")
    assert capsys.readouterr().out == '{"a": 1}\ntree\n'
    assert list(tmp_path.iterdir()) == []


def test_directory_and_missing_parent_are_refused(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        check_writable(tmp_path / "no" / "x.json")
