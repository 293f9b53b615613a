"""`main.py serve` in headless Chromium: the page opens the real app on the bundled model and steps a token.

The served app autosaves its session after every change, so the test reads the session file
to see what the app did (xterm.js paints on a canvas, which has no text to read).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def _session_ids(path: Path) -> list[int] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [int(i) for i in data["prompts"][data.get("index", 0)]["ids"]]
    except (OSError, ValueError, KeyError, IndexError):
        return None


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = dict(os.environ, TOKEN_EXPLORER_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "serve", "--port", str(port),
                             "--config", str(REPO / "config.toml"), "--seed", "1"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own group: the app processes it starts go with it
    url = f"http://127.0.0.1:{port}/"

    def answers():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return proc.poll() is not None and pytest.fail(proc.stdout.read().decode(errors="replace"))

    _wait(answers, 60, "the server to answer")
    yield url, tmp_path / "data" / "session.json"
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_served_app_steps_one_token(browser, server):
    url, session_file = server
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    # Only the local server may be reached (the page's web-font link to Google is refused).
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
    page.goto(url)
    if page.locator("#start").is_visible():
        page.click("#start")
    page.wait_for_selector("#terminal canvas, #terminal .xterm", timeout=30_000)
    # The app writes the session once the model is loaded and the first step is requested.
    before = _wait(lambda: _session_ids(session_file), 240, "the app to load the bundled model")
    page.click("#terminal")
    for _ in range(6):  # a press that lands while the first step is still computing is dropped by design
        page.keyboard.press("l")
        try:
            after = _wait(lambda: (ids := _session_ids(session_file)) and len(ids) > len(before) and ids, 15,
                          "the appended token")
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("pressing l in the browser never appended a token")
    assert after[: len(before)] == before and len(after) == len(before) + 1
    context.close()
