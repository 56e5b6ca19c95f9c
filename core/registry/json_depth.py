"""How deeply a user's JSON nests, measured on the raw bytes before anything parses it.

Python's parser and every encoder after it (FastAPI's, SQLAlchemy's JSON column, the
response) recurse once per level: a small document nested a few hundred levels deep
parses, is stored, and then answers 500 (RecursionError) to everyone who reads it. So every
JSON a user sends — request bodies, an upload's ``config.json``/``metrics.json``/
``registry.json``, the safetensors header — is refused beyond :data:`MAX_JSON_DEPTH`
arrays/objects deep, before it is parsed:

- :class:`DepthScanner` counts ``[``/``{`` minus ``]``/``}`` outside strings, fed chunk by
  chunk (a request body as it arrives); escapes and chunk boundaries are handled;
- :func:`depth_within` walks a value already parsed (rows stored before the limit), with
  a loop, not recursion.
"""

from __future__ import annotations

import re
from typing import Any

MAX_JSON_DEPTH = 32  # specs nest 3 deep, metrics.json and config.json at most 5

_TOKENS = re.compile(rb'[\\"\[\]{}]')
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


class DepthScanner:
    """Incremental nesting depth of a JSON text; :attr:`too_deep` once beyond ``limit``."""

    def __init__(self, limit: int = MAX_JSON_DEPTH) -> None:
        self.limit = limit
        self.depth = 0
        self.too_deep = False
        self._in_string = False
        self._escaped = False  # the previous chunk ended inside a string on a backslash

    def feed(self, data: bytes) -> bool:
        """Scan the next chunk; False once the text nests deeper than the limit."""
        if self.too_deep:
            return False
        skip = 0 if self._escaped else -1
        self._escaped = False
        for m in _TOKENS.finditer(data):
            i = m.start()
            if i == skip:
                continue
            c = data[i]
            if self._in_string:
                if c == _BACKSLASH:
                    if i + 1 == len(data):
                        self._escaped = True
                    skip = i + 1
                elif c == _QUOTE:
                    self._in_string = False
            elif c == _QUOTE:
                self._in_string = True
            elif c in _OPEN:
                self.depth += 1
                if self.depth > self.limit:
                    self.too_deep = True
                    return False
            elif c in _CLOSE:
                self.depth -= 1
        return True


def within_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if the JSON text ``raw`` nests at most ``limit`` arrays/objects deep."""
    return DepthScanner(limit).feed(raw)


def depth_within(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if a parsed value (dicts, lists, scalars) nests at most ``limit`` deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth + 1 > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True
