"""The app's --compare / --compare-bf16 / --compare-fp16 flags reach the session; a failure leaves model A working."""

from __future__ import annotations

import pytest

from explorer.cli import tui_parser
from explorer.commands.compare_args import compare_request_from_args
from explorer.config import Config, DisplaySection, ModelSection, PromptSection
from explorer.engine.session_builder import build_session
from explorer.launch import attach_comparison


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_llama, tiny_sp_tokenizer):
    d = tmp_path_factory.mktemp("tiny-dir")
    tiny_llama.save_pretrained(d)
    tiny_sp_tokenizer.save_pretrained(d)
    return d


@pytest.fixture
def cfg(model_dir):
    return Config(model=ModelSection(name=str(model_dir), device="cpu"),
                  prompt=PromptSection(example_prompt="once upon a time", max_prompts=4),
                  display=DisplaySection(tokens_to_show=5, cache_size=4))


def test_flags_parse_into_a_request():
    assert compare_request_from_args(tui_parser().parse_args([])) is None
    request = compare_request_from_args(tui_parser().parse_args(["--compare-fp16"]))
    assert (request.model, request.precision) == (None, "float16")
    assert compare_request_from_args(tui_parser().parse_args(["--compare", "bundled"])).model == "bundled"
    with pytest.raises(SystemExit) as exc:
        tui_parser().parse_args(["--compare", "bundled", "--compare-bf16"])
    assert exc.value.code == 2


def test_comparison_reaches_the_session(cfg, model_dir):
    session = build_session(cfg, progress=lambda m: None, seed=0)
    request = compare_request_from_args(tui_parser().parse_args(["--compare", str(model_dir)]))
    attach_comparison(session, request, progress=lambda m: None)
    assert session.comparison is not None
    session.compute()
    view = session.comparison.view(session)
    assert view.summary.mean_kl == 0.0 and view.summary.same_top == 1.0  # the same weights loaded twice


def test_unloadable_model_b_is_a_note_and_a_keeps_working(cfg):
    session = build_session(cfg, progress=lambda m: None, seed=0)
    request = compare_request_from_args(tui_parser().parse_args(["--compare", "./no-such-dir"]))
    attach_comparison(session, request, progress=lambda m: None)
    assert session.comparison is None
    assert any(n.startswith("No comparison: Model path ./no-such-dir does not exist") for n in session.notes)
    assert session.compute().candidates  # model A still steps
