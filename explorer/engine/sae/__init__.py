"""SAEs, transcoders and cross-layer transcoders: loading every public format, capture, features, training.

Modules: ``base`` (the Sae object and its maths), one loader per format (``saelens``,
``gemma_scope``, ``gemma_scope_2``, ``circuit_tracer``, ``clt``, ``sparsify``), ``loader``
(format detection), ``hub`` (config entries -> local files), ``hooks`` (TL hook capture on
HF models), ``features`` + ``cache`` (per-prompt activations, two-level cache), ``catalog``
(what the mode calls), ``labels`` / ``feature_index`` (feature descriptions and examples),
``train`` (training an SAE offline). Never imports Textual or Rich.
"""
