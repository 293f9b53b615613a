"""SaeCatalog: the configured ``[[sae]]`` entries of one model, loaded lazily, with labels and a cache.

This is what the features mode and ``main.py sae features`` talk to::

    catalog = catalog_for(config, wrapper)        # AnalysisUnavailable when SAEs are off / none configured
    catalog.layers                                 # the configured layers, in order (p cycles them)
    pf = catalog.features(ids, layer)              # PromptFeatures (two-level cache)
    catalog.label(layer, feature)                  # Neuronpedia description, else the index's top tokens
    catalog.contexts(layer, feature)               # top-activating contexts from the feature index

Loading checks the SAE against the model (input width of its hook, output width, the layer
the hook names) and says what does not fit in one sentence (SaeLoadError). A failed entry
does not stop other layers from working. Never imports Textual or Rich.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from explorer.config import Config, SaeEntry
from explorer.engine.sae.base import Sae, SaeLoadError
from explorer.engine.sae.cache import FeatureCache, cache_key
from explorer.engine.sae.formats.clt import CrossLayerTranscoder
from explorer.engine.sae.feature_index import INDEX_FILE, Context, FeatureIndex
from explorer.engine.sae.features import (Contribution, PromptFeatures, compute_clt_features, compute_features,
                                          cross_layer_contributions)
from explorer.engine.sae.hook_names import parse_hook
from explorer.engine.sae.labels import FeatureLabels, load_labels
from explorer.errors import AnalysisUnavailable

_fingerprints: dict[tuple, str] = {}
_fp_lock = threading.Lock()


def fingerprint(path: Path) -> str:
    """A content hash of an SAE's weights (memoised per path, size and mtime).

    A file in the Hugging Face cache is a link to a blob named by its sha256, which is used
    as is; a folder of many files (a CLT) is hashed by file names, sizes and mtimes plus the
    content of its small config files, so a multi-gigabyte CLT is not read to build a key.
    """
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stat_key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    with _fp_lock:
        if stat_key in _fingerprints:
            return _fingerprints[stat_key]
    h = hashlib.sha256()
    for p in files:
        real = Path(os.path.realpath(p))
        if real.parent.name == "blobs" and len(real.name) == 64:
            h.update(real.name.encode())
        elif not path.is_dir() or p.stat().st_size < 64 * 1024 * 1024 or p.suffix in (".json", ".yaml"):
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}".encode())
    digest = h.hexdigest()
    with _fp_lock:
        _fingerprints[stat_key] = digest
    return digest


def feature_cache_dir() -> Path:
    """Where computed feature activations are cached on disk (safe to delete)."""
    from explorer.paths import cache_dir

    return cache_dir() / "sae_features"


def _hook_width(wrapper, hook: str) -> int:
    cfg = wrapper.config
    _, site = parse_hook(hook)
    if site == "attn.hook_z":
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return int(cfg.num_attention_heads * head_dim)
    return int(cfg.hidden_size)


@dataclass
class LoadedEntry:
    entry: SaeEntry
    model: Sae | CrossLayerTranscoder
    path: Path
    fingerprint: str
    labels: FeatureLabels | None
    index: FeatureIndex | None
    notes: tuple[str, ...] = ()

    @property
    def is_clt(self) -> bool:
        return isinstance(self.model, CrossLayerTranscoder)

    @property
    def d_sae(self) -> int:
        return self.model.d_tc if self.is_clt else self.model.d_sae

    def describe(self) -> str:
        m = self.model
        if self.is_clt:
            return f"cross-layer transcoder, {m.d_tc} features per layer, {m.n_layers} layers ({self.path})"
        kind = "skip transcoder" if m.W_skip is not None else "transcoder" if m.is_transcoder else "SAE"
        act = m.activation + (f" k={m.k}" if m.k else "")
        return f"{m.format} {kind}, {m.d_sae} features, {act}, reads {m.hook_in} ({self.path})"


class SaeCatalog:
    """The SAEs of a config for one model.

    Args:
        config: the checked configuration ([model] enable_sae, [[sae]] entries, cache_size).
        wrapper: the model the SAEs read.
        base_dir: what relative ``path`` entries are relative to (default: the config file's folder).
        cache: the feature cache (default: memory LRU of cache_size + the user cache directory).
    """

    def __init__(self, config: Config, wrapper, base_dir: Path | None = None, cache: FeatureCache | None = None) -> None:
        if not config.model.enable_sae:
            raise AnalysisUnavailable("SAE features are off: set enable_sae = true under [model] in the config "
                                      "and add an [[sae]] entry.")
        if not config.sae:
            raise AnalysisUnavailable("No SAE is configured: add an [[sae]] entry (layer and path or repo_id) "
                                      "to the config, e.g. one trained with `main.py sae train`.")
        self.config = config
        self.wrapper = wrapper
        src = Path(config.source)
        self.base_dir = base_dir or (src.parent if src.is_file() else Path.cwd())
        if cache is None:
            cache = FeatureCache(config.display.cache_size, feature_cache_dir())
        self.cache = cache
        self.entries: dict[int, SaeEntry] = {}
        for e in config.sae:
            self.entries.setdefault(int(e.layer), e)  # the first entry of a layer wins
        self._loaded: dict[int, LoadedEntry] = {}
        self._lock = threading.RLock()

    @property
    def layers(self) -> list[int]:
        return sorted(self.entries)

    def next_layer(self, current: int | None) -> int:
        """The layer after ``current`` in the configured order, wrapping around (key p)."""
        layers = self.layers
        if current not in layers:
            return layers[0]
        return layers[(layers.index(current) + 1) % len(layers)]

    # -------------------------------------------------------------- loading
    def load(self, layer: int) -> LoadedEntry:
        """Load (once) and check the SAE configured for ``layer``. Raises SaeLoadError / AnalysisUnavailable."""
        with self._lock:
            if layer in self._loaded:
                return self._loaded[layer]
            entry = self.entries.get(int(layer))
            if entry is None:
                raise AnalysisUnavailable(f"No SAE is configured for layer {layer}; configured layers: "
                                          f"{', '.join(map(str, self.layers))}.")
            loaded = load_entry(entry, self.wrapper, self.base_dir)
            self._loaded[layer] = loaded
            return loaded

    # -------------------------------------------------------------- reading
    def features(self, ids, layer: int, should_stop=None) -> PromptFeatures:
        """Feature activations of every token of ``ids`` at ``layer`` (cached in memory and on disk).

        ``should_stop`` is polled between the model's layers while they are computed (not cached)."""
        loaded = self.load(layer)
        hook = loaded.model.hook_in(layer) if loaded.is_clt else loaded.model.hook_in
        key = cache_key(self.wrapper.name, loaded.fingerprint, hook, layer, ids)
        pf = self.cache.get(key)
        if pf is None:
            if loaded.is_clt:
                pf = compute_clt_features(self.wrapper, loaded.model, list(ids), layer, should_stop)
            else:
                pf = compute_features(self.wrapper, loaded.model, list(ids), layer, should_stop)
            self.cache.put(key, pf)
        return pf

    def label(self, layer: int, feature: int) -> str | None:
        loaded = self.load(layer)
        if loaded.labels is not None:
            text = loaded.labels.get(feature)
            if text:
                return text
        if loaded.index is not None:
            return loaded.index.summary(feature)
        return None

    def contexts(self, layer: int, feature: int, limit: int = 5) -> list[Context]:
        loaded = self.load(layer)
        return loaded.index.top_contexts(feature, limit) if loaded.index is not None else []

    def cross_layer(self, ids, layer: int, t: int) -> tuple[list[Contribution], float]:
        """CLT only: earlier-layer features writing into ``layer``'s MLP output at token ``t``."""
        loaded = self.load(layer)
        if not loaded.is_clt:
            raise AnalysisUnavailable(f"The SAE at layer {layer} is not a cross-layer transcoder; "
                                      "--cross_layer needs one (format circuit_tracer_clt).")
        return cross_layer_contributions(loaded.model, self.features(ids, layer), t)


def load_entry(entry: SaeEntry, wrapper, base_dir: Path) -> LoadedEntry:
    """Fetch, load and check one ``[[sae]]`` entry against the model."""
    from explorer.engine.sae.hub import entry_files
    from explorer.engine.sae.formats.loader import load_sae

    path = entry_files(entry, base_dir)
    where = f"{entry.repo_id or ''}/{entry.filename or ''}"
    model = load_sae(path, format=entry.format, layer=entry.layer, hook=entry.hook, where=where)
    n_layers = wrapper.n_layers
    if isinstance(model, CrossLayerTranscoder):
        if model.n_layers != n_layers:
            raise SaeLoadError(f"{model.source}: the cross-layer transcoder has {model.n_layers} layers, "
                               f"the model {n_layers}.")
        if model.d_model != wrapper.config.hidden_size:
            raise SaeLoadError(f"{model.source}: W_enc_0 is [{model.d_tc}, {model.d_model}], expected "
                               f"[d_tc, {wrapper.config.hidden_size}] for this model.")
        if not 0 <= entry.layer < n_layers:
            raise SaeLoadError(f"[[sae]] layer {entry.layer} is outside the model's layers 0..{n_layers - 1}.")
    else:
        try:
            L_in, _ = parse_hook(model.hook_in)
            parse_hook(model.hook_out)
        except ValueError as exc:
            raise SaeLoadError(f"{model.source}: {exc}.") from exc
        if L_in != entry.layer:
            raise SaeLoadError(f"{model.source} reads {model.hook_in}, but its [[sae]] entry says layer "
                               f"{entry.layer}; fix layer or hook in the config.")
        if not 0 <= L_in < n_layers:
            raise SaeLoadError(f"{model.source} reads {model.hook_in}, but the model has layers 0..{n_layers - 1}.")
        d_in, d_out = _hook_width(wrapper, model.hook_in), _hook_width(wrapper, model.hook_out)
        if model.d_in != d_in:
            raise SaeLoadError(f"{model.source}: the SAE reads {model.d_in}-dimensional inputs but {model.hook_in} "
                               f"of {wrapper.name} is {d_in}-dimensional (expected W_enc [{d_in}, d_sae]).")
        if model.d_out != d_out:
            raise SaeLoadError(f"{model.source}: the SAE writes {model.d_out}-dimensional outputs but "
                               f"{model.hook_out} of {wrapper.name} is {d_out}-dimensional "
                               f"(expected W_dec [d_sae, {d_out}]).")
        device = wrapper.device if wrapper.device not in ("multi",) else "cpu"
        model = model.to(device)
    labels = None
    if entry.labels:
        lp = Path(entry.labels).expanduser()
        candidates = [lp] if lp.is_absolute() else [base_dir / lp, (path if path.is_dir() else path.parent) / lp]
        found = next((c for c in candidates if c.exists()), candidates[0])
        labels = load_labels(found)
    folder = path if path.is_dir() else path.parent
    index = FeatureIndex(folder / INDEX_FILE) if (folder / INDEX_FILE).is_file() else None
    return LoadedEntry(entry, model, path, fingerprint(path), labels, index)


_catalogs: dict[tuple, SaeCatalog] = {}
_catalog_lock = threading.Lock()


def catalog_for(config: Config | None, wrapper) -> SaeCatalog:
    """The shared catalog of ``config``'s SAEs for ``wrapper`` (built once per config and model).

    Raises:
        AnalysisUnavailable: no config, SAEs switched off, or none configured.
    """
    if config is None:
        raise AnalysisUnavailable("SAE features need the configuration ([model] enable_sae and [[sae]] entries).")
    key = (id(wrapper), config.model.enable_sae, config.sae, config.source, config.display.cache_size)
    with _catalog_lock:
        cat = _catalogs.get(key)
        if cat is None or cat.wrapper is not wrapper:
            cat = SaeCatalog(config, wrapper)
            _catalogs[key] = cat
        return cat
