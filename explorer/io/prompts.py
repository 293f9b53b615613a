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
    """Read --input: a UTF-8 text file or a saved-prompt .json (``-``: standard input).

    Raises InputError in one sentence (missing, binary, over 16 MB, a silent FIFO, empty).
    """
    from explorer.inputs import STDIN, read_input_text

    text = read_input_text(path, "Input file", MAX_PROMPT_BYTES)  # read once: pipes and <(...) work
    p = Path(path).expanduser() if str(path) != STDIN else Path("standard input")
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
