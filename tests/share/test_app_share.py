"""The app's share functions: an SVG of the screen and an HTML report, never overwriting."""

from __future__ import annotations

from explorer.ui.app import ExplorerApp
from explorer.ui.share import save_report, save_screenshot_svg


async def test_screenshot_and_report_from_a_running_app(tiny_session, tmp_path):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        first = save_screenshot_svg(app, tmp_path)
        second = save_screenshot_svg(app, tmp_path)
        assert first != second and first.suffix == ".svg"
        svg = first.read_text(encoding="utf-8")
        assert svg.startswith("<svg") and "Prompt" in svg  # the status bar is in the picture
        report = save_report(app.session, ["probability", "sae_features"], cursor=None,
                             params=app.mode_params, cache=app.result_cache, directory=tmp_path)
        html = report.read_text(encoding="utf-8")
        assert report.name.startswith("report-") and 'id="mode-probability"' in html
