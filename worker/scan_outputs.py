"""Register what a scan job produced (core.jobs.scan_job): per point a model version and an
ensemble, the fig. 4 plot as an artifact, and the scan record as the job's result.

Each point is registered "as usual": it gets two finished child job rows —
``<scan id>.pNN.train`` (its model version, named like any train job's default,
``GROUP.METHOD-dD-LL-kκ-lλ``, or ``GROUP.OWNER.…`` when another member holds that name
where the owner may not add to it) and ``<scan id>.pNN.sample`` (its ensemble, whose id is that
job's id) — so ``GET /v1/jobs/{child}``, the model card and the ensemble all name where
they came from. Everything, including the scan row's final state, is one transaction,
conditional on this attempt still owning the scan: a superseded attempt registers nothing.
A cancelled or interrupted scan keeps (registers) the points it finished.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from core.jobs.scan_spec import ScanSpec
from core.registry import catalog, jobs
from core.registry.db import session_factory
from core.registry.models import Job, utcnow
from core.registry.store import ArtifactStore
from core.settings import Settings
from worker.finish import cancel_requested, clean_json, finish_plain, time_limit_error
from worker.outputs import ensemble_fields, model_fields, stamp_hdf5

log = logging.getLogger("srflow.worker")
MODEL_FILES = ("model.safetensors", "config.json", "metrics.json")


def plot_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}/plot"


def name_parent(config: Path, parent_ref: str | None) -> None:
    """A warm-started point's flow records its parent by the work directory it was read
    from; the registered config.json names the parent's registry reference instead (no
    server path in what members download)."""
    if not config.is_file():
        return
    data = json.loads(config.read_text())
    if isinstance(data, dict) and data.get("parent") and data["parent"] != parent_ref:
        data["parent"] = parent_ref
        config.write_text(json.dumps(data, indent=2))


def _child(scan: Job, suffix: str, kind: str, spec: dict[str, Any]) -> Job:
    now = utcnow()
    return Job(id=f"{scan.id}.{suffix}", kind=kind, spec=spec, status="succeeded",
               queue=scan.queue, progress={}, owner=scan.owner, group=scan.group,
               visibility=scan.visibility, create_time=now, update_time=now,
               start_time=scan.start_time, end_time=now, attempts=1, cancel_requested=False)


def finish_scan(settings: Settings, job_id: str, token: str, result: Any, wall: float,
                progress: dict[str, Any], workdir: Path, stop: Any) -> str:
    """The scan's final state — cancelled (a cancel was requested), succeeded (every point
    ran) or failed (a point failed, or a deadline or a lost job interrupted one) — with its
    finished points registered in every case."""
    error: tuple[str, str] | None = None
    if cancel_requested(settings, job_id):
        state = "cancelled"
    elif result.stopped == "complete":
        state = "succeeded"
    else:
        state = "failed"
        kept = f"{len(result.points)} of {result.n_points} points finished and were kept"
        if result.stopped == "failed":
            error = ("PointFailed", f"{result.summary.get('error')} ({kept})")
        elif getattr(stop, "timed_out", False) or getattr(stop, "preempted", False):
            error = (time_limit_error(settings)[0], f"{time_limit_error(settings)[1]} ({kept})")
        else:
            error = ("Interrupted", f"the scan was interrupted ({kept})")
    try:
        return register_scan(settings, job_id, token, result, wall, progress, workdir, state,
                             error)
    except Exception as exc:  # else the row stays running and the reaper re-runs the scan
        log.exception("scan %s: registering its outputs failed", job_id)
        return finish_plain(settings, job_id, token, "failed", progress, None,
                             error=(type(exc).__name__,
                                    f"registering the outputs failed: {exc}"))


def register_scan(settings: Settings, job_id: str, token: str, result: Any, wall: float,
                  progress: dict[str, Any], workdir: Path, state: str,
                  error: tuple[str, str] | None = None) -> str:
    """Register ``result`` (a core.jobs.scan_job.ScanJobResult) and finish the scan as ``state``."""
    store = ArtifactStore(settings.artifacts_dir)
    with session_factory(settings.db_url)() as s:
        scan = jobs.get_job(s, job_id)
        assert scan is not None
        spec = ScanSpec.model_validate(scan.spec)
        records: list[dict[str, Any]] = []
        parent_ref: str | None = None
        for point in result.points:
            tspec = spec.train_spec(point.index).model_dump(mode="json")
            tspec["init_from"] = parent_ref
            train_job = _child(scan, f"p{point.index:02d}.train", "train", tspec)
            sample_job = _child(scan, f"p{point.index:02d}.sample", "sample", {})
            s.add_all([train_job, sample_job])
            s.flush()
            mdir = Path(point.model_dir)
            name_parent(mdir / "config.json", parent_ref)
            files = {n: store.put_file(mdir / n) for n in MODEL_FILES if (mdir / n).is_file()}
            summary = clean_json({"ess": point.train_ess, "couplings": point.couplings,
                                  "seconds": point.train_seconds})
            fields = {**model_fields(train_job, mdir, summary, point.train_seconds),
                      "parent": parent_ref}
            name = catalog.default_name_for(s, train_job)  # GROUP.theory, or GROUP.OWNER.…
            mv = catalog.register_model_version(s, name=name, job=train_job, files=files,
                                                fields=fields)
            ref = f"{name}/{mv.version}"
            sample_job.spec = spec.sample_spec(point.index, ref).model_dump(mode="json")
            model_out = {"name": name, "version": mv.version, "sha256": mv.sha256}
            train_job.result = {"kind": "train", "summary": summary, "model": model_out}
            stamp_hdf5(Path(point.ensemble), sample_job, sample_job.id, mv)
            blob = store.put_file(Path(point.ensemble), move=True)
            ens_summary = clean_json({"theory": {"dim": spec.dim, "L": spec.L,
                                                 "kappa": point.kappa, "lam": point.lam},
                                      "acceptance": point.acceptance, "ess": point.ess,
                                      "observables": point.observables,
                                      "free_energy": point.free_energy,
                                      "dS_dkappa": point.dS_dkappa})
            efields = ensemble_fields(sample_job, store.path(blob.sha256), ens_summary, mv)
            catalog.register_ensemble(s, job=sample_job, blob=blob, fields=efields,
                                      ensemble_id=sample_job.id)
            sample_job.result = {"kind": "sample", "summary": ens_summary, "model": model_out,
                                 "ensemble": {"id": sample_job.id, "sha256": blob.sha256,
                                              "size": blob.size}}
            records.append(clean_json(point.record(ref, sample_job.id)))
            parent_ref = ref if spec.warm_start else None
        out: dict[str, Any] = {"kind": "scan", "summary": {
            **clean_json({k: v for k, v in result.summary.items() if k != "points"}),
            "points": records, "plot": None}, "wall_seconds": wall}
        if result.plot is not None and Path(result.plot).is_file():
            pblob = store.put_file(Path(result.plot))
            out["summary"]["plot"] = plot_url(job_id)
            out["plot"] = {"sha256": pblob.sha256, "size": pblob.size, "url": plot_url(job_id)}
        if not jobs.finish(s, job_id, token, state, result=out, progress=progress or None,
                           error_type=error[0] if error else None,
                           error_message=error[1] if error else None):
            s.rollback()
            return "superseded"
        s.commit()
    shutil.rmtree(workdir, ignore_errors=True)
    return state
