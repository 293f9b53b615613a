"""How guided generation's input is tokenized: prompt, blank line, guide (seeds/001).

The context is ``prompt + "\\n\\n"``; the guide is forced after it. A tokenizer may merge across
that join (``"\\n\\n"`` followed by a guide starting with a newline or spaces becomes one
``"\\n\\n\\n"`` or ``"\\n\\n  "`` token), so the two ways of tokenizing can differ:

  * ``separate``: the context tokenized on its own, then the guide tokenized on its own. The
    context is exactly what a plain run of that prompt sees, but when a merge exists the forced
    tokens are a sequence the tokenizer would never produce for the joined text.
  * ``joint``: ``prompt + "\\n\\n" + guide`` tokenized as one text and split where it stops agreeing
    with the context's tokens; the forced tokens then start with whatever the tokenizer made of
    the join (their text may begin with part of the blank line).

When the context's tokens are a prefix of the joined text's tokens, no merge crosses the join and
the joined text's remaining tokens are forced (the tokenizer's own; both choices give this).
``GuidedInput`` says which tokenization was scored and whether the join merges. With a chat template the guide starts the reply after the
template's own text and is tokenized separately. Never imports Textual or Rich.
"""

from __future__ import annotations

from dataclasses import dataclass

GUIDE_SEPARATOR = "\n\n"  # the notebook's blank line between the prompt and the forced prefix
TOKENIZATIONS = ("separate", "joint")


@dataclass(frozen=True)
class GuidedInput:
    context: list[int]
    """Token ids fed before the forced ones."""
    forced: list[int]
    """Guide token ids, forced and scored."""
    tokenization: str
    """Which tokenization was scored: "separate" or "joint"."""
    join_merges: bool
    """True when the joined text's tokens do not start with the context's: a token crosses the join."""

    def record_fields(self, decode) -> dict:
        """The fields the logprobs JSONL record gets (``decode`` turns ids into text)."""
        return {"guide_tokenization": self.tokenization, "guide_join_merges": self.join_merges,
                "forced_text": decode(self.forced)}


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def guided_input(wrapper, prompt: str, guide: str, *, tokenization: str = "separate",
                 chat: bool = False) -> GuidedInput:
    """Context and forced ids for guided generation, tokenized as ``tokenization`` says."""
    if tokenization not in TOKENIZATIONS:
        from explorer.errors import InputError

        raise InputError(f'guide tokenization "{tokenization}" is not known; choose separate or joint.')
    guide_alone = list(wrapper.tokenizer(guide, add_special_tokens=False)["input_ids"])
    if chat:
        from explorer.engine.chat import chat_ids

        # The template ends where the reply begins; the guide is the reply's first tokens.
        return GuidedInput(chat_ids(wrapper, prompt), guide_alone, "separate", False)
    context = list(wrapper.encode(prompt + GUIDE_SEPARATOR))
    joined = list(wrapper.encode(prompt + GUIDE_SEPARATOR + guide))
    if joined[: len(context)] == context and len(joined) > len(context):
        return GuidedInput(context, joined[len(context):], "joint", False)
    if tokenization == "joint":
        # Split where the joined text's tokens stop agreeing with the context's (at least one token stays).
        cut = max(1, min(_common_prefix(joined, context), len(joined) - 1))
        return GuidedInput(joined[:cut], joined[cut:], "joint", True)
    return GuidedInput(context, guide_alone, "separate", True)
