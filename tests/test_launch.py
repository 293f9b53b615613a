"""Start-up paths: --resume and --input bring back exact token paths; mismatches are explained."""

from __future__ import annotations

import dataclasses

import pytest

from explorer.config import Config, DisplaySection, ModelSection, PromptSection
from explorer.io.prompts import read_prompt_file, save_prompt
from explorer.io.session_store import autosave, load_saved_session
from explorer.engine.session_builder import build_session


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_llama, tiny_sp_tokenizer):
    d = tmp_path_factory.mktemp("tiny-dir")
    tiny_llama.save_pretrained(d)
    tiny_sp_tokenizer.save_pretrained(d)
    return d


@pytest.fixture
def cfg(model_dir):
    return Config(model=ModelSection(name=str(model_dir)),
                  prompt=PromptSection(example_prompt="once upon a time", max_prompts=4),
                  display=DisplaySection(tokens_to_show=5, cache_size=4))


def test_resume_restores_every_prompt_exactly(cfg, tmp_path):
    session = build_session(cfg, progress=lambda m: None, seed=7)
    session.append(9)  # a token path, not what tokenizing its text would give
    session.append(9)
    session.add_prompt()
    session.pop()
    session.cursor_start()
    path = autosave(session, tmp_path / "session.json")
    again = build_session(cfg, progress=lambda m: None, saved=load_saved_session(path), seed=7)
    assert [e.ids for e in again.prompts] == [e.ids for e in session.prompts]
    assert [e.original_ids for e in again.prompts] == [e.original_ids for e in session.prompts]
    assert again.index == session.index and again.current.cursor == 0
    assert again.compute().ids == tuple(session.current.ids)


def test_resume_with_another_model_retokenizes_with_a_note(cfg, tmp_path):
    session = build_session(cfg, progress=lambda m: None)
    path = autosave(session, tmp_path / "session.json")
    text = path.read_text().replace(session.wrapper.name, "some-other-model")
    path.write_text(text)
    again = build_session(cfg, progress=lambda m: None, saved=load_saved_session(path))
    assert any("re-tokenized" in n for n in again.notes)
    assert again.current.ids == session.current.ids  # same tokenizer here, so same ids


def test_input_json_keeps_ids(cfg, tmp_path):
    session = build_session(cfg, progress=lambda m: None)
    ids = session.current.ids + [9, 9]
    saved = save_prompt(session.wrapper.decode(ids), ids, [], session.wrapper.name, directory=tmp_path)
    again = build_session(cfg, progress=lambda m: None, prompt_file=read_prompt_file(saved.with_suffix(".json")))
    assert again.current.ids == ids


def test_input_text_too_long_is_cut_with_a_note(cfg, tmp_path):
    p = tmp_path / "long.txt"
    p.write_text("the cat " * 200)
    session = build_session(cfg, progress=lambda m: None, prompt_file=read_prompt_file(p))
    assert len(session.current.ids) == session.wrapper.context_length - 1
    assert any("dropped" in n for n in session.notes)


def test_saved_session_larger_than_max_prompts(cfg, tmp_path):
    session = build_session(cfg, progress=lambda m: None)
    for _ in range(3):
        session.add_prompt()
    path = autosave(session, tmp_path / "session.json")
    small = dataclasses.replace(cfg, prompt=dataclasses.replace(cfg.prompt, max_prompts=2))
    again = build_session(small, progress=lambda m: None, saved=load_saved_session(path))
    assert again.count == 2 and any("max_prompts" in n for n in again.notes)
