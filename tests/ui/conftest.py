"""UI test fixtures: every notification an app shows is recorded, so a test can assert on it
even after it timed out on screen (a loaded machine can take longer than its timeout)."""

from __future__ import annotations

import pytest
from textual.app import App


@pytest.fixture(autouse=True)
def record_notifications(monkeypatch):
    real = App.notify

    def notify(self, message, *args, severity="information", **kwargs):
        self.__dict__.setdefault("shown_notifications", []).append((str(message), severity))
        return real(self, message, *args, severity=severity, **kwargs)

    monkeypatch.setattr(App, "notify", notify)
