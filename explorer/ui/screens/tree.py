"""The token-tree screen: the tree (Textual Tree), the selected node's candidates, the explored mass.

Nodes are added lazily, when their parent is expanded (a tree can hold thousands), and the
most probable path is opened at the start. Enter opens the highlighted node's path (prompt
ids + path ids) as a new prompt entry; ``s`` saves the notebook's JSON under
``data_dir()/trees`` (never overwriting); Escape closes.
"""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, Tree

MAX_FULL_TEXT = 2000  # characters of a node's full text shown in the side panel


def _token(wrapper, node) -> str:
    """The node's token with visible whitespace (the engine's own token text, not a lossy decode)."""
    if node.token_id is None:
        return "(prompt)"
    return wrapper.token_text(node.token_id).visible()


def node_label(wrapper, node) -> Text:
    label = Text()
    if node.token_id is None:
        label.append("prompt", "bold")
        return label
    label.append(_token(wrapper, node), "bold")
    label.append(f"  p={node.prob:.3f}  cum={node.cumulative_prob:.2e}", "dim")
    if node.finish_reason == "eos":
        label.append("  ✓", "bold green")
    elif node.finish_reason == "max_depth":
        label.append("  ⊣ max depth", "yellow")
    return label


class TreeScreen(ModalScreen[None]):
    """Shows a TreeResult built after ``prompt_ids``."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("s", "save", "Save JSON"),
        Binding("enter", "open_path", "Open path as prompt", priority=True),
        Binding("space", "toggle", "Expand/collapse", show=True),
    ]

    DEFAULT_CSS = """
    TreeScreen { background: $background; }
    TreeScreen #tree-body { height: 1fr; }
    TreeScreen Tree { width: 3fr; border: round $accent; }
    TreeScreen #tree-side { width: 2fr; border: round $secondary; padding: 0 1; }
    """

    def __init__(self, result, prompt_ids: list[int], *, app_limits: bool = False) -> None:
        super().__init__()
        self.result = result
        self.prompt_ids = list(prompt_ids)
        self.app_limits = app_limits
        self.saved_path = None
        self.node_panel = None  # what the side panel shows for the highlighted node

    def compose(self) -> ComposeResult:
        with Horizontal(id="tree-body"):
            yield Tree(Text("prompt", "bold"), data=self.result.root, id="token-tree")
            with VerticalScroll(id="tree-side"):
                yield Static(self._summary(), id="tree-summary")
                yield Static("", id="tree-node")
        yield Footer()

    def on_mount(self) -> None:
        tree = self.query_one(Tree)
        tree.guide_depth = 2
        tree.auto_expand = False  # Enter opens a path; Space expands
        self._populate(tree.root)
        tree.root.expand()
        # Open the most probable path so the first screen shows a whole continuation.
        node = tree.root
        while node.children:
            node = node.children[0]
            self._populate(node)
            node.expand()
        tree.focus()
        tree.move_cursor(tree.root)
        self._show_node(self.result.root)

    # ------------------------------------------------------------ tree
    def _populate(self, tnode) -> None:
        if tnode.children or not tnode.data.children:
            return
        wrapper = self.app.session.wrapper
        for child in tnode.data.children:
            tnode.add(node_label(wrapper, child), data=child, allow_expand=bool(child.children))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        self._populate(event.node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if event.node.data is not None:
            self._show_node(event.node.data)

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        event.stop()  # a click selects; Enter (the binding) opens the path

    def action_toggle(self) -> None:
        node = self.query_one(Tree).cursor_node
        if node is not None:
            self._populate(node)
            node.toggle()

    def selected(self):
        node = self.query_one(Tree).cursor_node
        return node.data if node is not None else None

    # ------------------------------------------------------------ side panel
    def _summary(self) -> Text:
        r = self.result
        p = r.params
        t = Text()
        t.append("Token tree", "bold")
        if r.incomplete:
            t.append("  INCOMPLETE", "bold red")
        deepest = max(n.depth for n in r.root.iter_nodes())
        t.append(f"\n{r.nodes} nodes, {r.completed_paths} paths ended at end-of-sequence, "
                 f"deepest node {deepest}, {r.forward_passes} forward passes, {r.seconds:.2f} s\n")
        t.append(f"Explored probability mass (sum over leaves of cumulative p): {r.explored_mass():.4g}\n")
        t.append(f"Stopped: {r.stop_reason} — {r.message}\n", "dim")
        t.append(f"Thresholds {p.min_branch_threshold}–{p.max_branch_threshold} (queue limit "
                 f"{p.soft_queue_limit}), candidates > {p.candidate_threshold}, max depth {p.max_depth}, "
                 f"{p.max_completed_paths} completed paths", "dim")
        if self.app_limits:
            t.append("\nThe app uses max depth 40 and 5 completed paths to stay interactive; "
                     "`main.py tree` has the notebook's full defaults.", "dim italic")
        t.append("\nEnter: open path as a prompt · Space: expand · s: save JSON · Esc: close", "dim")
        return t

    def _show_node(self, node) -> None:
        wrapper = self.app.session.wrapper
        t = Text()
        t.append("\nSelected: ", "bold")
        if node.token_id is None:
            t.append("the prompt (root)\n")
        else:
            t.append(f"{_token(wrapper, node)!r}  id {node.token_id}  depth {node.depth}\n")
            t.append(f"p = {node.prob:.4f}   cumulative p = {node.cumulative_prob:.3e}\n")
        if node.is_finished:
            t.append("✓ finished at end-of-sequence\n" if node.finish_reason == "eos" else "cut at max depth\n", "green")
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        table.add_column("Candidate")
        table.add_column("p", justify="right")
        table.add_column("id", justify="right")
        for c in node.candidates:
            table.add_row(Text(wrapper.token_text(int(c["token_id"])).visible()), f"{c['prob']:.4f}", str(c["token_id"]))
        full = node.full_text if len(node.full_text) <= MAX_FULL_TEXT else "…" + node.full_text[-MAX_FULL_TEXT:]
        side = self.query_one("#tree-node", Static)
        from rich.console import Group

        note = Text("(not expanded: no candidates)\n", "dim") if not node.candidates else Text("")
        self.node_panel = Group(t, note, table, Text("\nFull text:", "bold"), Text(full))
        side.update(self.node_panel)

    # ------------------------------------------------------------ actions
    def action_open_path(self) -> None:
        node = self.selected()
        if node is None:
            return
        if self.app.open_path_as_prompt(self.prompt_ids + node.path_ids()):
            self.dismiss(None)

    def action_save(self) -> None:
        from explorer.engine.tree import tree_to_json
        from explorer.errors import ExplorerError
        from explorer.io.atomic import create_new_text
        from explorer.paths import data_dir

        text = tree_to_json(self.result, model=self.app.session.wrapper.name)
        folder = data_dir() / "trees"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            for n in range(1, 1000):
                path = folder / (f"tree-{stamp}.json" if n == 1 else f"tree-{stamp}-{n}.json")
                try:
                    create_new_text(path, text)
                except FileExistsError:
                    continue
                self.saved_path = path
                # The same tree as a collapsible page beside the JSON (same stem, .html).
                from explorer.io.tree_html import render_tree_html

                html = render_tree_html(self.result.to_json_dict(self.app.session.wrapper.name))
                try:
                    create_new_text(path.with_suffix(".html"), html)
                except FileExistsError:
                    pass  # a page of that name was already there; it is never replaced
                self.notify(f"Saved to {path} (and .html beside it)", title="Tree saved", timeout=6)
                return
        except ExplorerError as exc:
            self.notify(exc.message, title=exc.title, severity="error", timeout=8)
            return
        self.notify(f"Could not find a free file name in {folder}.", severity="error")

    def action_close(self) -> None:
        self.dismiss(None)
