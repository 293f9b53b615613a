"""The share keys (issue 17): C saves the screen as SVG, R writes the HTML report of the prompt.

Both write through explorer/ui/share.py into the user data directory, with names by date that
never replace an earlier file, and say the path in a notification. The report runs the model
(lazy modes, the weights hash), so it is a job of the registry (save_report takes no stop
check, so Esc does not claim to stop it); the screenshot is the screen's own SVG and is taken on the UI thread.
"""

from __future__ import annotations

from explorer.errors import ExplorerError

REPORT_BASE_MODES = ("plain", "probability")
"""Modes every report shows besides the current one: the prompt as text and each token's probability."""


class ShareKeysMixin:
    """Keys: F2 (screenshot), R (HTML report)."""

    def action_screenshot(self) -> None:
        from explorer.ui.share import save_screenshot_svg

        try:
            path = save_screenshot_svg(self)
        except OSError as exc:  # a full disk or an unwritable data directory: say so, keep running
            self.notify(f"The screenshot was not saved: {exc}.", title="Screenshot", severity="error", timeout=8)
            return
        self.notify(f"Saved the screen to {path}", title="Screenshot", timeout=8)

    def report_modes(self) -> list[str]:
        """The current mode first, then plain and probability (each once)."""
        return list(dict.fromkeys([self.session.mode, *REPORT_BASE_MODES]))

    def action_report(self) -> None:
        if not self.ready:
            return
        if not self.view_is_current():
            self.notify("Busy computing the step: key ignored.", timeout=1)
            return
        if any(job.kind == "report" for job in self.jobs.running):
            # One at a time: a report cannot be stopped midway, and two would share the model's lock.
            self.notify("A report is being written; wait for its notification.", title="Report", timeout=3)
            return
        from explorer.ui.share import save_report

        session, modes, cursor = self.session, self.report_modes(), self._cursor()
        # Each mode gets its options and the step inputs (the comparison view), as on screen.
        params = {name: {**self.step_inputs, **self.mode_params.get(name, {})} for name in modes}
        decoding = self.lab_settings if self.lab_on else None
        cache = self.result_cache

        def run(job) -> None:
            try:
                path = save_report(session, modes, cursor=cursor, params=params, decoding=decoding, cache=cache)
            except (ExplorerError, OSError) as exc:
                text = exc.message if isinstance(exc, ExplorerError) else f"{exc}."
                self.call_from_thread(self.notify, f"The report was not written: {text}", title="Report",
                                      severity="error", timeout=8)
                return
            self.call_from_thread(self.notify, f"Wrote the report to {path}", title="Report", timeout=10)

        self.jobs.start("report", "writing the HTML report", run)
