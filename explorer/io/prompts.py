"""Reading prompt files (--input) and saving prompts (key x), keeping token ids beside the text.

A saved prompt is two files with one stem in the user data directory: ``NAME.txt`` (the
text, usable anywhere) and ``NAME.json`` (schema_version, model, text, token_ids, tokens).
``--input`` accepts either: a ``.json`` saved prompt brings back the exact ids when the
model matches. Never imports Textual or Rich.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from explorer.errors import InputError
from explorer.io.atomic import create_new_text
from explorer.paths import saved_prompts_dir

SCHEMA_VERSION = 1
MAX_PROMPT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class PromptFile:
    text: str
    token_ids: list[int] | None = None
    """Exact ids when the file is a saved prompt (.json)."""
    model: str | None = None


def read_prompt_file(path: str | Path) -> PromptFile:
    """Read --input: a UTF-8 text file or a saved-prompt .json. Raises InputError in one sentence."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"Input file {p} does not exist.")
    if p.is_dir():
        raise InputError(f"Input file {p} is a directory; give a text file.")
    try:
        size = p.stat().st_size
        if size > MAX_PROMPT_BYTES:
            raise InputError(f"Input file {p} is {size // 1_000_000} MB; prompts are limited to 16 MB.")
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"Input file {p} could not be read: {exc.strerror or exc}.") from exc
    if b"\x00" in raw:
        raise InputError(f"Input file {p} looks binary (it holds NUL bytes); give a UTF-8 text file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"Input file {p} is not UTF-8 text (bad byte at offset {exc.start}).") from exc
    if not text.strip():
        raise InputError(f"Input file {p} is empty.")
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            return PromptFile(text)
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            ids = data.get("token_ids")
            if not (isinstance(ids, list) and ids and all(isinstance(i, int) and i >= 0 for i in ids)):
                ids = None
            return PromptFile(data["text"], ids, data.get("model"))
    return PromptFile(text)


def save_prompt(text: str, token_ids: list[int], tokens: list[str], model: str,
                directory: Path | None = None) -> Path:
    """Write a prompt as NAME.txt + NAME.json atomically; never replaces an earlier save.

    Returns:
        The path of the .txt file.
    """
    directory = Path(directory) if directory is not None else saved_prompts_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record = json.dumps({"schema_version": SCHEMA_VERSION, "model": model, "text": text,
                         "token_ids": list(token_ids), "tokens": tokens}, ensure_ascii=False, indent=1)
    for n in range(1000):
        stem = f"prompt-{stamp}" + (f"-{n}" if n else "")
        try:
            create_new_text(directory / f"{stem}.json", record)
        except FileExistsError:
            continue
        try:
            create_new_text(directory / f"{stem}.txt", text)
        except FileExistsError:
            continue
        return directory / f"{stem}.txt"
    raise InputError("Could not find a free file name for the saved prompt.")
