"""Saved sessions: every prompt (as token ids), the current one, cursors, mode (layer view included).

Each app instance writes its own file, ``sessions/session-YYYYMMDD-HHMMSS-PID.json`` in the
user data directory, created with a no-overwrite link, so starting the app never replaces
an earlier session and two instances never write the same file: every session is kept (the
history). Nothing is written until the session differs from the one the app opened with,
so a start-and-quit does not push the real work down the list.

``--resume`` loads the newest file, ``--resume NAME`` a named one, ``--resume list`` lists
them. A file is validated as a whole (types, ranges, no Infinity/NaN); a damaged one is
renamed aside (``*.json.damaged``) and the app starts fresh with one sentence. A file from
another model keeps the texts, not the ids. Never imports Textual or Rich.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from explorer.errors import InputError, PersistenceError
from explorer.io.atomic import atomic_write_text, create_new_text
from explorer.paths import session_file, sessions_dir

SCHEMA_VERSION = 1
NEWEST = "newest"
MAX_SESSION_BYTES = 64 * 2**20
"""A session of 1,000 prompts of 4k tokens is ~30 MB of JSON; more is not a session."""
MAX_ID = 2**31 - 1
MAX_SEED = 2**63 - 1


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
    """The mode, which is also the layer view (layer_prob / layer_correlation) chosen with p."""
    seed: int
    path: Path | None = None
    view: dict | None = None
    """What the app shows beyond the session itself, e.g. {"mode_params": {"sae_features": {"layer": 3}}}
    (the SAE layer chosen with p); the app gives it to ``session_to_json`` and reads it back."""


@dataclass(frozen=True)
class SessionInfo:
    """One line of ``--resume list``."""

    name: str
    path: Path
    modified: float
    prompts: int | None
    """None when the file is damaged."""
    model: str
    first_text: str


# ---------------------------------------------------------------------------- writing
def session_to_json(session, view: dict | None = None) -> str:
    """The whole session as JSON; ``view``: the app's view state (JSON values only, else left out)."""
    decode = session.wrapper.decode
    extra = {}
    if view:
        try:
            extra["view"] = json.loads(json.dumps(view, allow_nan=False))
        except (TypeError, ValueError):  # a value JSON cannot hold: the view is not worth failing a save
            extra = {}
    return json.dumps({
        "schema_version": SCHEMA_VERSION,
        "model": session.wrapper.name,
        "index": session.index,
        "mode": session.mode,
        "seed": session.seed,
        "prompts": [{"ids": e.ids, "original_ids": e.original_ids, "cursor": e.cursor,
                     "text": decode(e.ids)} for e in session.prompts],
        **extra,
    }, ensure_ascii=False)


def new_session_path(directory: Path | None = None) -> Path:
    """A fresh name for this instance's file (not created yet)."""
    directory = Path(directory) if directory is not None else sessions_dir()
    return directory / f"session-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"


def autosave(session, path: Path | None = None) -> Path:
    """Write ``session`` to ``path`` (default: a new file in the history) at once."""
    if path is not None:
        return atomic_write_text(Path(path), session_to_json(session))
    return _create_unique(new_session_path(), session_to_json(session))


def _create_unique(path: Path, text: str) -> Path:
    """Create ``path`` (or ``path-1``, ``path-2``…) without ever replacing an existing file."""
    for n in range(1000):
        candidate = path if n == 0 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            return create_new_text(candidate, text)
        except FileExistsError:
            continue
    raise PersistenceError(f"Could not find a free session file name in {path.parent}.")


