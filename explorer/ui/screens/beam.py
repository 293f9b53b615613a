"""The beam-search screen: every step's beams with their log-probabilities, the dropped ones, the winner.

It runs ``explorer.engine.decoding.beam.beam_search`` (which agrees with ``generate(num_beams=...)``)
from the current prompt in a worker, re-running when a parameter changes (the newest run
wins; an older one is told to stop). Enter on a beam opens prompt + beam as a new prompt
entry; Escape closes. Modal, so the main screen's keys cannot change the prompt meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, Tree
from textual.worker import get_current_worker

from explorer.errors import ExplorerError, InputError


@dataclass(frozen=True)
class BeamParam:
    name: str
    label: str
    ladder: tuple
    """Values - and = walk through; a value just outside the valid range sits at each numeric end,
    so stepping past it is refused by beam search's own check (which names the range)."""


PARAMS: tuple[BeamParam, ...] = (
    BeamParam("num_beams", "beams", (0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64, 65)),
    BeamParam("length_penalty", "length penalty", tuple(x / 4 for x in range(-41, 42))),
    BeamParam("max_new_tokens", "max new tokens", (0, 1, 2, 3, 5, 10, 15, 20, 30, 40, 50, 100, 200, 500, 1024, 1025)),
    BeamParam("early_stopping", "early stopping", (False, True, "never")),
)
DEFAULTS = {"num_beams": 4, "length_penalty": 1.0, "max_new_tokens": 20, "early_stopping": False}


@dataclass
class BeamProgressed(Message):
    run: int
    step: int
    total: int


@dataclass
class BeamDone(Message):
    run: int
    result: Any
    error: str | None = None


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


