"""The autosaved session: every prompt (as token ids), the current one, cursors, mode.

Written atomically after each change, so a crash or ``kill -9`` loses nothing;
``--resume`` reads it back. A file from another model keeps the texts, not the ids.
Never imports Textual or Rich.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from explorer.errors import InputError
from explorer.io.atomic import atomic_write_text
from explorer.paths import session_file

SCHEMA_VERSION = 1


@dataclass
class SavedPrompt:
    ids: list[int]
    original_ids: list[int]
    cursor: int | None
    text: str


@dataclass
class SavedSession:
    model: str
    prompts: list[SavedPrompt]
    index: int
    mode: str
    seed: int


def session_to_json(session) -> str:
    decode = session.wrapper.decode
    return json.dumps({
        "schema_version": SCHEMA_VERSION,
        "model": session.wrapper.name,
        "index": session.index,
        "mode": session.mode,
        "seed": session.seed,
        "prompts": [{"ids": e.ids, "original_ids": e.original_ids, "cursor": e.cursor,
                     "text": decode(e.ids)} for e in session.prompts],
    }, ensure_ascii=False)


def autosave(session, path: Path | None = None) -> Path:
    return atomic_write_text(Path(path) if path else session_file(), session_to_json(session))


def load_saved_session(path: Path | None = None) -> SavedSession:
    p = Path(path) if path else session_file()
    if not p.exists():
        raise InputError(f"There is no saved session to resume ({p} does not exist).")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        prompts = [SavedPrompt([int(i) for i in e["ids"]], [int(i) for i in e.get("original_ids", e["ids"])],
                               e.get("cursor"), str(e.get("text", ""))) for e in data["prompts"]]
        if not prompts or any(not sp.ids for sp in prompts):
            raise ValueError("no prompts")
        return SavedSession(str(data.get("model", "")), prompts, int(data.get("index", 0)),
                            str(data.get("mode", "plain")), int(data.get("seed", 0)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"The saved session {p} is damaged and cannot be resumed ({exc}).") from exc


class Autosaver:
    """Writes the newest session JSON in a background thread, never an older one after a newer.

    ``submit`` is cheap (it stores the text and wakes the writer); ``flush`` writes what is
    pending now, in the caller's thread (used on quit).
    """

    def __init__(self, path: Path | None = None) -> None:
        import threading

        self.path = Path(path) if path else session_file()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: str | None = None
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="autosave", daemon=True)
        self._thread.start()

    def submit(self, text: str) -> None:
        with self._lock:
            self._pending = text
        self._wake.set()

    def _write_pending(self) -> None:
        with self._lock:
            text, self._pending = self._pending, None
            if text is None:
                return
            try:  # inside the lock: two writes never race, so the newest is the last one written
                atomic_write_text(self.path, text)
                self.last_error = None
            except Exception as exc:  # reported by the app, never fatal
                self.last_error = str(exc)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            self._write_pending()

    def flush(self) -> None:
        self._write_pending()
