"""Which config file is read without --config, and `config --show`'s account of every value."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.config import load_config
from explorer.config_sources import CHECKOUT_CONFIG, find_config, shipped_config


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    work, user = tmp_path / "work", tmp_path / "user"
    work.mkdir()
    user.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TOKEN_EXPLORER_CONFIG_DIR", str(user))
    return work, user


def test_order_working_dir_then_user_then_shipped(dirs):
    work, user = dirs
    assert find_config() == (shipped_config(), "the shipped default")
    assert shipped_config() == CHECKOUT_CONFIG  # running from the checkout
    (user / "config.toml").write_text('[display]\ntokens_to_show = 7\n', encoding="utf-8")
    assert find_config() == (user / "config.toml", "the user config file")
    assert load_config().display.tokens_to_show == 7
    (work / "config.toml").write_text('[display]\ntokens_to_show = 5\n', encoding="utf-8")
    assert load_config().display.tokens_to_show == 5
    assert load_config(CHECKOUT_CONFIG).display.tokens_to_show == 30  # --config wins over both


def test_show_names_the_origin_of_every_value(dirs, capsys):
    _work, user = dirs
    (user / "config.toml").write_text('[model]\nbf16 = true\n[display]\ncache_size = 12\n', encoding="utf-8")
    assert main(["config", "--show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["file"] == str(user / "config.toml") and data["why"] == "the user config file"
    origin = {(s["section"], s["key"]): (s["value"], s["origin"]) for s in data["settings"]}
    assert origin[("model", "bf16")] == (True, str(user / "config.toml"))
    assert origin[("display", "cache_size")] == (12, str(user / "config.toml"))
    assert origin[("display", "tokens_to_show")] == (30, "built-in default")
    assert [x["exists"] for x in data["looked_at"]] == [False, True, True]
    assert main(["config", "--show"]) == 0
    text = capsys.readouterr().out
    assert "bf16 = true" in text and "# built-in default" in text


def test_show_reports_a_bad_user_config_in_one_sentence(dirs, capsys):
    _work, user = dirs
    (user / "config.toml").write_text('[display]\ntokens_to_sho = 3\n', encoding="utf-8")
    assert main(["config", "--show"]) == 2
    err = capsys.readouterr().err
    assert 'Did you mean "tokens_to_show"?' in err and "Traceback" not in err
    assert main(["config"]) == 2
