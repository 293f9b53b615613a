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


def _session_ids(sessions: Path) -> tuple[list[int], list[int]] | None:
    """(ids, original ids) of the current prompt in the app's session file, once it has written one.

    The app writes its own file under sessions/ at its first change (a session left as it
    opened is not written), so the file appears with the first appended token.
    """
    try:
        [path] = sorted(sessions.glob("session-*.json"))
        data = json.loads(path.read_text(encoding="utf-8"))
        entry = data["prompts"][data.get("index", 0)]
        return [int(i) for i in entry["ids"]], [int(i) for i in entry["original_ids"]]
    except (OSError, ValueError, KeyError, IndexError):
        return None


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = dict(os.environ, TOKEN_EXPLORER_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    log_path = tmp_path / "serve.log"  # a file, not a pipe: an unread pipe fills and blocks the server
    log = log_path.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "serve", "--port", str(port),
                             "--config", str(REPO / "config.toml"), "--seed", "1"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own group: the app processes it starts go with it
    url = f"http://127.0.0.1:{port}/"

    def answers():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return proc.poll() is not None and pytest.fail(log_path.read_text(errors="replace")[-4000:])

    _wait(answers, 60, "the server to answer")
    yield url, tmp_path / "data" / "sessions"
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def test_served_app_steps_one_token(browser, server):
    url, sessions = server
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    # Only the local server may be reached (the page's web-font link to Google is refused).
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
    page.goto(url)
    if page.locator("#start").is_visible():
        page.click("#start")
    page.wait_for_selector("#terminal canvas, #terminal .xterm", timeout=30_000)
    page.click("#terminal")
    # The served app loads the bundled model first; a press that lands before its first step is
    # dropped by design, so press l until the appended token is saved (one press at a time).
    deadline = time.monotonic() + 600
    saved = None
    while saved is None and time.monotonic() < deadline:
        page.keyboard.press("l")
        try:
            saved = _wait(lambda: _session_ids(sessions), 15, "the appended token")
        except AssertionError:
            continue
    assert saved is not None, "pressing l in the browser never appended a token"
    ids, original = saved
    assert ids[: len(original)] == original and len(ids) == len(original) + 1
    context.close()
