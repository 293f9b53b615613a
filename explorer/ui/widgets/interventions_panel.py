"""The interventions panel: the list in force, the selected one marked, and KL(intervened ‖ baseline).

Self-contained: it holds the list as data (``explorer.engine.interventions.spec``) and posts
a message for every change the user asks for; the app applies it with
``Session.set_interventions`` (which may refuse with one sentence, shown as a notification)
and calls :meth:`InterventionsPanel.show` with the list in force and the latest EffectView.

Keys while focused: ``j``/``k`` or arrows select, ``space`` toggles, ``-``/``=`` strength,
``<``/``>`` layer (steering and ablations; an SAE clamp belongs to its SAE's layer), ``x``
removes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from explorer.engine.interventions.spec import Clamp, Intervention, Steer

STEER_STEP = 0.5  # α per key press
SHARE_STEP = 0.1  # share of a clamp / ablation per key press


def next_strength(item: Intervention, direction: int) -> float:
    """The strength after one ``-`` (direction −1) or ``=`` (+1) press."""
    if isinstance(item, Steer):
        return round(item.strength + direction * STEER_STEP, 6)
    return round(min(1.0, max(0.0, item.strength + direction * SHARE_STEP)), 6)


class InterventionsPanel(Static, can_focus=True):
    """Shows the interventions; posts what the user wants changed (it changes nothing itself)."""

    DEFAULT_CSS = """
    InterventionsPanel { height: auto; max-height: 14; border: round $accent; padding: 0 1; }
    InterventionsPanel:focus { border: round $accent-lighten-2; }
    """

    BINDINGS = [
        Binding("j,down", "select(1)", "Next", show=False),
        Binding("k,up", "select(-1)", "Previous", show=False),
        Binding("space", "toggle", "On/off"),
        Binding("minus", "strength(-1)", "Weaker"),
        Binding("equals_sign", "strength(1)", "Stronger"),
        Binding("less_than_sign", "layer(-1)", "Layer −", show=False),
        Binding("greater_than_sign", "layer(1)", "Layer +", show=False),
        Binding("x", "remove", "Remove"),
    ]

    @dataclass
    class Changed(Message):
        """The user asked for ``items`` (the whole new list); ``what`` says what changed, for a notification."""

        items: tuple
        what: str

    selected: reactive[int] = reactive(0)

    def __init__(self, *, n_layers: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_layers = n_layers
        self.items: tuple[Intervention, ...] = ()
        self.kl: float | None = None

    def show(self, items, kl: float | None) -> None:
        """Show the list in force and the next-token KL (None when no effect was computed)."""
        self.items = tuple(items)
        self.kl = kl
        self.selected = min(self.selected, max(0, len(self.items) - 1))
        self.update(self.render_text())

    def render_text(self) -> Text:
        text = Text()
        if not self.items:
            text.append("No interventions. Add one from the command palette or a command.", style="dim")
            return text
        for i, item in enumerate(self.items):
            mark = "▶ " if i == self.selected else "  "
            state = "on " if item.enabled else "off"
            text.append(f"{mark}[{state}] {item.describe()}\n", style="bold" if i == self.selected else "")
        if self.kl is not None:
            text.append(f"KL(intervened ‖ baseline) = {self.kl:.4f} nats (next token)")
        return text

    def watch_selected(self) -> None:
        self.update(self.render_text())

    # --------------------------------------------------------------- actions
    def _post(self, items, what: str) -> None:
        self.post_message(self.Changed(tuple(items), what))

    def action_select(self, step: int) -> None:
        if self.items:
            self.selected = (self.selected + step) % len(self.items)

    def action_toggle(self) -> None:
        if not self.items:
            return
        item = self.items[self.selected]
        items = list(self.items)
        items[self.selected] = replace(item, enabled=not item.enabled)
        self._post(items, f"{'off' if item.enabled else 'on'}: {item.describe()}")

    def action_strength(self, direction: int) -> None:
        if not self.items:
            return
        items = list(self.items)
        item = items[self.selected]
        items[self.selected] = replace(item, strength=next_strength(item, direction))
        self._post(items, items[self.selected].describe())

    def action_layer(self, step: int) -> None:
        if not self.items:
            return
        item = self.items[self.selected]
        if isinstance(item, Clamp):
            self.notify("An SAE clamp stays at its SAE's layer.", severity="warning")
            return
        layer = item.layer + step
        if not 0 <= layer < self.n_layers:
            self.notify(f"Layer {layer} is out of range (0..{self.n_layers - 1}).", severity="warning")
            return
        items = list(self.items)
        items[self.selected] = replace(item, layer=layer)
        self._post(items, items[self.selected].describe())

    def action_remove(self) -> None:
        if not self.items:
            return
        items = list(self.items)
        gone = items.pop(self.selected)
        self._post(items, f"removed: {gone.describe()}")
