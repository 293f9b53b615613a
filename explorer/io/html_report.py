"""The report as one self-contained HTML file (``report`` command; the app's report key).

``render_report(data)`` takes the plain dict of ``explorer.analyses.report_data`` and returns
the page: the prompt coloured by each mode (legend, unit, colour bar), a tooltip on every
token (probability, rank, log p, entropy, top alternatives and every mode's number), the
cursor token's per-layer plots as inline SVG, the next-token table, the decoding lab and
interventions when given, and the provenance. The same dict is embedded as JSON
(``<script id="report-data">``) for programs. Stdlib only; never imports Textual or Rich.
"""

from __future__ import annotations

from pathlib import Path

from explorer.colors import lerp_color, text_color_for
from explorer.io.dated import write_new_dated
from explorer.io.html_page import esc, page
from explorer.io.svg_plot import line_plot

REPORT_CSS = """
.prompt { white-space: pre-wrap; line-height: 1.9; padding: .6rem; border: 1px solid #ddd; border-radius: 4px;
          font-family: ui-monospace, Menlo, Consolas, monospace; }
.tok { padding: 1px 0; border-radius: 2px; cursor: default; }
.tok:focus { outline: 2px solid #000; }
.tok.cursor { outline: 2px solid #000; outline-offset: 1px; }
.tok.special { font-style: italic; color: #555; }
.bar { display: inline-block; width: 14rem; height: .8rem; vertical-align: middle; border: 1px solid #aaa; margin: 0 .4rem; }
.plots { display: flex; flex-wrap: wrap; gap: .8rem; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; }
dl.prov dt { font-weight: 600; } dl.prov dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; }
"""


def _display(token: dict) -> str:
    """What a token looks like in the coloured prompt: its text, or visible whitespace when it has no ink."""
    text = token["text"]
    if text.strip() and token["kind"] != "bytes":
        return text
    return token["visible"] + ("\n" if "\n" in text else "")


def _token_tip(t: dict) -> str:
    head = f"#{t['index']}  {t['visible']!r}  id {t['id']}"
    if t["prob"] is None:
        return head + "\nfirst token: nothing predicts it (no probability, rank or alternatives)"
    lines = [head,
             f"p = {t['prob']:.4f}   rank {t['rank']}   log p = {t['logprob']:.4f}",
             f"entropy of its distribution = {t['entropy_bits']:.3f} bits",
             "top alternatives (p):"]
    for k, alt in enumerate(t["alternatives"], 1):
        mark = "  ◀ this token" if alt["id"] == t["id"] else ""
        lines.append(f"  {k:>2}. {alt['text']!r:<18} {alt['prob']:.4f}{mark}")
    return "\n".join(lines)


def _mode_tip(block: dict, i: int) -> str:
    shown = block["shown"][i]
    unit = f" {block['unit']}" if block.get("unit") and shown is not None else ""
    return f"{block['label']}: {'—' if shown is None else shown}{unit}"


def _colour_bar(block: dict) -> str:
    lo, hi = block["colors"]
    stops = ", ".join(lerp_color(lo, hi, k / 4) for k in range(5))
    unit = f" {esc(block['unit'])}" if block.get("unit") else ""
    return (f'<div class="scale"><span class="mono">{block["lo"]:.4g}{unit}</span>'
            f'<span class="bar" style="background: linear-gradient(to right, {stops})"></span>'
            f'<span class="mono">{block["hi"]:.4g}{unit}</span></div>')


def _prompt_html(data: dict, j: int, block: dict | None, tips: dict[str, str]) -> str:
    cursor = data["prompt"]["cursor"]
    spans = []
    for t in data["tokens"]:
        i = t["index"]
        keys = f"t{i}" + (f" m{j}t{i}" if block is not None else "")
        if block is not None:
            tips[f"m{j}t{i}"] = _mode_tip(block, i)
        classes = ["tok"] + (["cursor"] if i == cursor else []) + (["special"] if t["kind"] == "special" else [])
        style = ""
        colour = block["colours"][i] if block is not None else None
        if colour:
            style = f' style="background:{colour};color:{text_color_for(colour)}"'
        spans.append(f'<span class="{" ".join(classes)}" data-tip="{keys}" data-index="{i}" tabindex="0"{style}>'
                     f"{esc(_display(t))}</span>")
    return '<div class="prompt">' + "".join(spans) + "</div>"


