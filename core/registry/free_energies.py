"""The free energies measured with a model version: one row per sample ensemble the
caller may see (DESIGN §10; the model card and the dashboard list them).

A sample job's summary carries ``free_energy`` (core.jobs.free_energy): log Z ± error,
f = −log Z/V ± error, whether it is trusted and the caveat codes when not. Rows are read
from the registry's ensemble summaries, newest first; nothing is recomputed here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.registry.jobs import visible_to
from core.registry.keys import Caller
from core.registry.models import Ensemble, ModelVersion

MAX_ROWS = 20


def free_energy_row(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """log Z, its error, f, its error, trusted and the caveat codes of a sample summary
    (None when it has no log Z)."""
    fe = (summary or {}).get("free_energy")
    if not isinstance(fe, dict) or "log_z" not in fe:
        return None
    caveats = fe.get("caveats") or []
    return {"log_z": fe.get("log_z"), "error": fe.get("error"), "f": fe.get("f"),
            "f_error": fe.get("f_error"), "trusted": bool(fe.get("trusted")),
            "caveats": [c.get("code") for c in caveats if isinstance(c, dict)]}


def free_energies_of(session: Session, mv: ModelVersion, caller: Caller | None,
                     limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    """The visible sample ensembles of ``mv`` with a log Z: ensemble id, N, (κ, λ) and
    :func:`free_energy_row`, newest first (at most ``limit``)."""
    stmt = (select(Ensemble).where(Ensemble.model_version_id == mv.id)
            .order_by(Ensemble.create_time.desc()))
    if caller is not None:
        stmt = stmt.where(visible_to(Ensemble, caller))
    rows = []
    for e in session.scalars(stmt):
        row = free_energy_row(e.summary)
        if row is not None:
            rows.append({"ensemble": e.id, "n": e.n, "kappa": e.kappa, "lam": e.lam, **row})
        if len(rows) >= limit:
            break
    return rows
