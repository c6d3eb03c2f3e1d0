"""Readable token strings: a tokenizer's raw strings as a person reads them, whitespace made visible.

Pure functions, no model needed: the byte-level (GPT-2), SentencePiece and WordPiece markers undone
(``readable_token``), the scheme read from a ``tokenizer.json`` or guessed from the strings themselves, and the
placeholders for embedding rows no token covers (``_finish_tokens``)."""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from typing import Any

import numpy as np

from .._params import Options, check_param

SCHEMES = ("bytelevel", "sentencepiece", "wordpiece", "plain")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's ``bytes_to_unicode`` table: printable character → byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_SP_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def _escape_byte(b: int) -> str:
    return f"<0x{b:02X}>"


def _decode_bytes(data: bytes) -> str:
    """UTF-8 decode; bytes that do not form a complete sequence are shown as ``<0xE2>`` escapes."""
    text = data.decode("utf-8", errors="surrogateescape")
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return "".join(_escape_byte(ord(ch) - 0xDC00) if "\udc80" <= ch <= "\udcff" else ch for ch in text)


def _visible(text: str) -> str:
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ch < " " or ch == "\x7f" or (unicodedata.category(ch) == "Cc"):
            out.append(_escape_byte(ord(ch)) if ord(ch) < 256 else f"<U+{ord(ch):04X}>")
        else:
            out.append(ch)
    return "".join(out)


def readable_token(raw: str, scheme: str = "plain") -> str:
    """A token string as a person reads it, whitespace made visible.

    ``scheme``: ``bytelevel`` (GPT-2 byte-level BPE: ``Ġthe`` → ``␣the``, ``Ċ`` → ``↵``, bytes of an incomplete
    UTF-8 sequence → ``<0xE2>``), ``sentencepiece`` (``▁the`` → ``␣the``, ``<0x0A>`` → ``↵``), ``wordpiece`` or
    ``plain`` (only whitespace made visible).  Spaces become ``␣``, newlines ``↵``, tabs ``⇥``.

    >>> readable_token("Ġthe", "bytelevel"), readable_token("▁the", "sentencepiece")
    ('␣the', '␣the')
    """
    if scheme not in SCHEMES:       # the check only on the way to its message: this runs once per token
        check_param("readable_token", "scheme", scheme, Options(*SCHEMES))
    if scheme == "bytelevel":
        if raw.isascii() and raw.isprintable() and " " not in raw:
            return raw                            # "!".."~" stand for themselves in the byte table
        table = _byte_decoder()
        if raw and all(ch in table for ch in raw):
            return _visible(_decode_bytes(bytes(table[ch] for ch in raw)))
        return _visible(raw)                      # an added token written as plain text
    if scheme == "sentencepiece":
        m = _SP_BYTE.match(raw)
        if m:
            b = int(m.group(1), 16)
            return _visible(chr(b)) if b < 0x80 else _escape_byte(b)
        return _visible(raw.replace("▁", " "))
    return _visible(raw)


def _guess_scheme(raw_tokens: list[str | None]) -> str:
    """Fallback when the tokenizer does not say: count the markers each scheme leaves in its strings."""
    sample = [t for t in raw_tokens if t]
    counts = {"bytelevel": sum(t.startswith("Ġ") or "Ċ" in t for t in sample),
              "sentencepiece": sum(t.startswith("▁") for t in sample),
              "wordpiece": sum(t.startswith("##") for t in sample)}
    best = max(counts, key=counts.get)
    return best if counts[best] >= max(1, len(sample) // 100) else "plain"


def _scheme_from_tokenizer_json(spec: dict) -> str | None:
    """Byte-level or SentencePiece-like, from a ``tokenizer.json``'s pre-tokenizer, decoder and model."""
    types: set[str] = set()
    replaces_metaspace = False

    def walk(node: Any) -> None:
        nonlocal replaces_metaspace
        if isinstance(node, dict):
            if isinstance(node.get("type"), str):
                types.add(node["type"])
                if node["type"] == "Replace" and "▁" in json.dumps(node, ensure_ascii=False):
                    replaces_metaspace = True
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for part in ("pre_tokenizer", "decoder", "normalizer"):
        walk(spec.get(part))
    if "ByteLevel" in types:
        return "bytelevel"
    model = spec.get("model") or {}
    if "Metaspace" in types or "ByteFallback" in types or replaces_metaspace or model.get("byte_fallback"):
        return "sentencepiece"
    if model.get("type") == "WordPiece" or "WordPiece" in types:
        return "wordpiece"
    return None


def _finish_tokens(raw: list[str | None], excluded: np.ndarray, scheme: str) -> tuple[list[str], list[str]]:
    """Placeholders for rows without a token (excluded too), and the readable strings."""
    raw_tokens, tokens = [], []
    for i, r in enumerate(raw):
        if r is None:
            excluded[i] = True
            r = f"<unused:{i}>"
            raw_tokens.append(r)
            tokens.append(r)
        else:
            raw_tokens.append(r)
            tokens.append(readable_token(r, scheme))
    return raw_tokens, tokens
