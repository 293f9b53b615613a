"""The cache of converted GGUF weights: keyed by the GGUF's content, verified before use.

Why each rule exists (issue 14):

* **Key = sha256 of the GGUF's bytes** (plus the transformers version and our format
  version), not its path: every checkout of the project shares one 517 MB entry for the
  bundled model. Hashing a GGUF once per file version is remembered in ``gguf-hashes.json``
  (by path, size, mtime and inode), so later starts do not re-read it.
* **Every file of an entry is verified** against the sha256 recorded at conversion
  (``converted.json``). A full check reads the files (about 0.3 s for 517 MB on an idle
  machine); it is repeated whenever a file's (size, mtime, ctime, inode) stamp differs from
  the one of the last successful check. Any write to a file changes its ctime, which no
  user tool can set back, so bytes overwritten in place are always caught; an entry that
  fails is deleted and rebuilt (a wrong-structure tokenizer.json or a stub config.json
  included, which otherwise load wrongly or hang).
* **Conversion writes into ``NAME.tmp-PID-XXXX``** and renames it into place; temporaries
  left by a killed conversion (their process is gone) are removed on the next conversion,
  and so are entries of an older format (keyed by path, 517 MB per checkout) unused for an hour.

The disk budget and LRU eviction of entries live in explorer/io/cache_budget.py. Never
imports Textual or Rich.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from explorer.paths import cache_dir

FORMAT_VERSION = 2  # 2: content-keyed entries with per-file hashes
MARKER = "converted.json"
VERIFIED = "verified.json"
HASH_INDEX = "gguf-hashes.json"
CHUNK = 1 << 20

Progress = Callable[[str], None]
Dequantize = Callable[[Path], tuple]
"""(gguf path) -> (model, tokenizer) in float32; transformers' GGUF reader by default."""


def converted_dir() -> Path:
    return cache_dir() / "converted"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data) -> None:
    from explorer.io.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1))


def gguf_digest(gguf: Path) -> str:
    """sha256 of the GGUF's bytes, remembered per file version so it is computed once."""
    gguf = Path(gguf).resolve()
    index_path = converted_dir() / HASH_INDEX
    index = _read_json(index_path)
    index = index if isinstance(index, dict) else {}
    stamp = _stamp(gguf)
    known = index.get(str(gguf))
    if isinstance(known, dict) and known.get("stamp") == stamp and isinstance(known.get("sha256"), str):
        return known["sha256"]
    digest = file_sha256(gguf)
    index[str(gguf)] = {"stamp": stamp, "sha256": digest}
    try:
        converted_dir().mkdir(parents=True, exist_ok=True)
        _write_json(index_path, index)
    except Exception:  # the index only saves time; a read-only cache still works
        pass
    return digest


def entry_for(gguf: Path) -> Path:
    """The cache directory for this GGUF's content, with this transformers version."""
    import transformers

    key = f"{gguf_digest(gguf)}|{transformers.__version__}|{FORMAT_VERSION}"
    return converted_dir() / f"{Path(gguf).stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def verify_entry(entry: Path) -> str | None:
    """None when every file matches its recorded hash; else why the entry cannot be used."""
    info = _read_json(entry / MARKER)
    if not isinstance(info, dict) or info.get("format") != FORMAT_VERSION or not isinstance(info.get("sha256"), dict):
        return "no record of a finished conversion"
    verified = _read_json(entry / VERIFIED)
    verified = verified if isinstance(verified, dict) else {}
    stamps = {}
    for name, digest in info["sha256"].items():
        path = entry / name
        if not path.is_file():
            return f"{name} is missing"
        stamps[name] = _stamp(path)
        if verified.get(name) == stamps[name]:
            continue  # unchanged since it last matched its hash
        if file_sha256(path) != digest:
            return f"{name} does not match the hash recorded at conversion"
    if stamps != verified:
        try:
            _write_json(entry / VERIFIED, stamps)
        except Exception:  # only saves time next start
            pass
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temporaries(directory: Path | None = None) -> list[Path]:
    """Remove ``*.tmp-PID-*`` conversion folders whose process no longer runs."""
    directory = directory or converted_dir()
    removed = []
    for tmp in directory.glob("*.tmp-*") if directory.is_dir() else []:
        tail = tmp.name.rsplit(".tmp-", 1)[1]
        pid_text = tail.split("-", 1)[0]
        if pid_text.isdigit() and _pid_alive(int(pid_text)) and int(pid_text) != os.getpid():
            continue  # another conversion is running right now
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    return removed


