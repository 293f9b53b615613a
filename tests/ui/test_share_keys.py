"""Pilot tests of the share keys (issue 17): C saves the screen as SVG, R writes the HTML report.

Files go to the user data directory (a temporary one in tests, tests/conftest.py), named by
date, and a second press never replaces the first file.
"""

from __future__ import annotations

import os
from pathlib import Path

from explorer.ui.app import ExplorerApp
from tests.ui.helpers import notifications, settle

SIZE = (120, 40)


def _data() -> Path:
    return Path(os.environ["TOKEN_EXPLORER_DATA_DIR"])


async def test_C_saves_svg_screenshots_never_overwriting(tiny_session):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await pilot.press("f2")
        await settle(app, pilot)
        files = list((_data() / "screenshots").glob("screenshot-*.svg"))
        assert len(files) == 2  # same second: the second one is "-1", the first is kept
        for f in files:
            text = f.read_text()
            assert text.lstrip().startswith("<svg") and "Token" in text and "Explorer" in text
            assert any(str(f) in n for n in notifications(app))


async def test_R_writes_the_report_of_the_current_prompt(tiny_session):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("e")  # current mode: the one after plain
        await settle(app, pilot)
        mode = app.session.mode
        assert app.report_modes() == list(dict.fromkeys([mode, "plain", "probability"]))
        await pilot.press("R")
        await settle(app, pilot, rounds=20)
        (first,) = (_data() / "reports").glob("report-*.html")
        html = first.read_text()
        await pilot.press("R")
        await settle(app, pilot, rounds=20)
        files = set((_data() / "reports").glob("report-*.html"))
        assert len(files) == 2 and first.read_text() == html  # the second report did not replace the first
        words = [app.session.wrapper.token_text(t).text.strip() for t in app.session.current.ids]
        assert all(w in html for w in words if w)
        assert "<script src" not in html and "<link" not in html  # self-contained: nothing fetched
        shown = [n for n in notifications(app) if n.startswith("Wrote the report to ")]
        assert {Path(n.removeprefix("Wrote the report to ")) for n in shown} == files
        assert not notifications(app, "error")
