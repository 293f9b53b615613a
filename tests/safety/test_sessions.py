"""Sessions: every one kept, one file per instance, --resume newest/NAME/list, damaged files set aside."""

from __future__ import annotations

import json
import os
import time

import pytest

from explorer.cli import main
from explorer.errors import InputError
from explorer.io.session_store import (Autosaver, autosave, find_session, list_sessions, load_saved_session,
                                       resume, session_from_json)
from explorer.paths import sessions_dir

GOOD = {"schema_version": 1, "model": "m", "index": 0, "mode": "plain", "seed": 3,
        "prompts": [{"ids": [1, 2, 3], "original_ids": [1, 2], "cursor": 1, "text": "a b c"}]}


def _write(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def _wait_for(predicate, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.01)
    assert predicate()


def test_two_instances_never_overwrite_each_other_or_an_earlier_session(tiny_session):
    earlier = autosave(tiny_session)  # an earlier session in the history
    before = earlier.read_text()
    first, second = Autosaver(), Autosaver()  # same process, same second: the names collide
    first.submit(json.dumps(GOOD))
    first.flush()
    other = dict(GOOD, seed=4)
    second.submit(json.dumps(other))
    second.flush()
    assert len({earlier, first.path, second.path}) == 3
    assert earlier.read_text() == before
    assert json.loads(first.path.read_text())["seed"] == 3
    assert json.loads(second.path.read_text())["seed"] == 4
    assert len(list(sessions_dir().glob("*.json"))) == 3


def test_the_session_as_opened_is_not_written():
    saver = Autosaver(baseline=json.dumps(GOOD))
    saver.submit(json.dumps(GOOD))
    assert saver.flush() is None
    assert not saver.path.exists()
    saver.submit(json.dumps(dict(GOOD, seed=9)))
    saver.flush()
    assert json.loads(saver.path.read_text())["seed"] == 9


def test_resume_picks_the_newest_or_a_named_one(capsys, tmp_path):
    old = sessions_dir() / "session-20250101-000000-1.json"
    new = sessions_dir() / "session-20250102-000000-1.json"
    _write(old, GOOD)
    _write(new, dict(GOOD, seed=5))
    os.utime(old, (1_000_000, 1_000_000))
    assert find_session() == new
    assert load_saved_session().seed == 5
    assert find_session(old.stem) == old and find_session(old.name) == old
    saved, notes = resume(old.stem)
    assert saved.seed == 3 and notes == []
    with pytest.raises(InputError, match="--resume list"):
        find_session("no-such-session")
    assert [i.path for i in list_sessions()] == [new, old]
    assert main(["--resume", "list"]) == 0
    out = capsys.readouterr().out
    assert out.index(new.stem) < out.index(old.stem) and "1 prompt(s)" in out


def test_resume_of_an_unknown_name_is_one_sentence(capsys):
    assert main(["--resume", "nothing-like-this"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("change", [
    {"index": "0"}, {"index": 0.5}, {"index": [0]}, {"index": 7}, {"seed": -1}, {"seed": True},
    {"prompts": []}, {"prompts": [{"ids": [1, -2]}]}, {"prompts": [{"ids": [1], "cursor": "1"}]},
    {"prompts": [{"ids": [1, 2], "cursor": 2.0}]}, {"prompts": [{"ids": [1, 2], "cursor": [1]}]},
    {"prompts": [{"ids": [1, 2], "cursor": -1}]}, {"prompts": [{"ids": []}]}, {"mode": 3},
])
def test_every_part_of_the_file_is_validated(change):
    with pytest.raises(ValueError):
        session_from_json(json.dumps(dict(GOOD, **change)))


def test_infinity_and_nan_are_refused():
    text = json.dumps(GOOD).replace('"index": 0', '"index": Infinity')
    with pytest.raises(ValueError, match="Infinity"):
        session_from_json(text)
    with pytest.raises(ValueError):
        session_from_json(json.dumps(GOOD).replace('"seed": 3', '"seed": NaN'))


def test_a_damaged_session_is_set_aside_and_a_fresh_one_starts():
    bad = sessions_dir() / "session-20250101-000000-1.json"
    _write(bad, json.dumps(GOOD).replace('"cursor": 1', '"cursor": "one"'))
    damaged_text = bad.read_text()
    saved, notes = resume()
    assert saved is None and len(notes) == 1 and "fresh session" in notes[0]
    assert not bad.exists()
    [aside] = sessions_dir().glob("*.damaged*")
    assert aside.read_text() == damaged_text  # kept, byte for byte
    assert list_sessions() == []


def test_the_legacy_session_file_is_still_resumable(tmp_path):
    from explorer.paths import session_file

    _write(session_file(), GOOD)
    assert find_session() == session_file()
    assert load_saved_session().prompts[0].cursor == 1


def test_a_failed_write_is_reported_at_once_and_on_flush(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("x")  # a file where the sessions folder should be
    errors: list[str] = []
    saver = Autosaver(blocked / "sessions" / "s.json", on_error=errors.append)
    saver.submit(json.dumps(GOOD))
    _wait_for(lambda: errors)  # from the writer thread, without a second change
    assert str(blocked) in errors[0]
    assert saver.flush() == saver.unsaved and saver.unsaved


def test_view_state_round_trips_and_is_validated(tiny_session):
    from explorer.io.session_store import session_to_json

    view = {"mode_params": {"sae_features": {"layer": 3}}}
    saved = session_from_json(session_to_json(tiny_session, view))
    assert saved.view == view
    assert "view" not in json.loads(session_to_json(tiny_session, {"bad": float("nan")}))  # a save never fails on it
    with pytest.raises(ValueError):
        session_from_json(json.dumps(dict(GOOD, view=[1])))
