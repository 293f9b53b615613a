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


# ----------------------------------------------------------------------------- layers
# The layer rule, top to bottom: a module may import its own package and anything in a lower
# layer, never a higher one; packages on one layer (ui, commands) never import each other.
#   entry point    cli                  (argv: the app or a command)
#   start-up       launch               (builds the session, starts the app)
#   front ends     ui | commands         (the Textual app | the one-shot commands)
#   analyses       analyses             (modes: numbers per token, no model loading)
#   engine         engine               (models, traces, decoding, SAEs)
#   files          io                   (prompt files, sessions, exports, atomic writes)
#   settings       config_sources (config --show: where each value came from), config
#   reading        inputs               (bounded reading of user files)
#   base           errors, paths (user folders, which config file), colors, schema
LAYERS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"launch"},
    {"ui", "commands"},
    {"analyses"},
    {"engine"},
    {"io"},
    {"config_sources"},
    {"config"},
    {"inputs"},
    {"errors", "paths", "colors", "schema"},
]
LAYER_OF = {pkg: depth for depth, pkgs in enumerate(LAYERS) for pkg in pkgs}


def _explorer_imports(source: str) -> set[str]:
    """Top-level explorer packages a module's source imports (anywhere: functions and TYPE_CHECKING too)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "explorer"]
        for name in names:
            parts = name.split(".")
            if parts[0] == "explorer" and len(parts) > 1:
                found.add(parts[1])
    return found


def layer_violations(package: str, source: str) -> list[str]:
    """The imports in ``source`` (a module of ``package``) that go up or sideways; empty if it obeys."""
    own = LAYER_OF[package]
    return sorted(f"{package} imports {target}" for target in _explorer_imports(source) - {package}
                  if target in LAYER_OF and LAYER_OF[target] <= own)


def test_every_top_level_package_has_a_layer():
    packages = {p.stem for p in (ROOT / "explorer").iterdir()
                if (p.suffix == ".py" or (p / "__init__.py").is_file()) and p.stem != "__init__"}
    assert packages == set(LAYER_OF), "add the new package to LAYERS (and to ARCHITECTURE.md)"


def test_no_module_imports_a_higher_layer():
    bad = []
    for path in sorted((ROOT / "explorer").rglob("*.py")):
        rel = path.relative_to(ROOT / "explorer")
        package = rel.parts[0].removesuffix(".py")
        if package == "__init__":
            continue
        bad += [f"{rel}: {v}" for v in layer_violations(package, path.read_text(encoding="utf-8"))]
    assert bad == [], "\n".join(bad)


def test_the_layer_check_catches_an_upward_import():
    assert layer_violations("engine", "def f():\n    from explorer.analyses.lens import LensMode\n") == [
        "engine imports analyses"]
    assert layer_violations("commands", "import explorer.ui.app\n") == ["commands imports ui"]
    assert layer_violations("analyses", "from explorer import launch\n") == ["analyses imports launch"]
    assert layer_violations("ui", "from explorer.engine.session import Session\n") == []
