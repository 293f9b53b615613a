"""A token tree as one self-contained, collapsible HTML page (``tree --html``; the tree screen's save).

Input is the tree JSON of ``explorer.engine.tree`` (``{"metadata", "tree": node}``, node
fields ``text, full_text, prob, cumulative_prob, token_id, depth, is_finished,
candidates, children``), so a saved ``tree.json`` can be turned into a page later. Each
node is a ``<details>`` element (collapsible without JavaScript); hovering a node (or
tabbing to it) shows its candidates and the full text of its path. Rendering is iterative:
trees can be 1000 levels deep. Stdlib only; never imports Textual or Rich.
"""

from __future__ import annotations

from pathlib import Path

from explorer.io.dated import write_new_dated
from explorer.io.html_page import esc, page

OPEN_DEPTH = 3
"""Levels shown expanded when the page opens (the rest are one click away, or "expand all")."""

TREE_CSS = """
details { margin-left: 1.1rem; } details > summary { cursor: pointer; list-style-position: outside; }
.node { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre; padding: 0 .2rem; border-radius: 2px; }
.node:focus { outline: 2px solid #000; }
.p { color: #555; font-size: .9em; margin-left: .4rem; } .done { color: #1a7f37; font-weight: bold; }
.leaf { margin-left: 2.2rem; }
.bar { display: inline-block; height: .55rem; background: #4575b4; vertical-align: middle; margin-left: .4rem; }
"""

TREE_JS = """
document.getElementById('expand-all').addEventListener('click', () =>
  document.querySelectorAll('details').forEach(d => d.open = true));
document.getElementById('collapse-all').addEventListener('click', () =>
  document.querySelectorAll('details').forEach(d => d.open = d.dataset.depth === '0'));
"""


def _visible(text: str) -> str:
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def _tip(node: dict) -> str:
    lines = [f"{_visible(node.get('text', ''))!s}   depth {node.get('depth')}   id {node.get('token_id')}",
             f"p(token | path) = {node.get('prob', 0.0):.4f}   cumulative = {node.get('cumulative_prob', 0.0):.6f}"]
    if node.get("is_finished"):
        lines.append(f"finished ({node.get('finish_reason') or 'end of sequence'})")
    cands = node.get("candidates") or []
    if cands:
        lines.append("candidates for the next token (p):")
        lines += [f"  {_visible(c.get('text', ''))!s:<18} {c.get('prob', 0.0):.4f}   id {c.get('token_id')}" for c in cands]
    full = node.get("full_text", "")
    tail = full if len(full) <= 400 else "…" + full[-400:]
    lines.append("text: " + tail)
    return "\n".join(lines)


def _summary(node: dict, key: str) -> str:
    done = ' <span class="done" title="path ended at end-of-sequence">✓</span>' if node.get("is_finished") else ""
    width = max(1, round(60 * float(node.get("cumulative_prob", 0.0))))
    label = "prompt" if node.get("depth", 0) == 0 else _visible(node.get("text", ""))
    return (f'<span class="node" data-tip="{key}" tabindex="0">{esc(label)}</span>'
            f'<span class="p">p={node.get("prob", 0.0):.4f} cum={node.get("cumulative_prob", 0.0):.4g}</span>'
            f'<span class="bar" style="width:{width}px"></span>{done}')


def render_tree_html(tree_json: dict) -> str:
    """The page for a tree JSON dict (what ``tree_to_json`` writes, parsed)."""
    meta = tree_json.get("metadata", {})
    tips: dict[str, str] = {}
    out: list[str] = []
    # Iterative pre-order: ("open", node) emits a node and schedules its children and its close.
    stack: list[tuple[str, dict | None]] = [("open", tree_json["tree"])]
    count = 0
    while stack:
        action, node = stack.pop()
        if action == "close":
            out.append("</details>")
            continue
        key = f"n{count}"
        count += 1
        tips[key] = _tip(node)
        children = node.get("children") or []
        if not children:
            out.append(f'<div class="leaf">{_summary(node, key)}</div>')
            continue
        depth = int(node.get("depth", 0))
        is_open = " open" if depth < OPEN_DEPTH else ""
        out.append(f'<details data-depth="{depth}"{is_open}><summary>{_summary(node, key)}</summary>')
        stack.append(("close", None))
        stack.extend(("open", child) for child in reversed(children))
    status = "INCOMPLETE: " + str(meta.get("message") or meta.get("stop_reason")) if meta.get("incomplete") else "complete"
    params = meta.get("parameters") or {}
    head = (f"<h1>Token tree</h1><p><b>Prompt:</b> <span class='mono'>{esc(meta.get('prompt', ''))}</span></p>"
            f"<p class='muted'>model {esc(meta.get('model'))} · {count} nodes · "
            f"{esc(meta.get('completed_paths', '?'))} paths at end-of-sequence · explored mass "
            f"{float(meta.get('explored_mass', 0.0)):.6f} · {esc(status)}</p>"
            f"<p class='muted'>{esc(', '.join(f'{k}={v}' for k, v in params.items()))}</p>"
            "<p class='muted'>p = p(token | path), cum = product along the path (probabilities in [0, 1]); "
            "the bar is proportional to cum. Hover over (or tab to) a node for its candidates.</p>"
            '<p><button id="expand-all" type="button">expand all</button> '
            '<button id="collapse-all" type="button">collapse all</button></p>')
    return page(f"Token tree — {meta.get('prompt', '')[:60]}", head + "".join(out), css=TREE_CSS, tips=tips,
                script=TREE_JS)


def save_new_tree_html(tree_json: dict, directory: Path) -> Path:
    """Write ``tree-DATE.html`` in ``directory``, never replacing an earlier file (the tree screen's save)."""
    return write_new_dated(directory, "tree", ".html", render_tree_html(tree_json))
