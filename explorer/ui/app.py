"""ExplorerApp: the main screen, its keys, and the workers that run the model.

The app owns every key (no widget takes focus), so each key of the seed README works
from the first screen. Model work runs in thread workers (group "model", exclusive) and
comes back as StepComputed messages; a result for an older state than the session's is
dropped, so holding a key never queues work and the newest state always wins.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, LoadingIndicator, Static
from textual.worker import Worker, WorkerState, get_current_worker

from explorer.errors import ExplorerError, InputError
from explorer.ui.commands import ExplorerCommands
from explorer.ui.features.decoding_lab import DecodingLabMixin
from explorer.ui.features.mode_views import ModeViewsMixin
from explorer.ui.features.trees import TreesMixin
from explorer.ui.keymap import bindings
from explorer.ui.messages import LoadProgressed, ModeComputed, SessionLoaded, StepComputed
from explorer.ui.render import legend_bar, prompt_text, scale_color
from explorer.ui.widgets.mode_panel import ModePanel
from explorer.ui.widgets.prompt_view import PromptView
from explorer.ui.widgets.status_bar import StatusBar
from explorer.ui.widgets.token_table import TokenTable

log = logging.getLogger(__name__)


class ExplorerCore(ModeViewsMixin, TreesMixin, App[None]):
    """The token explorer without the features that override its hooks (``ExplorerApp`` at the end adds them).

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
        self.mode_result = None
        self.mode_error: str | None = None
        self.mode_params: dict[str, Any] = {}
        self._pending: tuple | None = None  # snapshot being computed
        self._mode_pending: tuple | None = None
        self.result_cache = None  # explorer.analyses.cache.ResultCache, made once the session exists
        self.plot_series: dict[str, int] = {}
        self._autosaver = None
        self._want_autosave = autosave
        self.step_count = 0  # StepComputed messages applied (tests wait on it)

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield StatusBar("Token Explorer — starting…", id="status")
        with Vertical(id="loading-box"):
            yield LoadingIndicator()
            yield Static("Loading the model…", id="loading")
        with Horizontal(id="main", classes="hidden"):
            with Vertical(id="left"):
                yield PromptView(id="prompt")
                yield ModePanel(id="mode-panel")
                # Feature panels (decoding lab, ...) mount here; see explorer/ui/features/.
                yield Vertical(id="extra-panels")
            yield TokenTable(id="table")
        yield Footer()

    def on_mount(self) -> None:
        if self.session is None:
            self.load_session()
        else:
            self._session_ready()

    @property
    def ready(self) -> bool:
        return self.session is not None and self.view is not None

    @property
    def mode(self) -> str:
        return self.session.mode if self.session else "plain"

    # ------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="load", exit_on_error=False, description="Loading the model")
    def load_session(self) -> None:
        session = self.loader(lambda text: self.post_message(LoadProgressed(text)))
        self.post_message(SessionLoaded(session))

    @work(thread=True, exclusive=True, group="model", exit_on_error=False, description="Computing the next token")
    def compute_step(self, snapshot: tuple) -> None:
        view = self.session.compute(snapshot)
        if not get_current_worker().is_cancelled:
            self.post_message(StepComputed(view, snapshot))

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False, description="Computing the mode")
    def compute_mode(self, key: tuple, analysis, ctx) -> None:
        from explorer.analyses.cache import compute_mode

        try:
            result = compute_mode(analysis, ctx, self.result_cache)
        except ExplorerError as exc:
            self.post_message(ModeComputed(key, None, exc.message))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(ModeComputed(key, result))

    @on(LoadProgressed)
    def _load_progressed(self, msg: LoadProgressed) -> None:
        self.query_one("#loading", Static).update(msg.text)

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
        if self._want_autosave and self._autosaver is None:
            from explorer.io.session_store import Autosaver

            self._autosaver = Autosaver()
        for note in self.notices + list(self.session.notes):
            self.notify(note, title="Note", severity="warning", timeout=10)
        self._request_step()

    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one error boundary for everything that runs in a worker."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        group = event.worker.group
        if isinstance(error, ExplorerError):
            message, title = error.message, error.title
        else:
            log.exception("worker %s failed", event.worker.name, exc_info=error)
            message, title = f"{type(error).__name__}: {error}", "Unexpected error"
        if group == "load":
            self.exit(return_code=2, message=f"error: {message}")
            return
        if group == "model":
            self._pending = None
            self._refresh_status()
        self.notify(message, title=title, severity="error", timeout=8)

    # ------------------------------------------------------------ state -> screen
    def _request_step(self) -> None:
        snapshot = self.session.snapshot()
        self._pending = snapshot
        self.compute_step(snapshot)
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
        self._pending = None
        self.step_count += 1
        if first:
            self.query_one("#loading-box").add_class("hidden")
            self.query_one("#main").remove_class("hidden")
        table = self.query_one(TokenTable)
        keep = table.cursor_row if previous_uid == msg.view.uid and self._keep_row else 0
        self._keep_row = False
        self._render_table(keep_row=keep)
        self._refresh_mode()
        self.on_step_ready()

    _keep_row = False

    # ------------------------------------------------------------ hooks for features
    def _render_table(self, keep_row: int = 0) -> None:
        """Fill the next-token table from the current view. Features may override (call super)."""
        self.query_one(TokenTable).show(self.view.candidates, self.session.show_zscores, keep_row=keep_row)

    def on_step_ready(self) -> None:
        """Called after each new StepView is shown. Features override and call super()."""

    def _cursor(self) -> int:
        return self.session.cursor_index()

    def _refresh_mode(self) -> None:
        """Compute the current mode for the current view: inline when cheap, in a worker when not."""
        from explorer.analyses import AnalysisContext, get_analysis
        from explorer.analyses.cache import result_key

        if not self.ready:
            return
        analysis = get_analysis(self.session.mode)
        params = dict(self.mode_params.get(analysis.name, {}))
        if analysis.name == "sae_features":  # the SAE entries live in the config
            params.update(config=self.session.config, cross_layer=self.cross_layer)
        ctx = AnalysisContext(self.view, self.session.wrapper, self._cursor(), params, cache=self.result_cache)
        key = result_key(analysis, ctx)
        self.mode_error = None
        cached = self.result_cache.get(key) if analysis.lazy else None
        if not analysis.lazy:
            try:
                self.mode_result = analysis.compute(ctx)
            except ExplorerError as exc:
                self.mode_result, self.mode_error = None, exc.message
            self._mode_pending = None
        elif cached is not None:
            self.mode_result = cached
            self._mode_pending = None
        else:
            self.mode_result = None
            self._mode_pending = key
            self.compute_mode(key, analysis, ctx)
        self._render_all()

    @on(ModeComputed)
    def _mode_computed(self, msg: ModeComputed) -> None:
        if msg.key != self._mode_pending:
            return
        self._mode_pending = None
        self.mode_result = msg.result
        self.mode_error = msg.error
        self._render_all()

    def _render_all(self) -> None:
        self._render_prompt()
        self._render_panel()
        self._refresh_status()

    def _token_colors(self, n: int) -> list[str | None]:
        r = self.mode_result
        if r is None or self.view is None:
            return [None] * n
        values = r.color_values if r.color_values is not None else r.values
        return [scale_color(values[i], r.lo, r.hi, r.colors) if i < len(values) else None for i in range(n)]

    def _render_prompt(self) -> None:
        if self.session is None or self.view is None:
            return
        from explorer.engine.view import TokenInfo

        ids = self.session.current.ids
        # Tokens already computed keep their numbers; tokens appended since show plain text.
        tokens = []
        for i, tid in enumerate(ids):
            if i < len(self.view.tokens) and self.view.ids[i] == tid and self.view.uid == self.session.current.uid:
                tokens.append(self.view.tokens[i])
            else:
                tokens.append(TokenInfo(i, tid, self.session.wrapper.token_text(tid), *([None] * 8)))
        colors = self._token_colors(len(tokens))
        cursor = self._cursor() if self.session.cursor_visible else None
        follow = self.session.current.cursor is None
        self.query_one(PromptView).show(prompt_text(tokens, colors, cursor), follow_end=follow)

    def _render_panel(self) -> None:
        if not self.ready:
            return
        from explorer.analyses import get_analysis

        analysis = get_analysis(self.session.mode)
        r = self.mode_result
        legend = Text()
        legend.append(f"{analysis.label}: ", "bold")
        if self.mode_error:
            legend.append(self.mode_error, "italic red")
        elif r is None:
            legend.append("Loading features…" if analysis.name == "sae_features" else "computing…", "italic yellow")
        else:
            legend.append(r.legend)
            if any(v is not None for v in (r.color_values or r.values)):
                legend.append("\n")
                legend.append_text(legend_bar(f"{r.lo:.3g}", f"{r.hi:.3g}", r.colors))
        cursor_line = self._cursor_line()
        details = Text("\n".join(r.details)) if r is not None and r.details else Text()
        heatmap = self.heatmap_text()
        if heatmap is not None:
            details.append_text(heatmap)
        self.query_one(ModePanel).show(legend, cursor_line, details)
        self._render_plot()

    def _cursor_line(self) -> Text:
        i = self._cursor()
        line = Text()
        if self.view is None or i >= len(self.view.tokens) or self.view.uid != self.session.current.uid:
            return line
        tok = self.view.tokens[i]
        line.append(f"Token {i + 1}/{len(self.view.tokens)} ", "bold")
        line.append(repr(tok.text.text))
        line.append(f"  id {tok.id}")
        if tok.prob is None:
            line.append("  (first token: nothing predicts it)", "dim")
        else:
            if tok.entropy_bits is None:  # a served model: log-probabilities only
                line.append(f"  p={tok.prob:.4f}  rank {tok.rank or '> top-k'}")
            else:
                line.append(f"  p={tok.prob:.4f}  rank {tok.rank}  H={tok.entropy_bits:.2f} bits  E={tok.energy:.2f}")
            if self.session.show_zscores and tok.zscore is not None:
                line.append(f"  z={tok.zscore:+.2f}")
        r = self.mode_result
        if r is not None and i < len(r.values) and r.values[i] is not None and self.session.mode not in (
                "probability", "entropy", "energy"):
            line.append(f"  value {r.fmt.format(r.values[i])} {r.unit}".rstrip())
        if self.view.entropy_is_lower_bound:
            line.append(f"\nNext token: H >= {self.view.next_entropy_bits:.2f} bits (lower bound over the top "
                        f"{len(self.view.candidates)}, {self.view.covered_mass:.1%} of the mass), E not available", "dim")
        else:
            line.append(f"\nNext token: H={self.view.next_entropy_bits:.2f} bits, E={self.view.next_energy:.2f}", "dim")
        return line

    def _refresh_status(self) -> None:
        if self.session is None:
            return
        from explorer.analyses import get_analysis

        entry = self.session.current
        i = self._cursor()
        tid = entry.ids[i] if entry.ids else None
        busy = "computing…" if (self._pending or self._mode_pending) else ""
        wrapper = self.session.wrapper
        self.query_one(StatusBar).show(
            prompt_i=self.session.index + 1, prompt_n=self.session.count, n_tokens=len(entry.ids),
            cursor=i if self.session.cursor_visible else None,
            cursor_token=wrapper.token_text(tid).text if tid is not None else "",
            mode=get_analysis(self.session.mode).label, model=wrapper.name,
            device=wrapper.device, seed=self.session.seed, busy=busy)

    def _autosave(self) -> None:
        if self._autosaver is None or self.session is None:
            return
        from explorer.io.session_store import session_to_json

        self._autosaver.submit(session_to_json(self.session))
        if self._autosaver.last_error:
            self.notify(f"Autosave failed: {self._autosaver.last_error}", severity="error")
            self._autosaver.last_error = None

    def _tell(self, exc: ExplorerError, severity: str = "warning") -> None:
        self.notify(exc.message, title=exc.title, severity=severity)

    # ------------------------------------------------------------ actions: table
    def action_table_up(self) -> None:
        if self.ready:
            table = self.query_one(TokenTable)
            table.move_cursor(row=max(0, table.cursor_row - 1), animate=False)

    def action_table_down(self) -> None:
        if self.ready:
            table = self.query_one(TokenTable)
            table.move_cursor(row=min(table.row_count - 1, table.cursor_row + 1), animate=False)

    def selected_candidate(self):
        if not self.ready or not self.view.candidates:
            return None
        row = self.query_one(TokenTable).cursor_row
        return self.view.candidates[max(0, min(row, len(self.view.candidates) - 1))]

    def action_append(self) -> None:
        if not self.ready or self._pending is not None:
            return  # the table is about to change: a queued append would pick from a stale table
        cand = self.selected_candidate()
        if cand is None:
            return
        try:
            self.session.append(cand.id)
        except InputError as exc:
            self._tell(exc)
            return
        self._request_step()

    def action_pop(self) -> None:
        if not self.ready:
            return
        try:
            self.session.pop()
        except InputError as exc:
            self._tell(exc)
            return
        self._request_step()

    # ------------------------------------------------------------ actions: prompts
    def _prompt_op(self, op: Callable[[], Any]) -> None:
        if self.session is None or self.view is None:
            return
        try:
            op()
        except InputError as exc:
            self._tell(exc)
            return
        self._request_step()

    def action_add_prompt(self) -> None:
        self._prompt_op(self.session.add_prompt if self.session else lambda: None)
        if self.session and self.ready:
            self.notify(f"Prompt {self.session.index + 1}/{self.session.count} added", timeout=2)

    def action_remove_prompt(self) -> None:
        self._prompt_op(self.session.remove_prompt if self.session else lambda: None)

    def action_next_prompt(self) -> None:
        self._prompt_op(self.session.next_prompt if self.session else lambda: None)

    def action_prev_prompt(self) -> None:
        self._prompt_op(self.session.prev_prompt if self.session else lambda: None)

    def action_reset_prompt(self) -> None:
        self._prompt_op(self.session.reset if self.session else lambda: None)

    def action_save_prompt(self) -> None:
        if self.session is None:
            return
        from explorer.io.prompts import save_prompt

        w = self.session.wrapper
        ids = list(self.session.current.ids)
        try:
            path = save_prompt(w.decode(ids), ids, [w.token_text(t).text for t in ids], w.name)
        except ExplorerError as exc:
            self._tell(exc, "error")
            return
        self.notify(f"Saved to {path}", title="Prompt saved", timeout=6)

    # ------------------------------------------------------------ actions: modes
    def action_cycle_mode(self) -> None:
        if self.session is None:
            return
        from explorer.analyses import analysis_names

        names = [n for n in analysis_names() if self._mode_enabled(n)]
        i = names.index(self.session.mode) if self.session.mode in names else -1
        self.session.mode = names[(i + 1) % len(names)]
        self._after_view_change()
        self._autosave()

    def _mode_enabled(self, name: str) -> bool:
        """Layer modes only with --layer_prob (as in the seed); reached with p."""
        if name in ("layer_prob", "layer_correlation"):
            return False
        return True

    def action_layer_toggle(self) -> None:
        if self.session is None:
            return
        from explorer.analyses import analysis_names

        if self.session.mode == "sae_features":
            self.cycle_sae_layer()
            return
        names = analysis_names()
        if "layer_prob" not in names:
            self.notify("Layer views are not available in this build.", severity="warning")
            return
        if not self.layer_prob:
            self.notify("Layer views are off: start with --layer_prob to enable them.", severity="warning")
            return
        cycle = ["layer_prob", "layer_correlation"]
        if self.session.mode in cycle:
            nxt = cycle.index(self.session.mode) + 1
            self.session.mode = cycle[nxt] if nxt < len(cycle) else "plain"
        else:
            self.session.mode = cycle[0]
        self._after_view_change()

    def action_toggle_zscores(self) -> None:
        if self.session is None:
            return
        self.session.show_zscores = not self.session.show_zscores
        if self.ready:
            self._render_table(keep_row=self.query_one(TokenTable).cursor_row)
        self._render_all()

    def action_toggle_cursor(self) -> None:
        if self.session is None:
            return
        self.session.cursor_visible = not self.session.cursor_visible
        self._render_all()

    def _after_view_change(self) -> None:
        if self.ready:
            self._refresh_mode()
        else:
            self._refresh_status()

    # ------------------------------------------------------------ actions: cursor
    def _cursor_op(self, op: Callable[[], None]) -> None:
        if self.session is None:
            return
        op()
        self.session.cursor_visible = True
        self._after_view_change()

    def action_cursor_next(self) -> None:
        self._cursor_op(self.session.cursor_next if self.session else lambda: None)

    def action_cursor_prev(self) -> None:
        self._cursor_op(self.session.cursor_prev if self.session else lambda: None)

    def action_cursor_next_word(self) -> None:
        self._cursor_op(self.session.cursor_next_word if self.session else lambda: None)

    def action_cursor_prev_word(self) -> None:
        self._cursor_op(self.session.cursor_prev_word if self.session else lambda: None)

    def action_cursor_start(self) -> None:
        self._cursor_op(self.session.cursor_start if self.session else lambda: None)

    def action_cursor_end(self) -> None:
        self._cursor_op(self.session.cursor_end if self.session else lambda: None)

    # ------------------------------------------------------------ actions: app
    def action_help(self) -> None:
        from explorer.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        if self._autosaver is not None and self.session is not None:
            from explorer.io.session_store import session_to_json

            self._autosaver.submit(session_to_json(self.session))
            self._autosaver.flush()
        self.exit()


class ExplorerApp(DecodingLabMixin, ExplorerCore):
    """The token explorer: the core screen plus the features of explorer/ui/features/.

    The feature mixins come before ExplorerCore in the bases, so their overrides of the core's
    hooks (``_render_table``, ``on_step_ready``, ...) run first and reach the core with super().
    """

    def action_stop_job(self) -> None:
        """Escape: stop whatever generates in the background (tree build, g/G, the lab's N)."""
        stopped = False
        if getattr(self, "_lab_busy", None) == "generating":
            self.workers.cancel_group(self, "lab-run")
            stopped = True
        if self._tree_stop is not None or self._gen_stop is not None:
            TreesMixin.action_stop_job(self)
            stopped = True
        if stopped:
            self.notify("Stopping…", timeout=2)
        elif self.ready:
            self.notify("Nothing to stop (Esc stops a tree build and g, G or N generation).", timeout=2)
