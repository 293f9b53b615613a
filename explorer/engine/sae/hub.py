"""Turning an ``[[sae]]`` entry into local files: a path beside the config, or the hub cache.

Hub files come through ``huggingface_hub.hf_hub_download`` (the local cache first). Formats
that need a sibling file (SAELens' and sparsify's ``cfg.json``, circuit-tracer's
``config.yaml``) get it fetched too. Without the hub, a file that is not cached yet is one
sentence, not a traceback. Never imports Textual or Rich.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from explorer.config import SaeEntry
from explorer.engine.sae.base import SaeLoadError


def _download(repo_id: str, filename: str, revision: str | None, optional: bool = False) -> Path | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision))
    # LocalEntryNotFoundError subclasses EntryNotFoundError: catch it first.
    except LocalEntryNotFoundError:
        if optional:
            return None
        raise SaeLoadError(
            f"SAE file {filename} of {repo_id} is not in the local Hugging Face cache and the hub cannot "
            "be reached; download it once with the hub online, or point the [[sae]] entry at a local path."
        ) from None
    except EntryNotFoundError:
        if optional:
            return None
        raise SaeLoadError(f"The hub repository {repo_id} has no file {filename}"
                           f"{' at revision ' + revision if revision else ''}.") from None
    except GatedRepoError:
        raise SaeLoadError(f"The hub repository {repo_id} is gated: accept its licence on huggingface.co "
                           "and set HF_TOKEN.") from None
    except RepositoryNotFoundError:
        raise SaeLoadError(f"The hub repository {repo_id} does not exist or is private.") from None
    except RevisionNotFoundError:
        raise SaeLoadError(f"The hub repository {repo_id} has no revision {revision}.") from None
    except OSError as exc:
        raise SaeLoadError(f"Could not download {filename} from {repo_id}: {exc}.") from exc


def fetch_hub_entry(entry: SaeEntry) -> Path:
    """Download (or find in the cache) what a hub ``[[sae]]`` entry names; return the local path.

    For a folder-based format the returned path is the folder holding the downloaded files.
    """
    repo, rev = entry.repo_id, entry.revision
    name = (entry.filename or "").strip("/")
    fmt = entry.format
    if not name:
        if fmt == "circuit_tracer" or fmt is None:
            name = f"layer_{entry.layer}.safetensors"
        else:
            raise SaeLoadError(f"The [[sae]] entry for {repo} needs a filename (the weights file or its folder).")
    p = PurePosixPath(name)
    folder = "" if str(p.parent) == "." else str(p.parent)

    def sibling(n: str) -> str:
        return f"{folder}/{n}" if folder else n

    if p.suffix in (".safetensors", ".npz"):
        local = _download(repo, name, rev)
        if p.name == "sae_weights.safetensors" or fmt == "saelens":
            _download(repo, sibling("cfg.json"), rev)
            return local.parent
        if p.name == "sae.safetensors" or fmt == "sparsify":
            _download(repo, sibling("cfg.json"), rev)
            return local.parent
        if fmt in (None, "circuit_tracer") and p.name.startswith("layer_"):
            _download(repo, sibling("config.yaml"), rev, optional=True) or _download(repo, "config.yaml", rev, optional=True)
        return local
    # A folder: fetch the files its format needs.
    if fmt == "sparsify":
        _download(repo, sibling_of(name, "sae.safetensors"), rev)
        return _download(repo, sibling_of(name, "cfg.json"), rev).parent
    if fmt == "circuit_tracer_clt":
        cfg = _download(repo, sibling_of(name, "config.yaml"), rev, optional=True)
        i = 0
        while _download(repo, sibling_of(name, f"W_enc_{i}.safetensors"), rev, optional=(i > 0)):
            _download(repo, sibling_of(name, f"W_dec_{i}.safetensors"), rev)
            i += 1
        return (cfg or _download(repo, sibling_of(name, "W_enc_0.safetensors"), rev)).parent
    if fmt == "gemma_scope":
        return _download(repo, sibling_of(name, "params.npz"), rev)
    if fmt == "gemma_scope_2":
        return _download(repo, sibling_of(name, "params.safetensors"), rev)
    # SAELens folder (the default for a folder name)
    _download(repo, sibling_of(name, "sae_weights.safetensors"), rev)
    return _download(repo, sibling_of(name, "cfg.json"), rev).parent


def sibling_of(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def local_entry_path(entry: SaeEntry, base_dir: Path) -> Path:
    """The local file or folder of a ``path =`` entry (relative paths are relative to the config file)."""
    p = Path(entry.path).expanduser()
    if not p.is_absolute():
        p = base_dir / p
    if entry.filename:
        p = p / entry.filename
    if not p.exists():
        raise SaeLoadError(f"SAE path {p} does not exist; train one with `main.py sae train` or fix the [[sae]] entry.")
    return p


def entry_files(entry: SaeEntry, base_dir: Path) -> Path:
    """Local path of an entry's weights (downloading hub entries). Raises SaeLoadError."""
    if entry.path is not None:
        return local_entry_path(entry, base_dir)
    return fetch_hub_entry(entry)
