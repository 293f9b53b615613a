"""Saved prompts and the autosaved session: atomic, never overwriting, exact ids, clear errors."""

from __future__ import annotations

import json
import os
import stat

import pytest

from explorer.errors import InputError, PersistenceError
from explorer.io.atomic import atomic_write_text
from explorer.io.prompts import read_prompt_file, save_prompt
from explorer.io.session_store import Autosaver, autosave, load_saved_session


def test_save_prompt_writes_text_and_ids_and_never_overwrites(tmp_path):
    a = save_prompt("the cat", [4, 5], ["the", " cat"], "tiny", directory=tmp_path)
    b = save_prompt("the dog", [4, 9], ["the", " dog"], "tiny", directory=tmp_path)
    assert a != b and a.read_text() == "the cat" and b.read_text() == "the dog"
    record = json.loads(a.with_suffix(".json").read_text())
    assert record["token_ids"] == [4, 5] and record["schema_version"] == 1
    back = read_prompt_file(a.with_suffix(".json"))
    assert back.token_ids == [4, 5] and back.text == "the cat" and back.model == "tiny"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_save_into_read_only_directory_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(PersistenceError, match="Cannot write"):
            save_prompt("x", [1], ["x"], "tiny", directory=ro)
    finally:
        ro.chmod(stat.S_IRWXU)


def test_save_where_a_file_blocks_the_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    with pytest.raises(PersistenceError, match="Cannot write"):
        save_prompt("x", [1], ["x"], "tiny", directory=blocker / "sub")
    assert blocker.read_text() == "I am a file"


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "f.json"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert [x.name for x in tmp_path.iterdir()] == ["f.json"]  # no temporary left behind


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("DIR", "is a directory"),
    (b"\x00\x01\x02binary", "looks binary"),
    (b"caf\xe9 latin-1", "not UTF-8"),
    (b"   \n\t ", "is empty"),
])
def test_bad_input_files(tmp_path, content, message):
    p = tmp_path / "input.txt"
    if content == "DIR":
        p.mkdir()
    elif content is not None:
        p.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_prompt_file(p)


def test_session_round_trip_keeps_token_paths(tiny_session, tmp_path):
    s = tiny_session
    s.append(9)  # a path built token by token
    s.add_prompt()
    s.append(10)
    s.cursor_prev()
    path = autosave(s, tmp_path / "session.json")
    saved = load_saved_session(path)
    assert [p.ids for p in saved.prompts] == [e.ids for e in s.prompts]
    assert [p.original_ids for p in saved.prompts] == [e.original_ids for e in s.prompts]
    assert saved.index == 1 and saved.prompts[1].cursor == s.prompts[1].cursor


def test_damaged_session_file_is_a_clear_error(tmp_path):
    p = tmp_path / "session.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="damaged"):
        load_saved_session(p)
    with pytest.raises(InputError, match="no saved session"):
        load_saved_session(tmp_path / "missing.json")


def test_autosaver_writes_the_newest(tmp_path):
    saver = Autosaver(tmp_path / "s.json")
    for i in range(50):
        saver.submit(json.dumps({"i": i}))
    saver.flush()
    import time

    for _ in range(50):
        if json.loads((tmp_path / "s.json").read_text())["i"] == 49:
            break
        time.sleep(0.02)
    assert json.loads((tmp_path / "s.json").read_text())["i"] == 49
