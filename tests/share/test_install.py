"""`uv tool install .` for real, into a temporary tool directory: the command, its version, the shipped files.

Slow (a fresh environment, ~1 min from uv's cache) and it loads the bundled model once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on the PATH")
    root = tmp_path_factory.mktemp("tool")
    env = dict(os.environ, UV_TOOL_DIR=str(root / "tools"), UV_TOOL_BIN_DIR=str(root / "bin"))
    done = subprocess.run([uv, "tool", "install", str(REPO), "--overrides", str(REPO / "install-overrides.txt")],
                          env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "bin" / "token-explorer", root


def _run(exe, *args, cwd, env_extra=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", **(env_extra or {}))
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_version_names_torch_and_transformers(installed, tmp_path):
    exe, _root = installed
    out = _run(exe, "--version", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.startswith("token-explorer 0.") and "torch " in out.stdout and "transformers " in out.stdout


def test_shipped_config_and_sae_are_found_outside_the_checkout(installed, tmp_path):
    exe, root = installed
    out = _run(exe, "config", "--show", "--json", cwd=tmp_path,
               env_extra={"TOKEN_EXPLORER_CONFIG_DIR": str(tmp_path / "none")})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    shipped = Path(data["file"])
    assert data["why"] == "the shipped default" and shipped.is_relative_to(root)
    sae = {s["key"]: s["value"] for s in data["settings"] if s["section"] == "sae.1"}
    assert (shipped.parent / sae["path"] / "sae_weights.safetensors").is_file()


def test_installed_command_runs_the_bundled_model(installed, tmp_path):
    exe, _root = installed
    out = _run(exe, "next", "--prompt", "The capital of France is", "--top", "3", "--json", cwd=tmp_path,
               env_extra={"TOKEN_EXPLORER_DATA_DIR": str(tmp_path / "d")})
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    assert data["schema_version"] == 1 and data["candidates"][0]["token"] == " Paris"
    bad = _run(exe, "report", "--prompt", "x", "--mode", "nope", "--out", "r.html", cwd=tmp_path)
    assert bad.returncode == 2 and "Unknown mode" in bad.stderr and "Traceback" not in bad.stderr
