"""The TOML configuration, read into frozen dataclasses and checked key by key.

An unknown key or section fails with the file name and a "Did you mean ...?" suggestion;
a value of the wrong type names the key, the type wanted and the value found. Stdlib only
(``tomllib``; ``tomli`` on Python < 3.11).
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project requires 3.11, kept for the documented fallback
    import tomli as tomllib

from explorer.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.toml"


@dataclass(frozen=True)
class ModelSection:
    name: str = "bundled"
    """"bundled" (SmolLM2-135M-Instruct, offline), a hub repo id, a local HF directory or a .gguf file."""
    enable_sae: bool = False
    """Master switch for the SAE / transcoder features mode ([[sae]] entries)."""
    trust_remote_code: bool = False
    """Allow a hub model's own Python code to run. Off unless you trust the repository."""
    device: str = "auto"
    """"auto" (CUDA > MPS > CPU), "cpu", "cuda", "cuda:1", "mps", or "multi" for device_map="auto"."""
    bf16: bool = False
    """Load the weights in bfloat16 (same as --bf16)."""
    served_model: str = ""
    """With name = "openai+http://HOST:PORT/v1": the model name on the server ("" = the only one it serves)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable that holds the server's API key (the key itself is never written here)."""
    tokenizer: str = ""
    """Served model's tokenizer: "bundled", a .gguf file, a local directory or a hub id ("" = the served name)."""
    timeout: float = 60.0
    """Seconds one request to a server may take before it is retried, then reported."""


@dataclass(frozen=True)
class PromptSection:
    example_prompt: str = "Once upon a time, there was a"
    """The prompt the app opens with when no --input is given."""
    max_prompts: int = 9
    """How many prompts the session may hold at once (d refuses past this)."""


@dataclass(frozen=True)
class DisplaySection:
    tokens_to_show: int = 30
    """Rows in the next-token table."""
    cache_size: int = 100
    """Bound of every cache: computed prompt traces and per-mode results (LRU)."""


@dataclass(frozen=True)
class SaeEntry:
    layer: int
    """Model layer the SAE reads (block index, 0-based)."""
    repo_id: str | None = None
    """Hub repository holding the weights (needs the hub), or None with `path`."""
    path: str | None = None
    """Local directory or file holding the weights."""
    filename: str | None = None
    """File inside the repository or directory (format-specific)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit)."""
    hook: str | None = None
    """TransformerLens hook name, e.g. blocks.12.hook_resid_post; inferred from the format when absent."""
    format: str | None = None
    """saelens, gemma_scope, gemma_scope_2, circuit_tracer, circuit_tracer_clt, sparsify; detected when absent."""
    labels: str | None = None
    """Neuronpedia-style explanations export (.jsonl or .jsonl.gz) for feature descriptions."""


@dataclass(frozen=True)
class Config:
    model: ModelSection = field(default_factory=ModelSection)
    prompt: PromptSection = field(default_factory=PromptSection)
    display: DisplaySection = field(default_factory=DisplaySection)
    sae: tuple[SaeEntry, ...] = ()
    source: str = "<defaults>"
    """Where this configuration was read from (for messages)."""

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)


SECTIONS: dict[str, type] = {"model": ModelSection, "prompt": PromptSection, "display": DisplaySection}
_LIST_SECTIONS: dict[str, type] = {"sae": SaeEntry}


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else f" Known keys: {', '.join(sorted(choices))}."


def _type_ok(value: Any, annotation: Any) -> bool:
    hint = annotation
    if isinstance(hint, str):
        hint = eval(hint, vars(typing) | {"Any": Any})  # our own annotations only
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(annotation: Any) -> str:
    text = str(annotation)
    return {"str": "a string", "int": "an integer", "bool": "true or false", "float": "a number"}.get(text, text)


def _build(cls: type, table: Any, where: str, source: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{where}] must be a table of keys, not {type(table).__name__}.")
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    for key, value in table.items():
        if key not in hints:
            raise ConfigError(f"{source}: unknown key '{key}' in [{where}].{_suggest(key, list(hints))}")
        if not _type_ok(value, hints[key]):
            raise ConfigError(
                f"{source}: [{where}] {key} must be {_type_name(hints[key])}, found {value!r}."
            )
    try:
        return cls(**table)
    except TypeError as exc:  # a required key is missing
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   and f.name not in table]
        raise ConfigError(f"{source}: [{where}] needs the key(s) {', '.join(missing)}.") from exc


def _check_values(cfg: Config) -> None:
    src = cfg.source
    if cfg.prompt.max_prompts < 1:
        raise ConfigError(f"{src}: [prompt] max_prompts must be at least 1, found {cfg.prompt.max_prompts}.")
    if not 1 <= cfg.display.tokens_to_show <= 1000:
        raise ConfigError(f"{src}: [display] tokens_to_show must be between 1 and 1000, found {cfg.display.tokens_to_show}.")
    if cfg.display.cache_size < 1:
        raise ConfigError(f"{src}: [display] cache_size must be at least 1, found {cfg.display.cache_size}.")
    if not cfg.model.name.strip():
        raise ConfigError(f'{src}: [model] name is empty; use "bundled" for the offline default model.')
    for i, entry in enumerate(cfg.sae):
        if entry.layer < 0:
            raise ConfigError(f"{src}: [[sae]] entry {i + 1} has a negative layer ({entry.layer}).")
        if (entry.repo_id is None) == (entry.path is None):
            raise ConfigError(f"{src}: [[sae]] entry {i + 1} needs exactly one of repo_id or path.")


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse TOML text into a checked Config. Raises ConfigError with the source named."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}.") from exc
    known = list(SECTIONS) + list(_LIST_SECTIONS)
    parts: dict[str, Any] = {}
    for name, table in data.items():
        if name in SECTIONS:
            parts[name] = _build(SECTIONS[name], table, name, source)
        elif name in _LIST_SECTIONS:
            if not isinstance(table, list):
                raise ConfigError(f"{source}: '{name}' must be written as [[{name}]] entries.")
            parts[name] = tuple(_build(_LIST_SECTIONS[name], t, f"[{name}]", source) for t in table)
        else:
            raise ConfigError(f"{source}: unknown section [{name}].{_suggest(name, known)}")
    cfg = Config(**parts, source=source)
    _check_values(cfg)
    return cfg


MAX_CONFIG_BYTES = 1 << 20
"""A config file is a few KB; 1 MB is generous and keeps /dev/zero out."""


def load_config(path: str | Path | None = None) -> Config:
    """Read a config file (default: the one ``explorer.paths.find_config`` picks). Raises ConfigError."""
    if path is None:
        from explorer.paths import find_config  # platformdirs: imported only when no file is named

        path, _why = find_config()
    p = Path(path)
    from explorer.errors import InputError
    from explorer.inputs import read_input_text

    try:  # read once and bounded: --config /dev/zero or a FIFO must not hang or fill memory
        text = read_input_text(p, "Config file", MAX_CONFIG_BYTES)
    except InputError as exc:
        raise ConfigError(exc.message) from exc
    return parse_config(text, source=str(p))
