"""/v1/ensembles: metadata with observables, and the HDF5 download (Range, ETag, digest)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.deps import CallerDep, SessionDep, SettingsDep
from app.operations import REDACTED_MODEL, model_link, rfc3339
from app.problems import Problem
from app.ranges import serve_blob
from core.registry import catalog
from core.registry.keys import Caller
from core.registry.models import Ensemble, ModelVersion

router = APIRouter(tags=["ensembles"])


def ensemble_or_404(session: Any, ensemble_id: str, caller: Caller) -> Ensemble:
    ens = catalog.get_ensemble(session, ensemble_id, caller)
    if ens is None:
        raise Problem(404, f"no ensemble {ensemble_id!r}: a finished hmc or sample job names "
                      "its ensemble in response.ensemble.id", slug="ensemble-not-found")
    return ens


def _source_model(session: Any, mv: ModelVersion | None, caller: Caller) -> Any:
    """The model version a sample ensemble came from, named only to a caller who can see
    that version (docs/sharing.md); ``REDACTED_MODEL`` to others, None for hmc."""
    if mv is None:
        return None
    if catalog.get_version(session, mv.model.name, mv.version, caller) is None:
        return REDACTED_MODEL
    return model_link(mv.model.name, mv.version)


@router.get("/ensembles/{ensemble_id}", summary="Ensemble metadata and observables")
def get_ensemble(ensemble_id: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    e = ensemble_or_404(session, ensemble_id, caller)
    mv = e.model_version
    return {
        "id": e.id, "job_id": e.job_id, "kind": e.kind,
        "theory": {"dim": e.dim, "L": e.L, "kappa": e.kappa, "lam": e.lam},
        "n": e.n,
        "model": _source_model(session, mv, caller),
        "summary": e.summary,
        "observables": (e.summary or {}).get("observables"),
        "sha256": e.sha256, "size": e.size,
        "owner": e.owner, "group": e.group, "visibility": e.visibility,
        "create_time": rfc3339(e.create_time),
        "download": f"/v1/ensembles/{e.id}/download",
    }


@router.get("/ensembles/{ensemble_id}/download", summary="HDF5 file (Range requests welcome)",
            response_class=Response,
            responses={206: {"description": "Partial content"},
                       416: {"description": "Range not satisfiable"}})
def download_ensemble(
    ensemble_id: str, request: Request, session: SessionDep, caller: CallerDep,
    settings: SettingsDep,
) -> Response:
    e = ensemble_or_404(session, ensemble_id, caller)
    path = settings.artifacts_dir / e.blob_path
    if not path.is_file():
        raise Problem(500, f"ensemble {e.id} is registered but its file is missing from the "
                      "artifact store; tell the admin")
    return serve_blob(request, path, e.sha256, "application/x-hdf5", f"ensemble-{e.id}.h5")
