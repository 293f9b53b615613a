"""Pieces every self-contained HTML export shares: escaping, embedded JSON, the page shell, tooltips.

The pages open offline: CSS and JavaScript are inline, nothing is fetched (no CDN, no
fonts, no images). All text from a prompt or a model passes through ``esc`` (HTML) or
``embed_json`` (data inside ``<script type="application/json">``), and the scripts write
it back with ``textContent``, never ``innerHTML``, so a prompt holding ``</script>`` or
``<img onerror=...>`` is shown as the characters it is. Stdlib only.
"""

from __future__ import annotations

import html
import json
from typing import Any

BASE_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 70rem;
       padding: 0 1rem; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
code, .mono, table.num td { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { padding: .1rem .6rem; text-align: left; }
th { border-bottom: 1px solid #999; } td.r, th.r { text-align: right; }
.muted { color: #666; } .warn { color: #b00020; }
#tip { position: fixed; z-index: 10; display: none; max-width: 28rem; background: #fffff0; color: #111;
       border: 1px solid #888; border-radius: 4px; padding: .4rem .6rem; box-shadow: 0 2px 8px rgba(0,0,0,.25);
       font: 13px/1.35 ui-monospace, Menlo, Consolas, monospace; pointer-events: none; white-space: pre-wrap; }
"""

# One tooltip element for the page. An element with data-tip="KEY1 KEY2" shows TIPS[KEY1] and
# TIPS[KEY2] (one after the other) on hover and on keyboard focus; the text goes in with textContent.
TOOLTIP_JS = r"""
const tip = document.getElementById('tip');
function showTip(el, x, y) {
  const parts = el.dataset.tip.split(' ').map(k => TIPS[k]).filter(t => t !== undefined);
  if (!parts.length) return;
  const text = parts.join('\n');
  tip.textContent = text;
  tip.style.display = 'block';
  const r = tip.getBoundingClientRect();
  tip.style.left = Math.max(4, Math.min(x + 12, window.innerWidth - r.width - 4)) + 'px';
  tip.style.top = Math.max(4, Math.min(y + 16, window.innerHeight - r.height - 4)) + 'px';
}
function hideTip() { tip.style.display = 'none'; }
document.addEventListener('mouseover', e => {
  const el = e.target.closest('[data-tip]'); if (el) showTip(el, e.clientX, e.clientY); else hideTip(); });
document.addEventListener('focusin', e => {
  const el = e.target.closest('[data-tip]');
  if (el) { const r = el.getBoundingClientRect(); showTip(el, r.left, r.bottom); } });
document.addEventListener('focusout', hideTip);
"""


def esc(text: Any) -> str:
    """HTML-escape any value for element text or a quoted attribute."""
    return html.escape(str(text), quote=True)


def embed_json(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">`` (no ``</script>`` can end it early)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(title: str, body: str, *, css: str = "", tips: dict[str, str] | None = None,
         data: dict[str, Any] | None = None, script: str = "") -> str:
    """A complete HTML document with inline CSS and script.

    Args:
        title: the document title.
        body: the body's HTML (already escaped).
        css: page-specific CSS after BASE_CSS.
        tips: tooltip texts by key; elements with ``data-tip="KEY ..."`` show them.
        data: JSON blocks to embed, by element id (machine-readable copies of the page's numbers).
        script: page-specific JavaScript, run after the tooltip code.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may be fetched: the page must look the same offline and leak nothing when opened.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        f"<title>{esc(title)}</title>",
        f"<style>{BASE_CSS}{css}</style></head><body>",
        body,
        '<div id="tip" role="tooltip"></div>',
    ]
    for block_id, block in (data or {}).items():
        parts.append(f'<script type="application/json" id="{esc(block_id)}">{embed_json(block)}</script>')
    parts.append(f'<script type="application/json" id="tips-data">{embed_json(tips or {})}</script>')
    parts.append("<script>\nconst TIPS = JSON.parse(document.getElementById('tips-data').textContent);\n"
                 f"{TOOLTIP_JS}\n{script}\n</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
