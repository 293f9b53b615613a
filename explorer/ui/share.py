"""What the app's share keys do: save the screen as SVG, save an HTML report of the current prompt.

The keys themselves are wired in the app (key map); these functions are what they call.
Both write files named by date that never replace an earlier one.
"""

from __future__ import annotations

from pathlib import Path

from explorer.io.dated import write_new_dated
from explorer.paths import data_dir


def screenshots_dir() -> Path:
    return data_dir() / "screenshots"


def reports_dir() -> Path:
    return data_dir() / "reports"


def save_screenshot_svg(app, directory: Path | None = None) -> Path:
    """Save the current screen as ``screenshot-DATE.svg`` (Textual's own SVG screenshot).

    ``App.save_screenshot`` writes ``App.export_screenshot()`` to a path and would replace a
    file of the same name; here the same SVG goes through the never-overwrite writer.
    """
    svg = app.export_screenshot(title=app.title)
    return write_new_dated(directory or screenshots_dir(), "screenshot", ".svg", svg)


def save_report(session, modes: list[str], *, cursor: int | None, params: dict[str, dict] | None = None,
                decoding=None, cache=None, directory: Path | None = None) -> Path:
    """Compute the report of the current prompt and save it as ``report-DATE.html``.

    Runs the model for lazy modes and hashes the weights (seconds): call it from a
    worker thread (group "model"), never on the UI thread.

    Args:
        session: the app's Session.
        modes: the modes to show (e.g. ``[session.mode]``, or every mode already computed).
        cursor: the cursor token (None = the last).
        params: the app's ``mode_params``.
        decoding: the decoding lab's settings while the lab is on, else None.
        cache: the app's ResultCache, so modes already on screen are not recomputed.
        directory: where to write (default ``<user data dir>/reports``).
    """
    from explorer.analyses.report_data import build_report
    from explorer.io.html_report import save_new_report

    data = build_report(session, modes, cursor=cursor, params=params, decoding=decoding, cache=cache)
    return save_new_report(data, directory or reports_dir())