class Autosaver:
    """Writes the newest session JSON of one app instance in a background thread.

    * ``submit`` is cheap (it stores the text and wakes the writer); an older text is never
      written after a newer one.
    * Nothing is written while the text equals ``baseline`` (the session as opened) and
      nothing has been written yet.
    * The first write creates the file without overwriting anything (another instance's
      file, an earlier session); later writes replace it atomically.
    * A failed write calls ``on_error(sentence)`` at once, from the writer thread (the app
      turns it into a notification; Textual's ``notify`` is thread-safe), and
      ``unsaved`` says what is not on disk until a later write succeeds.
    """

    def __init__(self, path: Path | None = None, *, baseline: str | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.path = Path(path) if path else new_session_path()
        self._explicit_path = path is not None
        self._created = self._explicit_path
        self._baseline = baseline
        self.on_error = on_error
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: str | None = None
        self.last_error: str | None = None
        self.unsaved: str | None = None
        """One sentence while the newest session is not on disk (said again on quit)."""
        self._thread = threading.Thread(target=self._run, name="autosave", daemon=True)
        self._thread.start()

    def submit(self, text: str) -> None:
        with self._lock:
            if not self._created and text == self._baseline:
                return
            self._pending = text
        self._wake.set()

    def _write_pending(self) -> None:
        with self._lock:
            text, self._pending = self._pending, None
            if text is None:
                return
            try:  # inside the lock: two writes never race, so the newest is the last one written
                if self._created:
                    atomic_write_text(self.path, text)
                else:
                    self.path = _create_unique(self.path, text)
                    self._created = True
                self.last_error = self.unsaved = None
                return
            except Exception as exc:  # reported at once, never fatal
                self.last_error = str(exc)
                self.unsaved = f"The session could not be saved to {self.path}: {exc}"
        if self.on_error is not None:  # outside the lock: the callback may submit again
            self.on_error(self.unsaved)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            self._write_pending()

    def flush(self) -> str | None:
        """Write what is pending now, in the caller's thread; returns ``unsaved``."""
        self._write_pending()
        return self.unsaved


# ---------------------------------------------------------------------------- reading
def _no_constants(name: str):
    raise ValueError(f"{name} is not a number a session can hold")


def _int(value, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be a whole number, found {json.dumps(value)[:40]}")
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, found {value}")
    return value


def _ids(value, what: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{what} must be a non-empty list of token ids")
    return [_int(i, what, 0, MAX_ID) for i in value]


def session_from_json(text: str) -> SavedSession:
    """Validate a whole session file; raises ValueError naming the first thing wrong."""
    data = json.loads(text, parse_constant=_no_constants)
    if not isinstance(data, dict):
        raise ValueError("the file is not a JSON object")
    raw_prompts = data.get("prompts")
    if not isinstance(raw_prompts, list) or not raw_prompts:
        raise ValueError("it holds no prompts")
    prompts = []
    for n, e in enumerate(raw_prompts, 1):
        if not isinstance(e, dict):
            raise ValueError(f"prompt {n} is not an object")
        ids = _ids(e.get("ids"), f"prompt {n}'s ids")
        original = _ids(e["original_ids"], f"prompt {n}'s original_ids") if "original_ids" in e else list(ids)
        cursor = e.get("cursor")
        if cursor is not None:
            cursor = _int(cursor, f"prompt {n}'s cursor", 0, len(ids) - 1)
        text_value = e.get("text", "")
        if not isinstance(text_value, str):
            raise ValueError(f"prompt {n}'s text is not a string")
        prompts.append(SavedPrompt(ids, original, cursor, text_value))
    index = _int(data.get("index", 0), "index", 0, len(prompts) - 1)
    mode, model = data.get("mode", "plain"), data.get("model", "")
    if not isinstance(mode, str) or not isinstance(model, str):
        raise ValueError("mode and model must be strings")
    seed = _int(data.get("seed", 0), "seed", 0, MAX_SEED)
    view = data.get("view", {})
    if not isinstance(view, dict) or not isinstance(view.get("mode_params", {}), dict):
        raise ValueError("view must be an object")
    return SavedSession(model, prompts, index, mode, seed, view=view)


def _read(path: Path) -> str:
    from explorer.inputs import read_input_text

    return read_input_text(path, "Session file", MAX_SESSION_BYTES)


def load_saved_session(path: Path | None = None) -> SavedSession:
    """Read and validate one session file (default: the newest). Raises InputError."""
    p = Path(path) if path is not None else find_session(NEWEST)
    if not p.exists():
        raise InputError(f"There is no saved session to resume ({p} does not exist).")
    try:
        saved = session_from_json(_read(p))
    except (InputError, ValueError, RecursionError) as exc:
        raise InputError(f"The saved session {p} is damaged and cannot be resumed ({exc}).") from exc
    saved.path = p
    return saved


def _session_files() -> list[Path]:
    """Every session file, newest first (the legacy session.json included)."""
    files = list(sessions_dir().glob("*.json")) if sessions_dir().is_dir() else []
    if session_file().is_file():
        files.append(session_file())
    return sorted(files, key=_mtime, reverse=True)


def find_session(name: str = NEWEST) -> Path:
    """The file ``--resume NAME`` means: the newest, a name from ``--resume list``, or a path."""
    files = _session_files()
    if name == NEWEST:
        if not files:
            raise InputError(f"There is no saved session to resume (none in {sessions_dir()}).")
        return files[0]
    for p in files:
        if name in (p.stem, p.name):
            return p
    if Path(name).expanduser().is_file():
        return Path(name).expanduser()
    raise InputError(f'There is no saved session named "{name}"; `main.py --resume list` lists them.')


def list_sessions() -> list[SessionInfo]:
    """Every saved session, newest first; a damaged one is listed with prompts=None."""
    out = []
    for p in _session_files():
        try:
            saved = session_from_json(_read(p))
        except (InputError, ValueError, RecursionError):
            out.append(SessionInfo(p.stem, p, _mtime(p), None, "", ""))
            continue
        first = saved.prompts[saved.index].text
        out.append(SessionInfo(p.stem, p, _mtime(p), len(saved.prompts), saved.model, first))
    return out


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def format_session_list(infos: list[SessionInfo]) -> str:
    """The text ``--resume list`` prints (newest first)."""
    if not infos:
        return f"No saved sessions yet (they go to {sessions_dir()})."
    lines = [f"{len(infos)} saved session(s) in {sessions_dir()}, newest first:"]
    for info in infos:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.modified))
        if info.prompts is None:
            lines.append(f"  {info.name}  {when}  (damaged: cannot be resumed)")
            continue
        text = " ".join(info.first_text.split())
        text = text[:50] + ("…" if len(text) > 50 else "")
        lines.append(f"  {info.name}  {when}  {info.prompts} prompt(s)  {info.model}  “{text}”")
    return "\n".join(lines)


def set_aside(path: Path) -> Path:
    """Rename a damaged session file to ``NAME.json.damaged`` (kept, no longer listed)."""
    for n in range(1000):
        target = path.with_name(path.name + ".damaged" + (f"-{n}" if n else ""))
        if not target.exists():
            os.replace(path, target)
            return target
    raise PersistenceError(f"Could not set the damaged session {path} aside.")


def resume(name: str = NEWEST) -> tuple[SavedSession | None, list[str]]:
    """What ``--resume [NAME]`` starts with: (saved session or None, notes for the user).

    A missing named session is an InputError (exit 2). A damaged one is set aside and the
    app starts fresh, with one sentence saying so and where the file went.
    """
    path = find_session(name)
    try:
        return load_saved_session(path), []
    except InputError as exc:
        try:
            aside = set_aside(path)
        except (OSError, PersistenceError):
            return None, [f"{exc.message} Starting a fresh session."]
        return None, [f"The saved session {path.name} is damaged ({exc.__cause__}); it was kept as "
                      f"{aside} and a fresh session was started."]
