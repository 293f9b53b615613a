"""Prompt text and ids for the commands that take ``--chat`` (tree, logprobs)."""

from __future__ import annotations

import argparse

from explorer.commands.common import prompt_file_from_args, prompt_ids_from_args
from explorer.errors import InputError


def prompt_text_from_args(args: argparse.Namespace) -> str:
    """The raw text of --prompt or --input (before any chat template)."""
    if getattr(args, "input", None):
        return prompt_file_from_args(args).text
    if getattr(args, "prompt", None) is not None:
        if not args.prompt.strip():
            raise InputError("The prompt is empty; give some text to start from.")
        return args.prompt
    raise InputError("Give a prompt with --prompt TEXT or --input FILE.")


def prompt_from_args(args: argparse.Namespace, session, *, chat: bool) -> tuple[str, list[int]]:
    """(text, ids): with ``chat`` the text is the templated conversation, else the prompt as given."""
    from explorer.engine.chat import chat_ids, chat_text

    if chat:
        message = prompt_text_from_args(args)
        return chat_text(session.wrapper, message), chat_ids(session.wrapper, message)
    ids = prompt_ids_from_args(args, session)
    text = args.prompt if getattr(args, "prompt", None) is not None else session.wrapper.decode(ids)
    return text, ids
