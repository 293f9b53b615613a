"""A real llama.cpp ``llama-server`` on the bundled weights, for the remote-engine tests.

The binary is built once per machine by ``scripts/build_llama_server.py`` (``.ci/run`` does
it before the tests). Here we write the bundled model as an all-float32 GGUF (cached beside
the binary), start the server on a free loopback port with float32 attention and KV cache
on one thread (so its numbers match transformers float32), and stop it at the end. Without
the binary the tests skip, except in CI (``CI=true``), where they fail loudly: there they
must run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from build_llama_server import binary_path  # noqa: E402

from tests.remote.gguf_f32 import write_f32_copy  # noqa: E402

SERVED_NAME = "smollm2-f32"


def _need_binary() -> Path:
    binary = binary_path()
    if binary.exists():
        return binary
    message = (f"llama-server is not built at {binary}; build it once with "
               "`uv run python scripts/build_llama_server.py` (about 1,000 CPU-seconds).")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " In CI the remote tests must run, not skip.", pytrace=False)
    pytest.skip(message)


def f32_gguf() -> Path:
    """The bundled model as an all-float32 GGUF, written once next to the server binary."""
    from explorer.engine.loading import bundled_gguf_path

    source = bundled_gguf_path()
    stat = source.stat()
    target = binary_path().parent.parent / f"{source.stem}-{stat.st_size}-f32.gguf"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_f32_copy(source, target)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One running llama-server process; ``url`` is the model source to give the explorer."""

    def __init__(self, *extra: str) -> None:
        binary = _need_binary()
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"openai+{self.root}/v1"
        cmd = [str(binary), "-m", str(f32_gguf()), "--host", "127.0.0.1", "--port", str(self.port),
               "--alias", SERVED_NAME, "-fa", "off", "-ctk", "f32", "-ctv", "f32", "-t", "1",
               "-c", "4096", "-np", "2", *extra]
        # The server logs every request to stderr. A pipe nobody reads fills after ~64 KB and
        # then blocks the server mid-request (it stopped answering late in full runs), so the
        # log goes to a file, read back only to explain a failure.
        self.log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        self._wait_ready()

    def log_tail(self, chars: int = 2000) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")[-chars:]

    def _wait_ready(self, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.log_tail()
                raise RuntimeError(f"llama-server exited with code {self.proc.returncode}:\n{err}")
            try:
                with urllib.request.urlopen(f"{self.root}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama-server did not become ready within {limit:g} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def llama_server():
    server = LlamaServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def remote_engine(llama_server):
    from explorer.engine.remote.open import open_remote_engine

    engine = open_remote_engine(llama_server.url, served_model=SERVED_NAME, tokenizer="bundled")
    yield engine
    engine.close()