STALE_FORMAT_SECONDS = 3600
"""An entry of an older format unused this long is deleted (an older copy of the app may
still be reading a recently used one)."""


def clean_old_formats(directory: Path | None = None) -> list[Path]:
    """Remove entries written by an older format (they are never read again), once unused for an hour."""
    import time

    directory = directory or converted_dir()
    removed = []
    for entry in directory.iterdir() if directory.is_dir() else []:
        if not entry.is_dir() or ".tmp-" in entry.name:
            continue
        info = _read_json(entry / MARKER)
        if isinstance(info, dict) and info.get("format") == FORMAT_VERSION:
            continue
        try:
            idle = time.time() - entry.stat().st_mtime
        except OSError:
            continue
        if idle > STALE_FORMAT_SECONDS:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _dequantize(gguf: Path) -> tuple:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()  # our progress line, not bars over the app
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    return model, tokenizer


def _write_entry(tmp: Path, model, tokenizer, source_name: str) -> None:
    from safetensors.torch import save_file

    state = model.state_dict()
    if getattr(model.config, "tie_word_embeddings", False):
        # Tied weights share memory; safetensors refuses duplicates, and
        # from_pretrained re-ties lm_head to the embedding on load.
        for key in getattr(model, "_tied_weights_keys", None) or ["lm_head.weight"]:
            state.pop(key, None)
        state.pop("lm_head.weight", None)
    state = {k: v.detach().contiguous() for k, v in state.items()}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt", "source": source_name})
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the weights we write are plain float32
    config["dtype"] = "float32"
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer.save_pretrained(str(tmp))
    hashes = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    (tmp / MARKER).write_text(json.dumps({"format": FORMAT_VERSION, "source": source_name, "sha256": hashes}))


def convert_gguf(gguf: Path, progress: Progress | None = None, dequantize: Dequantize | None = None) -> Path:
    """The verified cache entry for ``gguf``, converting (or rebuilding) it when needed."""
    gguf = Path(gguf)
    entry = entry_for(gguf)
    if entry.is_dir():
        problem = verify_entry(entry)
        if problem is None:
            touch(entry)
            return entry
        if progress:
            progress(f"Rebuilding the converted model: {problem}…")
        shutil.rmtree(entry, ignore_errors=True)
    clean_stale_temporaries(entry.parent)
    clean_old_formats(entry.parent)
    if progress:
        progress(f"Converting {gguf.name} to safetensors (first start only, ~30 s)…")
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{entry.name}.tmp-{os.getpid()}-", dir=entry.parent))
    try:
        model, tokenizer = (dequantize or _dequantize)(gguf)
        _write_entry(tmp, model, tokenizer, gguf.name)
        del model
        try:
            os.replace(tmp, entry)
        except OSError:
            if verify_entry(entry) is not None:  # not another process's finished copy
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_json(entry / VERIFIED, {name: _stamp(entry / name) for name in _read_json(entry / MARKER)["sha256"]})
    touch(entry)
    return entry


def touch(entry: Path) -> None:
    """Mark an entry as just used (the LRU order of explorer/io/cache_budget.py)."""
    try:
        os.utime(entry)
    except OSError:
        pass


def forget(entry: Path) -> None:
    """Delete an entry (its weights gave non-finite logits): the next load rebuilds it."""
    shutil.rmtree(entry, ignore_errors=True)
