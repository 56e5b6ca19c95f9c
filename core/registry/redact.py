"""Strip server internals from job error texts, which every member of a group can read.

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
