"""The engine, the analyses and the file layer never import Textual or Rich."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_headless_packages_do_not_import_textual_or_rich():
    code = (
        "import sys, pkgutil, importlib\n"
        "import explorer.engine, explorer.analyses, explorer.io, explorer.commands\n"
        "for pkg in (explorer.engine, explorer.analyses, explorer.io, explorer.commands):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "import explorer.config, explorer.errors, explorer.cli\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported: {out.stdout.strip()}"


def test_ui_import_does_not_import_torch():
    """The first screen must not wait for torch: the UI's import path stays light."""
    code = "import sys, explorer.ui.app, explorer.launch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
