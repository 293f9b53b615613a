"""Shared fixtures: offline environment, tiny random models built from configs, a tiny session.

Session-scoped model fixtures are read-only: never mutate them in a test.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

WORDS = ["<unk>", "<bos>", "<eos>", "<pad>"] + (
    "the cat sat on mat a dog ran . , and in to of is was it he she they big red blue "
    "time once upon there , ! ? 0 1 2 3 4 5 6 7 8 9 - / : ; [/b] [bold] \\x1b"
).split()


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path, monkeypatch):
    """Saved prompts, sessions and the user config live in a temporary directory, never the real home."""
    monkeypatch.setenv("TOKEN_EXPLORER_DATA_DIR", str(tmp_path / "data"))
    # A user config in the real home must not change what a test reads (explorer.config_sources).
    monkeypatch.setenv("TOKEN_EXPLORER_CONFIG_DIR", str(tmp_path / "user-config"))
    yield


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(dict.fromkeys(WORDS))}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>", pad_token="<pad>")


@pytest.fixture(scope="session")
def tiny_sp_tokenizer():
    """The same words and ids as tiny_tokenizer, written SentencePiece style ("▁the").

    Its tokens carry their leading space, so a prompt reads as text in the app and word
    boundaries exist (used by the UI and session tests).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = list(dict.fromkeys(WORDS))
    vocab = {(w if w.startswith("<") and w.endswith(">") else "▁" + w): i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>", pad_token="<pad>")


@pytest.fixture(scope="session")
def tiny_sp_wrapper(tiny_llama, tiny_sp_tokenizer):
    from explorer.engine.model import ModelWrapper

    return ModelWrapper(tiny_llama, tiny_sp_tokenizer, name="tiny-llama", device="cpu")


def _vocab(tok) -> int:
    return len(tok.get_vocab())


@pytest.fixture(scope="session")
def tiny_llama(tiny_tokenizer):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=_vocab(tiny_tokenizer), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()


@pytest.fixture(scope="session")
def tiny_gemma(tiny_tokenizer):
    from transformers import AutoModelForCausalLM, Gemma2Config

    torch.manual_seed(0)
    cfg = Gemma2Config(vocab_size=_vocab(tiny_tokenizer), hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                       sliding_window=4, max_position_embeddings=64, final_logit_softcapping=30.0,
                       bos_token_id=1, eos_token_id=2, pad_token_id=3)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()


@pytest.fixture(scope="session")
def tiny_wrapper(tiny_llama, tiny_tokenizer):
    from explorer.engine.model import ModelWrapper

    return ModelWrapper(tiny_llama, tiny_tokenizer, name="tiny-llama", device="cpu")


@pytest.fixture(scope="session")
def tiny_gemma_wrapper(tiny_gemma, tiny_tokenizer):
    from explorer.engine.model import ModelWrapper

    return ModelWrapper(tiny_gemma, tiny_tokenizer, name="tiny-gemma", device="cpu")


@pytest.fixture
def test_config():
    from explorer.config import Config, DisplaySection, PromptSection

    return Config(prompt=PromptSection(example_prompt="once upon a time there was a", max_prompts=4),
                  display=DisplaySection(tokens_to_show=10, cache_size=8), source="<test>")


@pytest.fixture
def tiny_session(tiny_sp_wrapper, test_config):
    from explorer.engine.session import Session

    return Session(tiny_sp_wrapper, test_config, seed=0)


@pytest.fixture(scope="session")
def bundled_wrapper():
    """The real bundled SmolLM2 model (offline). Converted once into the user cache."""
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper

    return ModelWrapper.from_loaded(load_model("bundled"))


@pytest.fixture(autouse=True)
def _bundled_model_only_in_integration_tests(request, monkeypatch):
    """Keep the fast tier honest: a test that loads the bundled model must be marked integration.

    ``-m "not integration"`` is the fast loop; a test that loads real weights without the marker
    would silently make it slow. Every load of the bundled weights goes through
    ``loading.convert_gguf`` on the bundled GGUF (commands and the app included), so an unmarked
    test fails there; resolving the name alone (cheap checks before loading) is allowed.
    """
    if request.node.get_closest_marker("integration") is not None:
        return
    if "bundled_wrapper" in request.fixturenames:
        pytest.fail(f"{request.node.nodeid} uses bundled_wrapper; mark it @pytest.mark.integration")
    from explorer.engine import loading

    convert = loading.convert_gguf

    def guarded(gguf, *args, **kwargs):
        if os.path.realpath(gguf) == os.path.realpath(loading.bundled_gguf_path()):
            pytest.fail(f"{request.node.nodeid} loads the bundled model; mark it @pytest.mark.integration")
        return convert(gguf, *args, **kwargs)

    monkeypatch.setattr(loading, "convert_gguf", guarded)
