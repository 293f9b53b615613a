"""Open a served model: check the server, the model name, log-probabilities and the tokenizer.

Everything that can be wrong is found here, before the screen opens, and reported as one
sentence that names what to fix (exit code 2 from the CLI): an unreachable address, a
refused API key, a model name the server does not serve, a server without
log-probabilities, and a tokenizer that splits text differently from the server's.
Never imports Textual or Rich.
"""

from __future__ import annotations

from typing import Callable

from explorer.engine.remote.client import RemoteClient, RemoteError
from explorer.engine.remote.dialects import LlamaCppDialect, OpenAIDialect
from explorer.engine.remote.engine import DEFAULT_TOP_K, RemoteEngine
from explorer.engine.remote.source import parse_remote_source
from explorer.errors import ModelLoadError

# Spaces, digits, punctuation, accents, a CJK character and an emoji: tokenizers that differ
# anywhere that matters split this differently.
PROBE_TEXT = "Hello, world! The year 2024: naïve café — 東京 🙂\n\tdef f(x): return x**2"


def open_remote_engine(name: str, *, served_model: str | None = None, api_key_env: str | None = None,
                       tokenizer: str | None = None, timeout: float = 60.0, top_k: int = DEFAULT_TOP_K,
                       progress: Callable[[str], None] | None = None) -> RemoteEngine:
    """Connect to ``openai+http://HOST:PORT/v1`` and return a checked RemoteEngine.

    Args:
        name: the model source ``openai+http(s)://HOST:PORT/v1``.
        served_model: the model name on the server; default: the only one it serves.
        api_key_env: environment variable with the API key (default OPENAI_API_KEY).
        tokenizer: where the tokenizer comes from ("bundled", a .gguf file, a local
            directory or a hub id); default: the served model's name.
        timeout: seconds per request.
        top_k: rows asked of the server per position (capped by the server).
        progress: receives short status lines.

    Raises:
        RemoteError / ModelLoadError: one sentence naming what to fix.
    """
    source = parse_remote_source(name, served_model, api_key_env)
    say = progress or (lambda _m: None)
    say(f"Connecting to {source.base_url}…")
    client = RemoteClient(source, timeout=timeout)
    try:
        listed = [str(m.get("id")) for m in client.get(f"{source.base_url}/models").get("data", [])]
        model = _pick_model(source.served_model, listed, source.base_url)
        props = _llama_props(client, source.root_url)
        if props is not None:
            dialect = LlamaCppDialect(client, props)
        else:
            max_len = None
            for m in client.get(f"{source.base_url}/models").get("data", []):
                if str(m.get("id")) == model:
                    max_len = m.get("max_model_len")
            dialect = OpenAIDialect(client, model, int(max_len) if max_len else None)
        say("Loading the tokenizer…")
        tok = load_tokenizer(tokenizer or model)
        dialect.n_vocab = len(tok)
        _check_tokenizer(dialect, tok, tokenizer or model)
        probe_ids = list(tok(PROBE_TEXT, add_special_tokens=True)["input_ids"])
        dist = dialect.distribution(probe_ids[:8], 2)
        if not dist.ids:
            raise RemoteError(f"The server at {source.base_url} returned no log-probabilities; start it with "
                              "log-probabilities enabled (vLLM: --max-logprobs 20).")
    except BaseException:
        client.close()
        raise
    display = model if not model.endswith(".gguf") else model.rsplit("/", 1)[-1]
    return RemoteEngine(client, dialect, tok, source, model_name=f"{display} @ {source.base_url}", top_k=top_k)


def _pick_model(wanted: str | None, listed: list[str], where: str) -> str:
    if wanted:
        if wanted in listed:
            return wanted
        shown = ", ".join(listed[:5]) or "nothing"
        raise RemoteError(f'The server at {where} does not serve "{wanted}" (it serves {shown}); '
                          "fix --served-model or [model] served_model.")
    if len(listed) == 1:
        return listed[0]
    if not listed:
        raise RemoteError(f"The server at {where} lists no model at /models; is the model still loading?")
    raise RemoteError(f"The server at {where} serves several models ({', '.join(listed[:5])}); "
                      "name one with --served-model.")


def _llama_props(client: RemoteClient, root: str) -> dict | None:
    """llama.cpp's /props (it identifies the server and gives n_ctx); None for other servers."""
    try:
        props = client.get(f"{root}/props")
    except RemoteError:
        return None
    return props if isinstance(props, dict) and "default_generation_settings" in props else None


def load_tokenizer(name: str):
    """A tokenizer from "bundled", a .gguf file, a local directory or a hub id (tokenizer files only)."""
    from pathlib import Path

    from transformers import AutoTokenizer

    from explorer.engine.loading import BUNDLED, _entry_complete, _gguf_cache_entry, bundled_gguf_path

    path = Path(name).expanduser()
    try:
        if name == BUNDLED or name.endswith(".gguf"):
            gguf = bundled_gguf_path() if name == BUNDLED else path
            entry = _gguf_cache_entry(gguf)
            if _entry_complete(entry):  # the converted copy has the tokenizer files: fast
                return AutoTokenizer.from_pretrained(str(entry))
            return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        return AutoTokenizer.from_pretrained(str(path) if path.is_dir() else name)
    except ModelLoadError:
        raise
    except Exception:
        raise ModelLoadError(f'Cannot load a tokenizer for "{name}"; give the model\'s tokenizer with '
                             "--tokenizer (\"bundled\", a .gguf file, a local directory or a hub id).") from None


def _check_tokenizer(dialect, tok, tok_name: str) -> None:
    """Tokenize a probe both ways: different ids mean every number would be about other tokens."""
    ours = list(tok(PROBE_TEXT, add_special_tokens=False)["input_ids"])
    try:
        theirs = dialect.tokenize(PROBE_TEXT)
    except RemoteError:
        return  # no /tokenize endpoint: nothing to compare against (vLLM and llama.cpp have one)
    if ours != theirs:
        raise RemoteError(f'The tokenizer "{tok_name}" splits text differently from the server\'s model; '
                          "give the served model's tokenizer with --tokenizer.")
