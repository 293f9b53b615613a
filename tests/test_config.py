"""Both shipped TOMLs load; every bad config is one sentence that names the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.config import load_config, parse_config
from explorer.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_configs_load():
    default = load_config(ROOT / "config.toml")
    assert default.model.name == "bundled"
    assert default.prompt.max_prompts == 9 and default.display.tokens_to_show == 30
    gemma = load_config(ROOT / "config_gemma.toml")
    assert gemma.model.name == "google/gemma-2-2b-it" and gemma.model.enable_sae
    assert gemma.sae and gemma.sae[0].layer == 12


@pytest.mark.parametrize("text, expected", [
    ("[model]\nnmae = 'x'", 'Did you mean "name"'),
    ("[modle]\nname = 'x'", 'Did you mean "model"'),
    ("[model]\nname = 3", "must be a string"),
    ("[display]\ntokens_to_show = 'ten'", "must be an integer"),
    ("[model]\nenable_sae = 1", "true or false"),
    ("[prompt]\nmax_prompts = 0", "at least 1"),
    ("[display]\ncache_size = -1", "at least 1"),
    ("name = ", "not valid TOML"),
    ("[[sae]]\nlayer = 1", "exactly one of repo_id or path"),
    ("[[sae]]\nrepo_id = 'x'", "needs the key(s) layer"),
    ("sae = 3", "[[sae]]"),
])
def test_bad_config_is_one_sentence_naming_the_file(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "my.toml")
    message = str(info.value)
    assert message.startswith("my.toml")
    assert expected in message
    assert "\n" not in message


def test_missing_and_directory_and_binary_config(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)
