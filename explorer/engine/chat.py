"""Chat templates: turn a user message into the token ids a chat model expects (``--chat``).

Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.engine.model import ModelWrapper
from explorer.errors import InputError


def chat_text(wrapper: ModelWrapper, message: str) -> str:
    """The model's chat template applied to one user message, ending where the reply begins."""
    tokenizer = wrapper.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(f"{wrapper.name} has no chat template; leave out --chat.")
    return tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                         add_generation_prompt=True)


def chat_ids(wrapper: ModelWrapper, message: str) -> list[int]:
    """Token ids of :func:`chat_text`; the template already holds any BOS, so none is added again."""
    return list(wrapper.tokenizer(chat_text(wrapper, message), add_special_tokens=False)["input_ids"])
