"""ExplorerApp: the main screen, its keys, and the one place background work is started.

The app owns every key (no widget takes focus), so each key of the seed README works from
the first screen. Each part of the screen is a feature module of explorer/ui/features/ that
adds actions and registers its extension points (explorer/ui/extensions.py: table columns,
append guards, step listeners, key conditions); none overrides another's methods. Model work
runs as jobs of one registry (explorer/ui/jobs.py): a job for a state the user has left is
stopped at the engine's next safe point, Esc stops the long ones, and the status bar lists
what runs. A result for an older state than the session's is dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from textual import on
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from explorer.errors import ExplorerError
from explorer.ui.commands import ExplorerCommands
from explorer.ui.extensions import Extensions
from explorer.ui.features.comparison import ComparisonMixin
from explorer.ui.features.decoding_lab import DecodingLabMixin
from explorer.ui.features.interventions import InterventionsMixin
from explorer.ui.features.lab_regex import LabRegexMixin
from explorer.ui.features.lab_runs import LabRunsMixin
from explorer.ui.features.mode_views import ModeViewsMixin
from explorer.ui.features.navigation import NavigationMixin
from explorer.ui.features.share_keys import ShareKeysMixin
from explorer.ui.features.prompt_editing import PromptEditingMixin
from explorer.ui.features.trees import TreesMixin
from explorer.ui.jobs import JobEnded, JobProgress, JobRegistry
from explorer.ui.keymap import KEYMAP, bindings
from explorer.ui.messages import LoadProgressed, SessionLoaded, StepComputed
from explorer.ui.widgets.status_bar import StatusBar
from explorer.ui.widgets.token_table import TokenTable

log = logging.getLogger(__name__)

_CONDITIONS = {spec.action: spec.when for spec in KEYMAP if spec.when}


class ExplorerApp(DecodingLabMixin, LabRegexMixin, LabRunsMixin, ModeViewsMixin, TreesMixin, NavigationMixin,
                  InterventionsMixin, ComparisonMixin, ShareKeysMixin, PromptEditingMixin, App[None]):
    """The token explorer.

    Args:
        session: a ready Session (tests pass a tiny one), or None with ``loader``.
        loader: called in a worker with a progress callback; returns the Session.
        layer_prob: enable the layer views (key p), as the --layer_prob flag.
        cross_layer: enable cross-layer transcoder analysis (--cross_layer).
        autosave: write the session after each change (off in most tests).
        notices: sentences to show once the app is up (e.g. what --resume did).
    """

    TITLE = "Token Explorer"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses may live anywhere
    COMMANDS = App.COMMANDS | {ExplorerCommands}
    BINDINGS = bindings()

    def __init__(self, session=None, *, loader: Callable[[Callable[[str], None]], Any] | None = None,
                 layer_prob: bool = False, cross_layer: bool = False, autosave: bool = True,
                 notices: tuple[str, ...] = ()) -> None:
        super().__init__()
        if session is None and loader is None:
            raise ValueError("ExplorerApp needs a session or a loader")
        self.session = session
        self.loader = loader
        self.layer_prob = layer_prob
        self.cross_layer = cross_layer
        self.notices = list(notices)
        self.view = None  # StepView of the current prompt, when computed
        self.step_inputs: dict = {}  # the step inputs computed with self.view (extensions.step_inputs)
        self.table_rows: list = []  # the row objects of the next-token table, in order
        self._pending: tuple | None = None  # snapshot being computed
        self._keep_row = False
        self._autosaver = None
        self._want_autosave = autosave
        self.step_count = 0  # StepComputed messages applied (tests wait on it)
        self.jobs = JobRegistry(self, self._jobs_changed)
        self.extensions = Extensions()
        self.extensions.key_conditions["job_running"] = lambda: any(j.esc and not j.stopping for j in self.jobs.running)
        self.install_modes()
        self.install_lab_regex()  # before the lab: a released constraint must not be re-scored
        self.install_lab()
        self.install_interventions()
        self.install_comparison()

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield StatusBar("Token Explorer — starting…", id="status")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                from explorer.ui.widgets.mode_panel import ModePanel
                from explorer.ui.widgets.prompt_view import PromptView

                yield PromptView(id="prompt")
                yield ModePanel(id="mode-panel")
                yield Vertical(id="extra-panels")  # feature panels (decoding lab, job progress) mount here
            yield TokenTable(id="table")
        yield Footer()

    def on_mount(self) -> None:
        from explorer.ui.screens.loading import LoadingScreen

        self.push_screen(LoadingScreen())  # popped when the first step is shown
        if self.session is None:
            self.jobs.start("load", "loading the model", self._load)
        else:
            self._session_ready()

    @property
    def ready(self) -> bool:
        return self.session is not None and self.view is not None

    @property
    def mode(self) -> str:
        return self.session.mode if self.session else "plain"

    def view_is_current(self) -> bool:
        """The shown StepView belongs to the prompt as it is now (not to the state before an append)."""
        return self.ready and self.view.uid == self.session.current.uid and \
            tuple(self.view.ids) == tuple(self.session.current.ids)

    # ------------------------------------------------------------ keys that apply now
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A key whose KeySpec names a condition is live (and in the footer) only while it holds."""
        when = _CONDITIONS.get(action)
        if when is None:
            return True
        test = self.extensions.key_conditions.get(when)
        return bool(test()) if test is not None else True

    def _refresh_bindings(self) -> None:
        if self.is_running:
            self.refresh_bindings()

    def action_always(self, action: str) -> None:
        """The hidden twin of a conditional key (keymap.bindings): run the action regardless."""
        getattr(self, f"action_{action}")()

    def _jobs_changed(self) -> None:
        self._refresh_status()
        self._refresh_bindings()
        if self.is_running and self.session is not None:
            for listener in self.extensions.job_listeners:
                listener()

    # ------------------------------------------------------------ jobs
    def _load(self, job) -> None:
        session = self.loader(lambda text: self.post_message(LoadProgressed(text)))
        self.post_message(SessionLoaded(session))

    def _compute_step(self, job, snapshot: tuple) -> None:
        view = self.session.compute(snapshot)
        inputs = self.extensions.compute_inputs(self.session, snapshot) if not job.should_stop() else {}
        if not job.should_stop():
            self.post_message(StepComputed(view, snapshot, inputs))

    @on(JobEnded)
    def _job_ended(self, msg: JobEnded) -> None:
        self.jobs.ended(msg.job)

    @on(JobProgress)
    def _job_progress(self, msg: JobProgress) -> None:
        self.jobs.progressed(msg)

    def _loading_phase(self, text: str) -> None:
        from explorer.ui.screens.loading import LoadingScreen

        if isinstance(self.screen, LoadingScreen):
            self.screen.phase(text)

    @on(LoadProgressed)
    def _load_progressed(self, msg: LoadProgressed) -> None:
        self._loading_phase(msg.text)

    @on(SessionLoaded)
    def _session_loaded(self, msg: SessionLoaded) -> None:
        self.session = msg.session
        self._session_ready()

    def _session_ready(self) -> None:
        from explorer.analyses import analysis_names
        from explorer.analyses.cache import ResultCache

        if self.session.mode not in analysis_names():
            self.session.mode = "plain"
        if self.result_cache is None:
            self.result_cache = ResultCache(self.session.config.display.cache_size)
        saved_params = getattr(self.session, "saved_view", {}).get("mode_params", {})
        for name, params in saved_params.items():  # --resume: e.g. the SAE layer chosen with p
            if isinstance(params, dict):
                self.mode_params.setdefault(name, {}).update(params)
        self.restore_interventions(getattr(self.session, "saved_view", {}))  # before the autosave baseline
        if self._want_autosave and self._autosaver is None:
            from explorer.io.session_store import Autosaver, session_to_json

            # baseline: the session as opened is not written (a start-and-quit adds no file);
            # on_error runs in the writer thread, and notify is thread-safe (post_message).
            self._autosaver = Autosaver(
                baseline=session_to_json(self.session, self._view_state()),
                on_error=lambda text: self.notify(text, title="Saving failed", severity="error", timeout=15))
        for note in self.notices + list(self.session.notes):
            self.notify(note, title="Note", severity="warning", timeout=10)
        self._loading_phase("computing the first step")
        self._request_step()

    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one error boundary for everything that runs in a worker."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, ExplorerError):
            message, title = error.message, error.title
        else:
            log.exception("worker %s failed", event.worker.name, exc_info=error)
            message, title = f"{type(error).__name__}: {error}", "Unexpected error"
        if event.worker.group.startswith("job-load-"):
            self.exit(return_code=2, message=f"error: {message}")
            return
        if event.worker.group.startswith("job-step-"):
            self._pending = None
            self._refresh_status()
        self.job_failed(event.worker.group)
        self.notify(message, title=title, severity="error", timeout=8)

    def job_failed(self, group: str) -> None:
        """Features reset their busy state when their job failed (the error itself is shown above)."""
        self.lab_job_failed(group)

    # ------------------------------------------------------------ state -> screen
    def _request_step(self) -> None:
        snapshot = self.session.snapshot()
        self._pending = snapshot
        self.stop_stale_work()
        self.jobs.start("step", "computing the next token", lambda job: self._compute_step(job, snapshot))
        self._render_prompt()
        self._refresh_status()
        self._autosave()

    @on(StepComputed)
    def _step_computed(self, msg: StepComputed) -> None:
        if msg.snapshot != self.session.snapshot():
            return  # an older state: a newer computation is on its way
        first = self.view is None
        previous_uid = self.view.uid if self.view is not None else None
        self.view = msg.view
        self.step_inputs = msg.inputs
        self._pending = None
        self.ignored_note = ""  # "busy: key ignored" lasts until the step it waited for lands
        self.step_count += 1
        if first:
            from explorer.ui.screens.loading import LoadingScreen

            if isinstance(self.screen, LoadingScreen):
                self.pop_screen()
        keep = self.query_one(TokenTable).cursor_row if previous_uid == msg.view.uid and self._keep_row else 0
        self._keep_row = False
        self.render_table(keep_row=keep)
        self._refresh_mode()
        for listener in self.extensions.step_listeners:
            listener()
        self._refresh_bindings()

    def render_table(self, keep_row: int | None = None) -> None:
        """Fill the next-token table: core columns plus those of the features that are on."""
        if not self.ready:
            return
        table = self.query_one(TokenTable)
        if keep_row is None:
            keep_row = table.cursor_row
        columns, rows, follow, width = self.extensions.table(self.view.candidates, self.session.show_zscores)
        table.styles.width = width  # None: back to app.tcss
        self.table_rows = rows
        table.show(columns, rows, keep_row if follow is None else follow)

    def selected_candidate(self):
        """The row under the table cursor (a candidate, or a feature's row with .id and .text)."""
        if not self.ready or not self.table_rows:
            return None
        row = self.query_one(TokenTable).cursor_row
        return self.table_rows[max(0, min(row, len(self.table_rows) - 1))]

    def _refresh_status(self) -> None:
        if self.session is None or not self.is_running:
            return
        from explorer.analyses import get_analysis

        entry = self.session.current
        i = self._cursor()
        tid = entry.ids[i] if entry.ids else None
        wrapper = self.session.wrapper
        self.query_one(StatusBar).show(
            prompt_i=self.session.index + 1, prompt_n=self.session.count, n_tokens=len(entry.ids),
            cursor=i if self.session.cursor_visible else None,
            cursor_token=wrapper.token_text(tid).text if tid is not None else "",
            mode=get_analysis(self.session.mode).label, model=wrapper.name + self.comparison_status(),
            device=wrapper.device, seed=self.session.seed,
            busy=" │ ".join(x for x in (self.jobs.status_text(), getattr(self, "ignored_note", "")) if x),
            flags=self.interventions_status())

    def _autosave(self) -> None:
        if self._autosaver is None or self.session is None:
            return
        from explorer.io.session_store import session_to_json

        self._autosaver.submit(session_to_json(self.session, self._view_state()))  # failures: on_error

    def _view_state(self) -> dict:
        """What the saved session keeps of the view beyond the session itself."""
        return {"mode_params": self.mode_params, **self.interventions_view_state()}

    def _tell(self, exc: ExplorerError, severity: str = "warning") -> None:
        self.notify(exc.message, title=exc.title, severity=severity)

    # ------------------------------------------------------------ actions: app
    def action_stop_job(self) -> None:
        """Escape: stop every long job (mode computation, tree, g/G, the lab's N), wherever it started."""
        stopped = self.jobs.stop_all()
        if stopped:
            self.notify("Stopping " + ", ".join(j.label for j in stopped) + "…", timeout=2)
        elif self.ready:
            self.notify("Nothing to stop (Esc stops a mode computation, a tree build and g, G or N generation).",
                        timeout=2)

    def action_help(self) -> None:
        from explorer.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        self.jobs.stop()
        if self._autosaver is not None and self.session is not None:
            from explorer.io.session_store import session_to_json

            self._autosaver.submit(session_to_json(self.session, self._view_state()))
            unsaved = self._autosaver.flush()
            if unsaved:  # printed after the screen closes, so the user knows what was not kept
                self.exit(return_code=1, message=f"Not saved: {unsaved}")
                return
        self.exit()
