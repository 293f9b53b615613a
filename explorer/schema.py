"""Version numbers of the files the explorer writes for other tools. Stdlib only, no imports.

Every export carries ``"schema_version"``. It starts at 1 and goes up by one whenever a
field is removed, renamed or changes meaning; adding a field does not change it (readers
ignore fields they do not know). Units of ``prob`` differ between formats on purpose (the
seed notebooks' own choices) and are documented in the README's "Export formats" section.
"""

TREE_SCHEMA_VERSION = 1
"""Token-tree JSON (`tree --out`, key s on the tree screen): ``prob`` is a probability in [0, 1]."""

LOGPROBS_SCHEMA_VERSION = 1
"""Logprob JSONL records (`logprobs --out`, key X): ``prob`` is a percentage in [0, 100]."""

ANALYZE_SCHEMA_VERSION = 1
"""`analyze --json`: ``value`` is in the mode's own unit (``extra.unit``)."""

NEXT_SCHEMA_VERSION = 1
"""`next --json`: ``prob`` is a probability in [0, 1]."""

REPORT_SCHEMA_VERSION = 1
"""The HTML report's embedded data (``<script id="report-data">``): ``prob`` in [0, 1]."""
