"""How a single token is shown: faithful, visible whitespace, special tokens and raw bytes marked.

Decoding one token id at a time with ``tokenizer.decode`` loses information: SentencePiece
tokenizers drop a token's leading space, and a token holding part of a multi-byte UTF-8
character decodes to U+FFFD. We go through the token's vocabulary string instead, undo the
byte-level (GPT-2) or SentencePiece encoding ourselves, and show bytes that are not a
complete character as ``<0xE2>`` escapes. Never imports Textual or Rich.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@dataclass(frozen=True)
class TokenText:
    """One token as a person should see it."""

    text: str
    """The token's own characters (spaces, newlines, tabs as they are); bytes as <0xNN>."""
    kind: str = "normal"
    """"normal", "special" (BOS/EOS/chat markers) or "bytes" (part of a UTF-8 character)."""

    def visible(self) -> str:
        """The text with whitespace and control characters made visible, for tables."""
        return visible_whitespace(self.text) if self.kind != "special" else self.text


@lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    """Inverse of the GPT-2 byte-to-unicode table used by byte-level BPE vocabularies.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes are shifted to code
    points 256 and up, in byte order.
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table: dict[str, int] = {chr(b): b for b in keep}
    shift = 0
    for b in range(256):
        if b not in table.values():
            table[chr(256 + shift)] = b
            shift += 1
    return table


def _bytes_to_text(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "normal"
    except UnicodeDecodeError:
        # Show the longest valid prefix as text and the rest as escapes (a token may end mid-character).
        out, i = [], 0
        kind = "normal"
        while i < len(raw):
            for j in range(len(raw), i, -1):
                try:
                    out.append(raw[i:j].decode("utf-8"))
                    i = j
                    break
                except UnicodeDecodeError:
                    continue
            else:
                out.append(f"<0x{raw[i]:02X}>")
                kind = "bytes"
                i += 1
        return "".join(out), kind


def visible_whitespace(text: str) -> str:
    """Make spaces, newlines, tabs and control characters visible (for a table cell)."""
    out = []
    for ch in text:
        if ch == " ":
            out.append("␣")
        elif ch == "\n":
            out.append("↵")
        elif ch == "\t":
            out.append("⇥")
        elif ch == "\r":
            out.append("␍")
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\u200d":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def safe_for_display(text: str) -> str:
    """Keep newlines and tabs, escape every other control character (ANSI ESC included)."""
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


class TokenRenderer:
    """Turns token ids into TokenText, with a cache (bounded by the vocabulary size)."""

    def __init__(self, tokenizer) -> None:
        self._tok = tokenizer
        self._special = set(getattr(tokenizer, "all_special_ids", []) or [])
        for tid, added in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items():
            if getattr(added, "special", False):
                self._special.add(int(tid))
        vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
        sample = list(vocab)[:5000]
        self._byte_level = any("Ġ" in t or "Ċ" in t for t in sample)
        self._sentencepiece = not self._byte_level and any(t.startswith("▁") for t in sample)
        self._cache: dict[int, TokenText] = {}

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special

    def __call__(self, token_id: int) -> TokenText:
        cached = self._cache.get(token_id)
        if cached is None:
            cached = self._cache[token_id] = self._render(int(token_id))
        return cached

    def _render(self, token_id: int) -> TokenText:
        piece = self._tok.convert_ids_to_tokens(token_id)
        if piece is None:
            return TokenText(f"<id {token_id}>", "special")
        if token_id in self._special:
            return TokenText(safe_for_display(piece), "special")
        if self._byte_level:
            table = _byte_level_decoder()
            if all(ch in table for ch in piece):
                text, kind = _bytes_to_text(bytes(table[ch] for ch in piece))
                return TokenText(safe_for_display(text), kind)
        if self._sentencepiece:
            m = _BYTE_FALLBACK.match(piece)
            if m:
                text, kind = _bytes_to_text(bytes([int(m.group(1), 16)]))
                return TokenText(safe_for_display(text), kind)
            return TokenText(safe_for_display(piece.replace("▁", " ")), "normal")
        text = self._tok.decode([token_id])
        if "\ufffd" in text and "\ufffd" not in piece:
            return TokenText(safe_for_display(piece), "bytes")
        return TokenText(safe_for_display(text), "normal")
