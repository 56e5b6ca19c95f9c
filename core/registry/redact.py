"""Strip server internals from what members read: job error texts, job summaries, configs.

A failed job's message comes from an exception on a worker, and exceptions name files by
absolute path (``/srv/srflow/work/<job>/checkpoint.pt``) and brokers by URL, credentials
included. :func:`redact` keeps what a physicist acts on — the file's name, the message —
and drops the directories and the credentials:

- an absolute POSIX path of two or more components → ``.../NAME`` (API paths ``/v1/...``
  and fractions such as ``ESS/N`` or ``1/(2d)`` are left alone);
- ``scheme://user:password@host`` → ``scheme://***@host``.
"""

from __future__ import annotations

import re
from typing import Any

_PATH = re.compile(r"(?<![\w.~:/\\-])(?:/[\w.@+~-]+){2,}/?")
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")


def _short(m: re.Match[str]) -> str:
    path = m.group(0)
    if path.startswith("/v1/"):
        return path
    return ".../" + path.rstrip("/").rsplit("/", 1)[-1]


def redact(text: str | None) -> str | None:
    """``text`` without absolute filesystem paths and URL credentials (None stays None)."""
    if text is None:
        return None
    return _PATH.sub(_short, _CREDENTIALS.sub(r"\g<scheme>***@", text))


def redact_paths(value: Any) -> Any:
    """A copy of a JSON value with :func:`redact` applied to every string in it (a job's
    summary and a flow's config name work files by path). Call it on values of bounded
    depth (:mod:`core.registry.json_depth`): it recurses."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_paths(v) for v in value]
    return value