class BeamScreen(ModalScreen[bool]):
    """Beam search from ``snapshot`` (the prompt's uid and ids) of ``session``."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("left_square_bracket", "select(-1)", "Prev setting", key_display="["),
        Binding("right_square_bracket", "select(1)", "Next setting", key_display="]"),
        Binding("minus", "change(-1)", "Decrease", key_display="-"),
        Binding("equals_sign,plus", "change(1)", "Increase", key_display="="),
        Binding("0", "reset", "Reset", show=False),
    ]

    DEFAULT_CSS = """
    BeamScreen { background: $background; }
    BeamScreen > Vertical { height: 1fr; }
    BeamScreen #beam-header { height: auto; border: round $accent; padding: 0 1; }
    BeamScreen Tree { height: 1fr; border: round $primary; }
    BeamScreen #beam-details { height: auto; max-height: 12; border: round $secondary; padding: 0 1; }
    """

    def __init__(self, session, snapshot: tuple) -> None:
        super().__init__()
        self.session = session
        self.snapshot = snapshot
        self.params = dict(DEFAULTS)
        self.selected = 0
        self.run_id = 0
        self.result = None
        self.progress: tuple[int, int] | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="beam-header")
            tree: Tree = Tree("Beam search", id="beam-tree")
            tree.show_root = True
            yield tree
            yield Static(Text("Move to a beam to see its tokens; Enter opens it as a new prompt.", style="dim"),
                         id="beam-details")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Tree).focus()
        self._start()

    # ------------------------------------------------------------ running
    def _start(self) -> None:
        self.run_id += 1
        self.result, self.error, self.progress = None, None, (0, self.params["max_new_tokens"])
        tree = self.query_one(Tree)
        tree.clear()
        tree.root.set_label(Text("searching…", style="italic yellow"))
        self.run_search(self.run_id, dict(self.params))
        self._render_header()

    @work(thread=True, exclusive=True, group="beam", exit_on_error=False, description="Beam search")
    def run_search(self, run: int, params: dict) -> None:
        from explorer.engine.decoding.beam import beam_search

        worker = get_current_worker()
        wrapper = self.session.wrapper
        try:
            with wrapper.lock:
                trace = self.session.trace_for(*self.snapshot)
                result = beam_search(wrapper, list(self.snapshot[1]), trace=trace, **params,
                                     should_stop=lambda: worker.is_cancelled,
                                     on_step=lambda i, n: self.post_message(BeamProgressed(run, i, n)))
        except ExplorerError as exc:
            self.post_message(BeamDone(run, None, exc.message))
            return
        self.post_message(BeamDone(run, result))

    def on_beam_progressed(self, msg: BeamProgressed) -> None:
        if msg.run == self.run_id and self.result is None:
            self.progress = (msg.step, msg.total)
            self._render_header()

    def on_beam_done(self, msg: BeamDone) -> None:
        if msg.run != self.run_id:
            return
        self.progress = None
        if msg.error or msg.result is None:
            self.error = msg.error or "Beam search returned nothing."
            self.query_one(Tree).root.set_label(Text(self.error, style="red"))
            self.notify(self.error, title="Beam search", severity="warning", timeout=6)
        else:
            self.result = msg.result
            self._fill_tree(msg.result)
        self._render_header()

    # ------------------------------------------------------------ drawing
    def _render_header(self) -> None:
        t = Text()
        t.append("Beam search", "bold")
        t.append(f" from prompt {self.session.index + 1} ({len(self.snapshot[1])} tokens)  ·  ")
        for i, p in enumerate(PARAMS):
            cell = Text(f" {p.label} {_fmt(self.params[p.name])} ")
            if i == self.selected:
                cell.stylize("reverse")
            t.append_text(cell)
            t.append(" ")
        t.append("\n")
        if self.progress is not None:
            t.append(f"searching… step {self.progress[0]}/{self.progress[1]}", "italic yellow")
        elif self.error:
            t.append(self.error, "red")
        elif self.result is not None:
            w = self.result.winner
            t.append("Winner: ", "bold green")
            t.append(self._beam_text(w.tokens, 60))
            t.append(f"  score {w.score:.4f}  Σ log p {w.cum_logprob:.3f}  {len(w.tokens)} tokens"
                     f"  ·  {len(self.result.steps)} steps, stopped: {self.result.stopped}")
        t.append("\n[ ] setting  - = change  0 reset  ↑↓ move  space fold  Enter open as prompt  Esc close",
                 "dim")
        self.query_one("#beam-header", Static).update(t)

    def _beam_text(self, tokens, width: int = 48) -> str:
        """The tokens as text (spaces as spaces, newlines and tabs visible), its end kept when long."""
        text = "".join(self.session.wrapper.token_text(t).text for t in tokens)
        text = text.replace("\n", "↵").replace("\t", "⇥")
        return text if len(text) <= width else "…" + text[-(width - 1):]

    def _beam_label(self, state, winner) -> Text:
        mark = {"running": ("▸", ""), "finished": ("✓", "green"), "dropped": ("✗", "dim")}[state.status]
        is_winner = state.status == "finished" and state.tokens == winner.tokens
        t = Text()
        t.append(f"{'★' if is_winner else mark[0]} {state.status:<8} ", "bold green" if is_winner else mark[1])
        t.append(f"{self._beam_text(state.tokens)!r}", "bold" if is_winner else mark[1])
        t.append(f"  log p {state.token_logprobs[-1]:.3f}  Σ {state.cum_logprob:.3f}  score {state.score:.4f}",
                 "dim" if state.status == "dropped" else "")
        if state.ended_with_eos:
            t.append("  [EOS]", "italic")
        if state.parent is not None:
            t.append(f"  (beam {state.parent})", "dim")
        return t

    def _fill_tree(self, result) -> None:
        tree = self.query_one(Tree)
        tree.clear()
        winner = result.winner
        root = tree.root
        root.set_label(Text(f"{len(result.finished)} finished hypotheses, {len(result.steps)} steps "
                            f"(stopped: {result.stopped})", style="bold"))
        fin = root.add(Text("Finished, best first (the winner is generate()'s sequences[0])", style="bold green"),
                       expand=True)
        for rank, state in enumerate(result.finished, 1):
            label = Text(f"{rank}. ")
            label.append_text(self._beam_label(state, winner))
            fin.add_leaf(label, data=state)
        for step in result.steps:
            node = root.add(Text(f"Step {step.index}: {len(step.running)} run on, {len(step.finished_now)} finished, "
                                 f"{len(step.dropped)} dropped"), expand=True)
            for state in step.candidates:
                node.add_leaf(self._beam_label(state, winner), data=state)
        root.expand()
        first = fin.children[0] if fin.children else fin
        tree.get_node_at_line(0)  # lays the lines out now: until then every node's line is -1
        tree.move_cursor(first, animate=False)
        self._show_details(first.data)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        self._show_details(event.node.data)

    def _show_details(self, state) -> None:
        details = self.query_one("#beam-details", Static)
        if state is None or self.result is None:
            return
        t = Text()
        lp = self.result.length_penalty
        t.append(f"{state.status} beam, {len(state.tokens)} tokens: ", "bold")
        t.append(repr(self._beam_text(state.tokens, 400)) + "\n")
        t.append(f"score = Σ log p / length^{lp:g} = {state.cum_logprob:.4f} / {len(state.tokens)}^{lp:g} "
                 f"= {state.score:.4f}\n", "dim")
        t.append("token (log p, running Σ): ", "dim")
        total = 0.0
        for tok, logp in zip(state.tokens, state.token_logprobs):
            total += logp
            t.append(self.session.wrapper.token_text(tok).visible(), "bold")
            t.append(f" ({logp:.3f}, {total:.3f})  ")
        details.update(t)

    # ------------------------------------------------------------ keys
    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        state = event.node.data
        if state is None or self.result is None:
            return
        event.stop()
        ids = list(self.result.prompt_ids) + list(state.tokens)
        try:
            self.session.new_prompt(ids)
        except InputError as exc:
            self.notify(exc.message, title="Cannot open the beam", severity="warning", timeout=6)
            return
        self.dismiss(True)

    def action_close(self) -> None:
        self.dismiss(False)

    def action_select(self, delta: int) -> None:
        self.selected = (self.selected + delta) % len(PARAMS)
        self._render_header()

    def action_change(self, direction: int) -> None:
        from explorer.engine.decoding.beam import _check

        p = PARAMS[self.selected]
        current = self.params[p.name]
        if p.name == "early_stopping":
            i = p.ladder.index(current)
            new = p.ladder[(i + direction) % len(p.ladder)]
        else:
            ahead = [v for v in p.ladder if (v > current if direction > 0 else v < current)]
            if not ahead:
                self.notify(f"{p.label} is at its {'largest' if direction > 0 else 'smallest'} step ({_fmt(current)}).",
                            title="Beam search", severity="warning", timeout=4)
                return
            new = ahead[0] if direction > 0 else ahead[-1]
        trial = dict(self.params, **{p.name: new})
        try:
            _check(**trial)
        except InputError as exc:
            self.notify(exc.message, title="Setting refused", severity="warning", timeout=5)
            return
        self.params = trial
        self._start()

    def action_reset(self) -> None:
        p = PARAMS[self.selected]
        if self.params[p.name] != DEFAULTS[p.name]:
            self.params[p.name] = DEFAULTS[p.name]
            self._start()
