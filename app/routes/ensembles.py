"""/v1/ensembles: metadata with observables, the HDF5 download (Range, ETag, digest) and
the per-configuration series as pyerrors JSON (core.physics.io.pyerrors_json; no torch).

A reader who may see an ensemble but not the model version it was sampled from gets the
file without that model's name (:mod:`core.registry.ensemble_redaction`); the metadata's
``sha256``/``size`` are then that file's, so checksums, ETags and ranges stay consistent.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.deps import CallerDep, SessionDep, SettingsDep
from app.operations import REDACTED_MODEL, model_link, public_summary, rfc3339
from app.problems import Problem
from app.ranges import serve_blob
from app.responses import EnsembleOut, binary
from core.physics.io.pyerrors_json import SeriesMissing, ensemble_document, gzipped
from core.registry import catalog
from core.registry.ensemble_redaction import redacted_blob
from core.registry.keys import Caller
from core.registry.models import Ensemble
from core.registry.store import ArtifactStore, Blob
from core.settings import Settings

router = APIRouter(tags=["ensembles"])
HDF5 = "application/x-hdf5"
GZIP = "application/gzip"


def ensemble_or_404(session: Any, ensemble_id: str, caller: Caller) -> Ensemble:
    ens = catalog.get_ensemble(session, ensemble_id, caller)
    if ens is None:
        raise Problem(404, f"no ensemble {ensemble_id!r}: a finished hmc or sample job names "
                      "its ensemble in response.ensemble.id", slug="ensemble-not-found")
    return ens


def hides_model(session: Any, e: Ensemble, caller: Caller) -> bool:
    """True when ``e`` was sampled from a model version the caller may not see."""
    mv = e.model_version
    return mv is not None and catalog.get_version(session, mv.model.name, mv.version,
                                                  caller) is None


def _source_model(session: Any, e: Ensemble, caller: Caller) -> Any:
    """The model version a sample ensemble came from, named only to a caller who can see
    that version (docs/sharing.md); ``REDACTED_MODEL`` to others, None for hmc."""
    mv = e.model_version
    if mv is None:
        return None
    if hides_model(session, e, caller):
        return REDACTED_MODEL
    return model_link(mv.model.name, mv.version)


def file_for(session: Any, settings: Settings, e: Ensemble, caller: Caller) -> Blob:
    """The HDF5 file this caller gets: the ensemble's, or — when its source model is
    hidden from them — the copy without the model's name (made once, then recorded)."""
    if not hides_model(session, e, caller):
        return Blob(e.sha256, e.size, e.blob_path)
    store = ArtifactStore(settings.artifacts_dir)
    if not (store.root / e.blob_path).is_file():
        raise _missing(e)
    blob = redacted_blob(store, e)
    session.commit()
    return blob


def _missing(e: Ensemble) -> Problem:
    return Problem(500, f"ensemble {e.id} is registered but its file is missing from the "
                   "artifact store; tell the admin")


@router.get("/ensembles/{ensemble_id}", summary="Ensemble metadata and observables",
            response_model=EnsembleOut, response_model_exclude_unset=True)
def get_ensemble(ensemble_id: str, session: SessionDep, caller: CallerDep,
                 settings: SettingsDep) -> dict[str, Any]:
    """``sha256`` and ``size`` are those of the file this caller downloads (without the
    source model's name when that model is hidden from them)."""
    e = ensemble_or_404(session, ensemble_id, caller)
    blob = file_for(session, settings, e, caller)
    return {
        "id": e.id, "job_id": e.job_id, "kind": e.kind,
        "theory": {"dim": e.dim, "L": e.L, "kappa": e.kappa, "lam": e.lam},
        "n": e.n,
        "model": _source_model(session, e, caller),
        "summary": public_summary(e.summary or {}, e.id, None),
        "observables": (e.summary or {}).get("observables"),
        "sha256": blob.sha256, "size": blob.size,
        "owner": e.owner, "group": e.group, "visibility": e.visibility,
        "create_time": rfc3339(e.create_time),
        "download": f"/v1/ensembles/{e.id}/download",
    }


@router.get("/ensembles/{ensemble_id}/download", summary="HDF5 file (Range requests welcome)",
            response_class=Response,
            responses={200: binary(HDF5, "the whole file"),
                       206: binary(HDF5, "the requested byte range (Content-Range)"),
                       304: {"description": "Not modified (If-None-Match)"},
                       416: {"description": "Range not satisfiable"}})
def download_ensemble(
    ensemble_id: str, request: Request, session: SessionDep, caller: CallerDep,
    settings: SettingsDep,
) -> Response:
    """The file as :func:`get_ensemble` describes it to this caller (same sha256/ETag)."""
    e = ensemble_or_404(session, ensemble_id, caller)
    blob = file_for(session, settings, e, caller)
    path = settings.artifacts_dir / blob.relpath
    if not path.is_file():
        raise _missing(e)
    return serve_blob(request, path, blob.sha256, HDF5, f"ensemble-{e.id}.h5")


@router.get("/ensembles/{ensemble_id}/pyerrors",
            summary="Per-configuration series as pyerrors JSON (gzipped)",
            response_class=Response,
            responses={200: binary(GZIP, "pyerrors JSON 1.1, gzipped: "
                                   "pyerrors.input.json.load_json(path) reads it"),
                       409: {"description": "the file was written before srflow stored "
                                            "per-configuration series"}})
def pyerrors_export(ensemble_id: str, session: SessionDep, caller: CallerDep,
                    settings: SettingsDep) -> Response:
    """One Monte Carlo ensemble ``srflow-<id>``: a direct sampler's chains as replicas, a
    flow ensemble's Markov chain as replica ``chain`` and its proposals' importance weights
    as replica ``proposals`` (docs/free_energy.md). The document's description (JSON) names
    the theory, the series and, for flow ensembles, log Z with its parts."""
    e = ensemble_or_404(session, ensemble_id, caller)
    blob = file_for(session, settings, e, caller)
    path = settings.artifacts_dir / blob.relpath
    if not path.is_file():
        raise _missing(e)
    summary = e.summary or {}
    about = {"srflow_ensemble": e.id, "kind": e.kind,
             "theory": {"dim": e.dim, "L": e.L, "kappa": e.kappa, "lam": e.lam},
             "series": "per configuration: magnetization M, abs_magnetization |M|, m2, m4, "
                       "phi2 (φ² density), action_density S/V, min_momentum_power F, dS_dkappa "
                       "and dS_dlam (eq. 35; log w = −Δκ dS_dkappa − Δλ dS_dlam reweights in "
                       "the couplings)",
             "free_energy": summary.get("free_energy")}
    try:
        body = gzipped(ensemble_document(path, f"srflow-{e.id}", about))
    except SeriesMissing:
        raise Problem(409, f"ensemble {e.id} was written before srflow stored per-configuration "
                      "series: run its job again to export it", slug="series-missing") from None
    return Response(body, media_type=GZIP, headers={
        "Content-Disposition": f'attachment; filename="srflow-{e.id}.json.gz"'})
