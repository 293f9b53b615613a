"""Decoding-lab flags shared by commands: --temperature ... --eta, --ban, --bias, --greedy, --regex.

Numbers are checked before the model loads (exit 2 with the valid range); token texts in
--ban/--bias are turned into ids once the tokenizer is there.
"""

from __future__ import annotations

import argparse
import math
import re

from explorer.errors import InputError

from explorer.engine.decoding.settings import TUNABLES

_NUMERIC = tuple((t.name, t.kind) for t in TUNABLES)


def add_decoding_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding lab (transformers' own logits processors, in generate()'s order)")
    for t in TUNABLES:  # the lab's numeric settings, declared once in engine/decoding/settings.py
        g.add_argument(t.flag, dest=t.name, type=t.kind, metavar=t.metavar, help=t.help)
    g.add_argument("--ban", action="append", default=[], metavar="TOKEN",
                   help="never produce TOKEN: a token id, or text (several tokens = a banned sequence); repeatable")
    g.add_argument("--bias", action="append", default=[], metavar="TOKEN=VALUE",
                   help="add VALUE to TOKEN's logit (id or text, as --ban); repeatable")
    g.add_argument("--greedy", action="store_true",
                   help="greedy decoding: only bias/penalty/ban apply, not the sampling stages")
    rx = g.add_mutually_exclusive_group()
    rx.add_argument("--regex", metavar="PATTERN", help="constrain the next token to those that keep a match of PATTERN possible")
    rx.add_argument("--regex-file", metavar="FILE", help="read the regex from FILE (e.g. prompts/date.regex)")


def _parse_bias(item: str) -> tuple[str, float]:
    if "=" not in item:
        raise InputError(f'--bias needs TOKEN=VALUE, found "{item}".')
    token, _, value = item.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f'The bias value in "{item}" is not a number.') from None
    if not token:
        raise InputError(f'--bias needs a token before "=", found "{item}".')
    return token, number


def decoding_requested(args: argparse.Namespace) -> bool:
    return (any(getattr(args, name, None) is not None for name, _ in _NUMERIC) or bool(args.ban) or bool(args.bias)
            or args.greedy or bool(args.regex) or bool(args.regex_file))


def check_decoding_early(args: argparse.Namespace):
    """Validate the numeric flags (and bias values) before the model loads; returns the settings without tokens."""
    from explorer.engine.decoding.settings import DecodingSettings

    values = {name: getattr(args, name) for name, _ in _NUMERIC if getattr(args, name, None) is not None}
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"--{name.replace('_', '-')} must be a finite number, found {value}.")
    for item in args.bias:
        _parse_bias(item)
    if args.regex is not None and not args.regex.strip():
        raise InputError("The regex is empty; type a pattern such as [0-9]{4}-[0-9]{2}-[0-9]{2}.")
    return DecodingSettings(do_sample=not args.greedy, **values)


def token_ids(text: str, wrapper) -> tuple[int, ...]:
    """A --ban/--bias TOKEN: an id (digits, or "id:N") or text tokenized without special tokens."""
    if re.fullmatch(r"(id:)?\d+", text):
        tid = int(text.removeprefix("id:"))
        if tid >= wrapper.vocab_size:
            raise InputError(f"Token id {tid} is outside the vocabulary (0..{wrapper.vocab_size - 1}).")
        return (tid,)
    ids = wrapper.tokenizer(text.removeprefix("text:"), add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f'"{text}" gives no tokens.')
    return tuple(int(i) for i in ids)


def settings_from_args(args: argparse.Namespace, wrapper):
    """The full DecodingSettings, with --ban/--bias resolved against the model's tokenizer."""
    from dataclasses import replace

    settings = check_decoding_early(args)
    bans = tuple(token_ids(t, wrapper) for t in args.ban)
    biases = tuple((token_ids(tok, wrapper), value) for tok, value in map(_parse_bias, args.bias))
    return replace(settings, bans=bans, biases=biases)


def regex_from_args(args: argparse.Namespace) -> str | None:
    if args.regex_file:
        from explorer.engine.decoding.constraint import read_regex_file

        return read_regex_file(args.regex_file)
    return args.regex
