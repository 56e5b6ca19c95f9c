"""One-line CLI errors that name the parameter and the fix."""

from __future__ import annotations

from pydantic import ValidationError


def flag(field: str) -> str:
    """The CLI flag of a spec field: ``n_samples`` → ``--n-samples``."""
    return "--" + field.replace("_", "-")


def one_line(err: ValidationError) -> str:
    """Compress a pydantic error into one line: ``--lam=-1.0: Input should be ≥ 0; ...``."""
    parts = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if not isinstance(p, int) and p not in ("spec",)]
        msg = str(e["msg"]).removeprefix("Value error, ")
        if loc:
            parts.append(f"{flag(loc[-1])}={e.get('input')!r}: {msg}")
        else:
            parts.append(msg)
    return "; ".join(parts)
