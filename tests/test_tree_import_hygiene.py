"""The tree, generation and export modules never pull in Textual or Rich."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_new_engine_modules_import_without_textual():
    code = ("import sys; import explorer.engine.tree, explorer.engine.decoding.generate, explorer.engine.chat, "
            "explorer.io.exports, explorer.commands.tree, explorer.commands.logprobs; "
            "bad = [m for m in ('textual', 'rich') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stdout + out.stderr
