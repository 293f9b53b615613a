"""What every UI test needs: wait for the app to be idle, and read what the user sees.

Tests assert on the screen (the text of a widget, the status bar, the notifications shown)
rather than on the app's private state, so a refactor of the app does not rewrite them.
"""

from __future__ import annotations

ROUNDS = 6


async def settle(app, pilot, rounds: int = ROUNDS) -> None:
    """Wait until no job runs and the messages they posted are handled (a result may start
    another job, e.g. a step starts the mode computation, so this loops)."""
    def running() -> bool:
        jobs = getattr(app, "jobs", None)  # a screen (the beam screen) has workers but no job registry
        return bool(jobs is not None and jobs.running)

    for _ in range(rounds):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not running():
            await pilot.pause()
            if not running():
                return


def text_of(app, selector: str) -> str:
    """The plain text a widget shows (a Static, or a container: every Static inside it)."""
    node = app.screen.query_one(selector)
    statics = [node] if hasattr(node, "render") and not node.children else list(node.query("Static"))
    return "\n".join(str(s.render()) for s in statics)


def status_text(app) -> str:
    return text_of(app, "#status")


def panel_text(app) -> str:
    return text_of(app, "#mode-panel")


def notifications(app, severity: str | None = None) -> list[str]:
    """The messages of every notification the app has shown, newest last (recorded by the
    autouse fixture of tests/ui/conftest.py, so one that already timed out still counts)."""
    return [m for m, sev in app.__dict__.get("shown_notifications", []) if severity is None or sev == severity]


def footer_keys(app) -> set[str]:
    """Keys the footer lists now (the bindings that are shown and enabled)."""
    return {key for key, active in app.screen.active_bindings.items() if active.binding.show and active.enabled}


async def press_e_until(app, pilot, label: str, limit: int = 40) -> None:
    """Press e (waiting for each mode) until the status bar shows the mode ``label``."""
    for _ in range(limit):
        if f"Mode: {label}" in status_text(app):
            return
        await pilot.press("e")
        await settle(app, pilot)
    raise AssertionError(f"e never reached the mode {label!r}; status: {status_text(app)}")
