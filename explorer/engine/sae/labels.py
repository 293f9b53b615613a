"""Feature descriptions from a Neuronpedia-style explanations export (``.jsonl`` or ``.jsonl.gz``).

Each line is one JSON object with at least ``index`` (a feature number, often as a string)
and ``description``; other fields (``modelId``, ``layer``, ``explanationModelName``...) are
ignored. A folder is read as every ``*.jsonl`` / ``*.jsonl.gz`` in it (the export comes as
``batch-N.jsonl.gz``). The first description of a feature wins. Bad lines are counted and
skipped, never fatal. Stdlib only.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from explorer.engine.sae.base import SaeLoadError


@dataclass
class FeatureLabels:
    descriptions: dict[int, str] = field(default_factory=dict)
    skipped_lines: int = 0
    source: str = ""

    def get(self, index: int) -> str | None:
        return self.descriptions.get(int(index))

    def __len__(self) -> int:
        return len(self.descriptions)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.jsonl"), *path.glob("*.jsonl.gz")])
    return [path]


def load_labels(path: Path) -> FeatureLabels:
    """Read explanations from a file or a folder of files.

    Raises:
        SaeLoadError: the path does not exist or holds no readable explanation.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise SaeLoadError(f"Feature labels file {path} does not exist.")
    labels = FeatureLabels(source=str(path))
    for file in _files(path):
        opener = gzip.open if file.name.endswith(".gz") else open
        try:
            with opener(file, "rt", encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        obj = json.loads(line)
                        index = int(obj["index"])
                        text = str(obj["description"]).strip()
                    except (ValueError, KeyError, TypeError):
                        labels.skipped_lines += 1
                        continue
                    labels.descriptions.setdefault(index, text)
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise SaeLoadError(f"Feature labels file {file} could not be read ({exc}).") from exc
    if not labels.descriptions:
        raise SaeLoadError(f"{path} holds no feature explanations (JSON lines with index and description).")
    return labels