def _mode_section(data: dict, j: int, block: dict, tips: dict[str, str]) -> str:
    out = [f'<section class="mode" id="mode-{esc(block["name"])}"><h2>{esc(block["label"])}</h2>']
    if block.get("params"):
        out.append(f'<p class="muted">options: {esc(", ".join(f"{k}={v}" for k, v in block["params"].items()))}</p>')
    if block.get("unavailable"):
        out.append(f'<p class="warn">Not available for this model: {esc(block["unavailable"])}</p></section>')
        return "".join(out)
    out.append(f"<p>{esc(block['legend'])}</p>")
    if block["name"] != "plain":
        out.append(_colour_bar(block))
    out.append(_prompt_html(data, j, block, tips))
    if block.get("details"):
        out.append('<ul class="details">' + "".join(f"<li>{esc(d)}</li>" for d in block["details"]) + "</ul>")
    if block.get("checks"):
        rows = "".join(f"<tr><td>{esc(k)}</td><td class='r'>{'—' if v is None else f'{v:.4g}'}</td></tr>"
                       for k, v in block["checks"].items())
        out.append(f'<table class="num checks"><tr><th>self-check</th><th class="r">value</th></tr>{rows}</table>')
    if block.get("layers"):
        c = data["prompt"]["cursor"]
        tok = data["tokens"][c]
        out.append(f"<h3>Per layer, cursor token #{c} {esc(repr(tok['visible']))}</h3><div class='plots'>")
        marker = block.get("params", {}).get("layer")
        n_layers = data.get("n_layers")
        for name, series in block["layers"].items():
            # Residual-stream series have one point per layer 0..L (0 = embeddings); sub-layer ones one per block.
            x_label = ("block" if len(series) == n_layers else
                       "layer (0 = embeddings)" if n_layers and len(series) == n_layers + 1 else "index")
            out.append(line_plot(name, series, x_label=x_label, marker=marker if isinstance(marker, int) else None))
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


def _table(headers: list[str], rows: list[list[str]], cls: str = "num") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><tr>{head}</tr>{body}</table>'


def _decoding_section(lab: dict) -> str:
    out = ["<section id='decoding'><h2>Decoding lab (next token)</h2>",
           f"<p>Settings: <code>{esc(lab['description'])}</code>; {lab['survivors']} of {lab['vocab_size']} "
           "tokens survive. raw p = softmax of the logits; lab p = after transformers' processors, in generate()'s order.</p>",
           _table(["stage", "processor", "survivors", "removed", "mass kept", "raw mass alive"],
                  [[s["name"], s["processor"], str(s["survivors"]), str(s["removed"]), f"{s['mass_kept']:.4f}",
                    f"{s['raw_mass_kept']:.4f}"] for s in lab["stages"]]),
           _table(["rank", "token", "id", "raw p", "lab p", "cut by"],
                  [[str(r["rank"]), repr(r["text"]), str(r["id"]), f"{r['raw_prob']:.4f}", f"{r['processed_prob']:.4f}",
                    r["removed_by"] or ""] for r in lab["rows"]])]
    if lab.get("regex"):
        rx = lab["regex"]
        out.append(f"<p>Regex <code>{esc(rx['pattern'])}</code>: {rx['allowed']} tokens can keep a match possible"
                   + (" (the text already matches)" if rx["accepting"] else "") + "; the others are cut by regex.</p>")
    out += [f"<p class='muted'>{esc(n)}</p>" for n in lab["notes"]]
    out.append("</section>")
    return "".join(out)


def _interventions_section(items: list[dict]) -> str:
    keys: list[str] = []
    for item in items:
        keys += [k for k in item if k not in keys]
    return ("<section id='interventions'><h2>Interventions in effect</h2>"
            + _table(keys, [[str(item.get(k, "")) for k in keys] for item in items]) + "</section>")


def _provenance(prov: dict) -> str:
    v = prov.get("versions", {})
    items = [("model", prov.get("model")), ("weights SHA-256", prov.get("weights_sha256") or "not computed"),
             ("dtype", prov.get("dtype")), ("device", prov.get("device")), ("seed", prov.get("seed")),
             ("explorer", v.get("explorer")), ("torch", v.get("torch")), ("transformers", v.get("transformers")),
             ("python", v.get("python")), ("created (UTC)", prov.get("created"))]
    return ("<section id='provenance'><h2>Provenance</h2><dl class='prov'>"
            + "".join(f"<dt>{esc(k)}</dt><dd>{esc(val)}</dd>" for k, val in items) + "</dl></section>")


def render_report(data: dict) -> str:
    """The report page for a report dict (see ``explorer.analyses.report_data``)."""
    tips = {f"t{t['index']}": _token_tip(t) for t in data["tokens"]}
    prov = data["provenance"]
    n = len(data["tokens"])
    body = [f"<h1>Token Explorer report</h1><p class='muted'>{esc(prov.get('model'))} · {n} tokens · "
            f"cursor on token #{data['prompt']['cursor']} · {esc(prov.get('created'))}</p>",
            "<p class='muted'>Hover over (or tab to) any token for its probability, rank, the top alternatives "
            "of the distribution it was drawn from, and each mode's number. p is a probability in [0, 1]; "
            "the first token has none.</p>"]
    for j, block in enumerate(data["modes"]):
        body.append(_mode_section(data, j, block, tips))
    body.append("<section id='next'><h2>Next token</h2>"
                + _table(["rank", "token", "id", "p", "logit"],
                         [[str(c["rank"]), repr(c["text"]), str(c["id"]), f"{c['prob']:.4f}", f"{c['logit']:.3f}"]
                          for c in data["next"]]) + "</section>")
    if data.get("decoding"):
        body.append(_decoding_section(data["decoding"]))
    if data.get("interventions"):
        body.append(_interventions_section(data["interventions"]))
    body.append(_provenance(prov))
    return page(f"Token Explorer report — {prov.get('model')}", "\n".join(body), css=REPORT_CSS, tips=tips,
                data={"report-data": data})


def save_new_report(data: dict, directory: Path) -> Path:
    """Write the report as ``report-DATE.html`` in ``directory``, never replacing an earlier file (the app's key)."""
    return write_new_dated(directory, "report", ".html", render_report(data))
