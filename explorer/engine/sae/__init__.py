"""SAEs, transcoders and cross-layer transcoders: loading every public format, capture, features, training.

Modules: ``base`` (the Sae object and its maths); ``formats/`` (one loader per file format:
``saelens``, ``gemma_scope``, ``gemma_scope_2``, ``circuit_tracer``, ``clt``, ``sparsify``,
with ``loader`` for format detection and ``files`` for safe file reading); ``hub`` (config
entries -> local files), ``hooks`` (TL hook capture on HF models), ``features`` + ``cache``
(per-prompt activations, two-level cache), ``catalog`` (what the mode calls), ``labels`` /
``feature_index`` (feature descriptions and examples); ``training/`` (``train``: training an
SAE offline, ``data``: where its text comes from). Never imports Textual or Rich.
"""
