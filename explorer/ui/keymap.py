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
    when: str = ""
    """A condition (``app.extensions.key_conditions``): the footer lists the key only while it
    holds. Pressed otherwise, the key still runs and says why it does nothing now."""


OPTION_WORDS = {"<": "layer", ">": "layer", "{": "head", "}": "head", "m": "method", "M": "baseline",
                "f": "feature", "F": "feature", "p": "layer"}
"""What an option key usually changes, for "this mode has no … option"."""


KEYMAP: tuple[KeySpec, ...] = (
    KeySpec("up,k", "table_up", "Move up in the token table", display="↑ / k", group="Token table"),
    KeySpec("down,j", "table_down", "Move down in the token table", display="↓ / j", group="Token table"),
    KeySpec("right,l", "append", "Append the selected token", True, "→ / l", "Token table", "Append"),
    KeySpec("left,h", "pop", "Remove the last token", True, "← / h", "Token table", "Back"),
    KeySpec("d", "add_prompt", "Add the current prompt as a new entry", display="d", group="Prompts"),
    KeySpec("a", "remove_prompt", "Remove the current prompt entry", display="a", group="Prompts"),
    KeySpec("w", "next_prompt", "Next prompt", display="w", group="Prompts"),
    KeySpec("s", "prev_prompt", "Previous prompt", display="s", group="Prompts"),
    KeySpec("i", "edit_prompt", "Edit the prompt text (Ctrl+s applies, Esc cancels)", display="i", group="Prompts"),
    KeySpec("H", "rewind_here", "Rewind: cut the prompt after the cursor token", display="H", group="Prompts"),
    KeySpec("O", "branch_here", "Branch (fork Off): a new prompt entry with the tokens up to the cursor", display="O",
            group="Prompts"),
    KeySpec("P", "prompt_list", "List the prompt entries (first words) and switch", display="P", group="Prompts"),
    KeySpec("ctrl+r", "reset_prompt", "Reset the prompt to its original tokens", display="Ctrl+r", group="Prompts"),
    KeySpec("x", "save_prompt", "Save the current prompt to a file", True, "x", "Prompts", "Save"),
    KeySpec("e", "cycle_mode", "Cycle visualization modes", True, "e", "Modes", "Mode"),
    KeySpec("J", "scroll_mode(3)", "Scroll the mode panel down", display="J", group="Modes"),
    KeySpec("K", "scroll_mode(-3)", "Scroll the mode panel up", display="K", group="Modes"),
    KeySpec("E", "pick_mode", "Go to a mode: pick it from a list", display="E", group="Modes"),
    KeySpec("p", "layer_toggle", "Layer views / SAE layer (when enabled)", display="p", group="Modes"),
    # The option keys change whichever option of the current mode declares them (ParamSpec.keys).
    KeySpec("less_than_sign", "mode_option('<')", "Mode option: previous layer", display="<", group="Modes"),
    KeySpec("greater_than_sign", "mode_option('>')", "Mode option: next layer", display=">", group="Modes"),
    KeySpec("left_curly_bracket", "mode_option('{')", "Mode option: previous attention head (or mean)", display="{",
            group="Modes"),
    KeySpec("right_curly_bracket", "mode_option('}')", "Mode option: next attention head (or mean)", display="}",
            group="Modes"),
    KeySpec("m", "mode_option('m')", "Mode option: next method (rollout/raw, IG/saliency/input×gradient)", display="m",
            group="Modes"),
    KeySpec("M", "mode_option('M')", "Mode option: next attribution baseline (zero/pad/eos)", display="M",
            group="Modes"),
    KeySpec("v", "cycle_series", "Plot the next per-layer series of the mode", True, "v", "Modes", "Series",
            when="has_series"),
    KeySpec("f", "mode_option('f')", "SAE mode: colour by the next of the cursor token's top features", display="f",
            group="Modes"),
    KeySpec("F", "mode_option('F')", "SAE mode: colour by the previous feature", display="F", group="Modes"),
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
    KeySpec("n", "lab_sample", "Sample the next token with the lab settings (seeded)", True, "n",
            "Decoding lab", "Sample", when="lab_on"),
    KeySpec("N", "lab_generate", "Generate 20 tokens with the lab settings (Esc stops)", True, "N",
            "Decoding lab", "Generate", when="lab_on"),
    KeySpec("slash", "lab_regex", "Constrain the next tokens to a regex (empty line releases it)", display="/",
            group="Decoding lab"),
    KeySpec("pagedown", "lab_scroll(3)", "Lab: scroll its panel down", display="PgDn", group="Decoding lab",
            when="lab_on"),
    KeySpec("pageup", "lab_scroll(-3)", "Lab: scroll its panel up", display="PgUp", group="Decoding lab",
            when="lab_on"),
    KeySpec("o", "beam_open", "Beam search from the current prompt", display="o", group="Decoding lab"),
    KeySpec("I", "interventions_toggle", "Interventions: show the panel and give it the keys (j k select, space "
            "on/off, - = strength, < > layer, x remove) or hide it", display="I", group="Interventions"),
    KeySpec("S", "intervene_vector", "Interventions: steer along a vector from a file (path, layer, alpha)",
            True, "S", "Interventions", "Steer", when="interventions_panel"),
    KeySpec("U", "intervene_feature", "Interventions: steer along the SAE feature chosen with f / F", True, "U",
            "Interventions", "Steer feature", when="interventions_panel"),
    KeySpec("C", "intervene_clamp", "Interventions: clamp the SAE feature chosen with f / F (value or scale)",
            True, "C", "Interventions", "Clamp", when="interventions_panel"),
    KeySpec("A", "intervene_ablate", "Interventions: ablate a head (L.H) or the MLP of a layer", True, "A",
            "Interventions", "Ablate", when="interventions_panel"),
    KeySpec("T", "build_tree", "Build the token tree from the current prompt", display="T", group="Trees & generation"),
    KeySpec("g", "generate_greedy", "Generate 20 tokens greedily and append them", display="g",
            group="Trees & generation"),
    KeySpec("G", "generate_sampled", "Generate 20 tokens sampled with the session seed (replayable)",
            display="G", group="Trees & generation"),
    KeySpec("X", "export_trace", "Export the current prompt's trace as a JSONL logprobs record", display="X",
            group="Trees & generation"),
    KeySpec("y", "compare_next", "Comparison: cursor to the next big disagreement (KL(A‖B) ≥ the prompt's p90)",
            True, "y", "Comparison", "Next KL", when="comparison_open"),
    KeySpec("Y", "compare_prev", "Comparison: cursor to the previous big disagreement", True, "Y", "Comparison",
            "Prev KL", when="comparison_open"),
    KeySpec("W", "compare_swap", "Comparison: swap models A and B (generation and trees run on A)", True, "W",
            "Comparison", "Swap A/B", when="comparison_open"),
    KeySpec("f2", "screenshot", "Save the screen as SVG (named by date, never overwritten)", display="F2",
            group="Share"),
    KeySpec("R", "report", "Write the HTML report of the prompt (current mode, plain, probability)", display="R",
            group="Share"),
    KeySpec("escape", "stop_job", "Stop what runs: a mode computation, a tree build, a generation (g, G, N); "
            "keeps what was made", True, "Esc", "Trees & generation", "Stop", when="job_running"),
    KeySpec("question_mark,f1", "help", "Show all keys", True, "? / F1", label="Help"),
    KeySpec("ctrl+q", "quit", "Quit (the session is autosaved)", True, "Ctrl+q", label="Quit"),
)


def bindings():
    """Textual Binding objects for KEYMAP (imported lazily to keep this module Textual-free)."""
    from textual.binding import Binding

    out = []
    for spec in KEYMAP:
        display = spec.display.split(" / ")[0] if spec.display else None
        out.append(Binding(spec.keys, spec.action, spec.label or spec.description, show=spec.show,
                           key_display=display))
        if spec.when:
            # While the condition is false the binding above is off (and out of the footer);
            # this hidden twin still runs the action, which says why it does nothing now.
            out.append(Binding(spec.keys, f"always({spec.action!r})", spec.description, show=False,
                               key_display=display))
    return out
