"""Command palette provider: every action of the key map, searchable by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from explorer.ui.keymap import KEYMAP


class ExplorerCommands(Provider):
    def _items(self):
        for spec in KEYMAP:
            yield f"{spec.description} ({spec.display or spec.keys})", spec.action
        # One entry per mode, so a mode is reached by typing its name instead of cycling with e.
        from explorer.analyses import ANALYSES

        for a in ANALYSES:
            yield f"Mode: {a.label}", f"set_mode({a.name!r})"

    async def discover(self) -> Hits:
        for text, action in self._items():
            yield DiscoveryHit(text, partial(self.app.run_action, action), help=f"action: {action}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, action in self._items():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self.app.run_action, action), help=f"action: {action}")
