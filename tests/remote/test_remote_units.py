"""Pieces of the remote engine that need no server: the address, the entropy bound, the interface."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.engine.interface import ALL_CAPABILITIES, Engine, missing_capabilities, unavailable_message
from explorer.engine.remote.engine import covered_entropy_bits
from explorer.engine.remote.source import is_remote_source, parse_remote_source
from explorer.errors import InputError


def test_parse_remote_source():
    s = parse_remote_source("openai+http://10.0.0.5:8000/v1", "meta-llama/Llama-3.1-70B")
    assert s.base_url == "http://10.0.0.5:8000/v1" and s.root_url == "http://10.0.0.5:8000"
    assert s.served_model == "meta-llama/Llama-3.1-70B" and s.api_key_env == "OPENAI_API_KEY"
    assert parse_remote_source("openai+https://host.example/").base_url == "https://host.example/v1"
    assert is_remote_source("OpenAI+http://x:1/v1") and not is_remote_source("bundled")


@pytest.mark.parametrize("bad", ["openai+ftp://x/v1", "openai+http:///v1", "openai+http://x:port/v1"])
def test_bad_addresses_are_refused(bad):
    with pytest.raises(InputError):
        parse_remote_source(bad)


def test_credentials_in_the_address_are_refused():
    with pytest.raises(InputError, match="environment variable"):
        parse_remote_source("openai+http://user:secret@host:8000/v1")


def test_the_api_key_is_read_from_the_environment_not_stored(monkeypatch):
    monkeypatch.setenv("MY_KEY", "s3cret")
    s = parse_remote_source("openai+http://h:1/v1", api_key_env="MY_KEY")
    assert s.api_key() == "s3cret"
    assert "s3cret" not in repr(s) and "s3cret" not in s.display


def test_covered_entropy_is_a_lower_bound_of_the_exact_entropy():
    torch.manual_seed(0)
    logits = torch.randn(1000) * 3  # [vocab]
    logp = torch.log_softmax(logits, -1)
    exact_bits = float(-(logp.exp() * logp).sum()) / math.log(2)
    top = torch.topk(logp, 20).values.tolist()
    mass, bound = covered_entropy_bits(top)
    assert mass == pytest.approx(float(torch.topk(logp, 20).values.exp().sum()), rel=1e-6)
    assert bound < exact_bits
    full_mass, full_bound = covered_entropy_bits(logp.tolist())  # the whole row: exact
    assert full_mass == pytest.approx(1.0, abs=1e-5) and full_bound == pytest.approx(exact_bits, rel=1e-5)


def test_local_engine_satisfies_the_interface(tiny_wrapper):
    assert isinstance(tiny_wrapper, Engine)
    assert tiny_wrapper.capabilities == ALL_CAPABILITIES
    assert missing_capabilities(tiny_wrapper, {"attention"}) == []


def test_unavailable_message_names_what_is_missing():
    class Served:
        capabilities = frozenset()

    missing = missing_capabilities(Served(), {"attention", "hidden_states"})
    assert missing == ["attention", "hidden_states"]
    assert unavailable_message(missing) == "Not available from this engine: needs attention, hidden states."


def test_remote_package_imports_without_textual():
    import subprocess
    import sys

    code = ("import sys, explorer.engine.remote.open, explorer.engine.interface; "
            "assert 'textual' not in sys.modules and 'rich' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
