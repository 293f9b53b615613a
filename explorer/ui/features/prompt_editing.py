"""Typing and branching inside the app (issue 13 §2): edit the prompt (i), rewind to the
cursor (H), branch at the cursor into a new entry (y), the list of entries (P).

Editing keeps the token ids before the first changed character, so an edit near the end does
not re-tokenise (and change) what the user built token by token before it.
"""

from __future__ import annotations

from explorer.errors import InputError


def kept_prefix(decode, ids: list[int], new_text: str) -> int:
    """How many leading tokens of ``ids`` still spell the start of ``new_text`` (decode: ids -> str)."""
    k = 0
    for i in range(1, len(ids) + 1):
        if new_text.startswith(decode(ids[:i])):
            k = i
        else:
            break
    return k


def retokenize(wrapper, ids: list[int], new_text: str) -> list[int]:
    """``ids`` before the first change, then the tokenizer's ids for the rest of ``new_text``."""
    k = kept_prefix(wrapper.decode, ids, new_text)
    rest = new_text[len(wrapper.decode(ids[:k])):] if k else new_text
    if not rest:
        return list(ids[:k])
    tail = wrapper.encode(rest)
    if k and wrapper.bos_id is not None and tail and tail[0] == wrapper.bos_id:
        tail = tail[1:]  # a BOS belongs at the start of the prompt only
    return list(ids[:k]) + tail


def first_words(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


class PromptEditingMixin:
    """Keys: i (edit), H (rewind to the cursor), y (branch at the cursor), P (prompt list)."""

    def action_edit_prompt(self) -> None:
        if not self.ready:
            return
        from explorer.ui.screens.prompt_screens import PromptEditor

        w = self.session.wrapper
        old = list(self.session.current.ids)

        def done(text: str | None) -> None:
            if text is None or text == w.decode(old):
                return
            if not text.strip():
                self.notify("The prompt is empty; nothing was changed.", severity="warning")
                return
            try:
                self.session.replace_ids(retokenize(w, old, text))
            except InputError as exc:
                self._tell(exc)
                return
            self._request_step()

        self.push_screen(PromptEditor(w.decode(old)), done)

    def action_rewind_here(self) -> None:
        """Cut the prompt after the cursor token (instead of pressing h many times)."""
        if not self.ready:
            return
        i = self.session.cursor_index()
        ids = list(self.session.current.ids)
        if i >= len(ids) - 1:
            self.notify("The cursor is on the last token: nothing to cut. Move it back with Ctrl+k / Ctrl+b.",
                        timeout=4)
            return
        self.session.replace_ids(ids[: i + 1])
        self.notify(f"Rewound to token {i + 1}: {len(ids) - i - 1} tokens cut.", timeout=3)
        self._request_step()

    def action_branch_here(self) -> None:
        """A new prompt entry holding the tokens up to the cursor; the current one stays as it is."""
        if not self.ready:
            return
        i = self.session.cursor_index()
        try:
            self.session.new_prompt(list(self.session.current.ids[: i + 1]))
        except InputError as exc:
            self._tell(exc)
            return
        self.notify(f"Branched at token {i + 1} into prompt {self.session.index + 1}/{self.session.count}.",
                    timeout=3)
        self._request_step()

    def action_prompt_list(self) -> None:
        if self.session is None:
            return
        from explorer.ui.screens.prompt_screens import PromptList

        w = self.session.wrapper
        lines = [f"{k + 1}. {first_words(w.decode(e.ids))}  ({len(e.ids)} tokens)"
                 for k, e in enumerate(self.session.prompts)]

        def chosen(k: int | None) -> None:
            if k is not None and k != self.session.index:
                self.session.index = k
                self._request_step()

        self.push_screen(PromptList(lines, self.session.index), chosen)
