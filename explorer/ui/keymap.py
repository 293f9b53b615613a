"""Every key of the app in one table: the bindings, the help screen, the command palette and
the random-keys test all read it, so they cannot drift apart.

Keys follow the seed README (vim-style h/j/k/l, WASD-ish prompt keys). Terminals cannot send
Ctrl+0 or Ctrl+$ (only the kitty keyboard protocol can), so Home and End do the same and
the help screen says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeySpec:
    keys: str
    """Textual key names, comma-separated (the first one is shown)."""
    action: str
    description: str
    show: bool = False
    """Shown in the footer."""
    display: str = ""
    """How the help screen writes the keys."""
    group: str = "General"
    label: str = ""
    """Short footer label (default: the description)."""


KEYMAP: tuple[KeySpec, ...] = (
    KeySpec("up,k", "table_up", "Move up in the token table", display="↑ / k", group="Token table"),
    KeySpec("down,j", "table_down", "Move down in the token table", display="↓ / j", group="Token table"),
    KeySpec("right,l", "append", "Append the selected token", True, "→ / l", "Token table", "Append"),
    KeySpec("left,h", "pop", "Remove the last token", True, "← / h", "Token table", "Back"),
    KeySpec("d", "add_prompt", "Add the current prompt as a new entry", display="d", group="Prompts"),
    KeySpec("a", "remove_prompt", "Remove the current prompt entry", display="a", group="Prompts"),
    KeySpec("w", "next_prompt", "Next prompt", display="w", group="Prompts"),
    KeySpec("s", "prev_prompt", "Previous prompt", display="s", group="Prompts"),
    KeySpec("ctrl+r", "reset_prompt", "Reset the prompt to its original tokens", display="Ctrl+r", group="Prompts"),
    KeySpec("x", "save_prompt", "Save the current prompt to a file", True, "x", "Prompts", "Save"),
    KeySpec("e", "cycle_mode", "Cycle visualization modes", True, "e", "Modes", "Mode"),
    KeySpec("p", "layer_toggle", "Layer views / SAE layer (when enabled)", display="p", group="Modes"),
    KeySpec("less_than_sign", "layer_down", "Mode option: previous layer", display="<", group="Modes"),
    KeySpec("greater_than_sign", "layer_up", "Mode option: next layer", display=">", group="Modes"),
    KeySpec("left_curly_bracket", "head_down", "Mode option: previous attention head (or mean)", display="{", group="Modes"),
    KeySpec("right_curly_bracket", "head_up", "Mode option: next attention head (or mean)", display="}", group="Modes"),
    KeySpec("m", "cycle_method", "Mode option: next method (rollout/raw, IG/saliency/input×gradient)", display="m", group="Modes"),
    KeySpec("M", "cycle_baseline", "Mode option: next attribution baseline (zero/pad/eos)", display="M", group="Modes"),
    KeySpec("v", "cycle_series", "Plot the next per-layer series of the mode", display="v", group="Modes"),
    KeySpec("f", "feature_next", "SAE mode: colour by the next of the cursor token's top features", display="f", group="Modes"),
    KeySpec("F", "feature_prev", "SAE mode: colour by the previous feature", display="F", group="Modes"),
    KeySpec("z", "toggle_zscores", "Toggle z-scores", True, "z", "Modes", "Z-scores"),
    KeySpec("c", "toggle_cursor", "Toggle the token cursor", display="c", group="Cursor"),
    KeySpec("ctrl+j", "cursor_next", "Cursor to the next token", display="Ctrl+j", group="Cursor"),
    KeySpec("ctrl+k", "cursor_prev", "Cursor to the previous token", display="Ctrl+k", group="Cursor"),
    KeySpec("ctrl+w", "cursor_next_word", "Cursor to the next word", display="Ctrl+w", group="Cursor"),
    KeySpec("ctrl+b", "cursor_prev_word", "Cursor to the previous word", display="Ctrl+b", group="Cursor"),
    KeySpec("ctrl+0,home", "cursor_start", "Cursor to the start", display="Ctrl+0 / Home", group="Cursor"),
    KeySpec("ctrl+dollar_sign,end", "cursor_end", "Cursor to the end", display="Ctrl+$ / End", group="Cursor"),
    KeySpec("D", "lab_toggle", "Decoding lab: show or hide its panel and table columns", display="D",
            group="Decoding lab"),
    KeySpec("left_square_bracket", "lab_prev_setting", "Lab: select the previous setting", display="[",
            group="Decoding lab"),
    KeySpec("right_square_bracket", "lab_next_setting", "Lab: select the next setting", display="]",
            group="Decoding lab"),
    KeySpec("minus", "lab_decrease", "Lab: decrease the selected setting", display="-", group="Decoding lab"),
    KeySpec("equals_sign,plus", "lab_increase", "Lab: increase the selected setting", display="= / +",
            group="Decoding lab"),
    KeySpec("0", "lab_reset_setting", "Lab: reset the selected setting (off)", display="0", group="Decoding lab"),
    KeySpec("t", "lab_greedy", "Lab: switch between sampling and greedy", display="t", group="Decoding lab"),
    KeySpec("r", "lab_order", "Lab: rank the rows by raw or by processed probability", display="r",
            group="Decoding lab"),
    KeySpec("b", "lab_ban", "Lab: ban or unban the selected token", display="b", group="Decoding lab"),
    KeySpec("B", "lab_boost", "Lab: raise the selected token's logit by 2 (bias)", display="B", group="Decoding lab"),
    KeySpec("V", "lab_lower", "Lab: lower the selected token's logit by 2 (bias)", display="V", group="Decoding lab"),
    KeySpec("n", "lab_sample", "Sample the next token with the lab settings (seeded)", display="n",
            group="Decoding lab"),
    KeySpec("N", "lab_generate", "Generate 20 tokens with the lab settings (Esc stops)", display="N",
            group="Decoding lab"),
    KeySpec("slash", "lab_regex", "Constrain the next tokens to a regex (empty line releases it)", display="/",
            group="Decoding lab"),
    KeySpec("o", "beam_open", "Beam search from the current prompt", display="o", group="Decoding lab"),
    KeySpec("T", "build_tree", "Build the token tree from the current prompt", display="T", group="Trees & generation"),
    KeySpec("g", "generate_greedy", "Generate 20 tokens greedily and append them", display="g",
            group="Trees & generation"),
    KeySpec("G", "generate_sampled", "Generate 20 tokens sampled with the session seed (replayable)",
            display="G", group="Trees & generation"),
    KeySpec("X", "export_trace", "Export the current prompt's trace as a JSONL logprobs record", display="X",
            group="Trees & generation"),
    KeySpec("escape", "stop_job", "Stop a tree build or a generation (g, G, N); keeps what was made",
            display="Esc", group="Trees & generation"),
    KeySpec("question_mark,f1", "help", "Show all keys", True, "? / F1", label="Help"),
    KeySpec("ctrl+q", "quit", "Quit (the session is autosaved)", True, "Ctrl+q", label="Quit"),
)


def bindings():
    """Textual Binding objects for KEYMAP (imported lazily to keep this module Textual-free)."""
    from textual.binding import Binding

    out = []
    for spec in KEYMAP:
        out.append(Binding(spec.keys, spec.action, spec.label or spec.description, show=spec.show,
                           key_display=spec.display.split(" / ")[0] if spec.display else None,
                           ))
    return out
