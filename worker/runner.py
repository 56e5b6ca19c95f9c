"""Run one job row through ``core.jobs.run.run_job`` and record what it produced.

1. ``claim`` the row (queued → running, conditional; a duplicate delivery is skipped).
2. Call ``run_job`` with a throttled progress/heartbeat writer, a ``should_stop`` that
   reads the row's ``cancel_requested`` flag, and a model resolver backed by the registry.
3. Finish with one conditional update in the same transaction that registers the
   ensemble or model version: a cancelled, failed or superseded attempt registers nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from pydantic import TypeAdapter

from core.jobs.protocol import JobCancelled
from core.jobs.request import JobRequest
from core.registry import catalog, jobs
from core.registry.db import session_factory
from core.registry.keys import Caller
from core.registry.models import ModelVersion
from core.registry.store import ArtifactStore
from core.settings import Settings
from worker.celery_app import TASK_NAME, get_app
from worker.finish import cancel_requested, clean_json, finish_plain, time_limit_error
from worker.outputs import ensemble_fields, model_fields, stamp_hdf5
from worker.resilience import Deadline, Heartbeat, owner_caller, pin_init_from, requeue
from worker.scan_outputs import finish_scan

log = logging.getLogger("srflow.worker")
_request = TypeAdapter(JobRequest)


class _Monitor:
    """Throttled progress/heartbeat writes and cancellation reads for one attempt."""

    def __init__(self, settings: Settings, job_id: str, token: str) -> None:
        self.sessions = session_factory(settings.db_url)
        self.job_id, self.token = job_id, token
        self.interval = settings.progress_interval_s
        self.last_write = 0.0
        self.last_check = 0.0
        self.stop = False
        self.latest: dict[str, Any] = {}

    def progress(self, p: Any) -> None:
        self.latest = clean_json(
            {"step": p.step, "total": p.total, "stage": p.stage, **dict(p.metrics)}
        )
        now = time.monotonic()
        if now - self.last_write >= self.interval:
            self.last_write = now
            with self.sessions() as s:
                if not jobs.heartbeat(s, self.job_id, self.token, self.latest):
                    self.stop = True  # another attempt took over, or the job was reaped

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self.stop and now - self.last_check >= min(self.interval, 0.25):
            self.last_check = now
            with self.sessions() as s:
                self.stop = jobs.cancel_requested(s, self.job_id)
        return self.stop


def _resolver(settings: Settings, caller: Caller, workdir: Path,
              used: dict[str, int]) -> Callable[[str], Path]:
    """Map NAME, NAME/VERSION or NAME@ALIAS to a directory of the version's files;
    ``used`` records each reference's version id (the provenance registered at the end)."""
    store = ArtifactStore(settings.artifacts_dir)

    def resolve(ref: str) -> Path:
        with session_factory(settings.db_url)() as s:
            mv = catalog.resolve(s, ref, caller)
            if mv is None:
                raise LookupError(f"model {ref!r} is not in the registry (or not visible)")
            used[ref] = mv.id
            target = workdir / "models" / f"{mv.model.name}-v{mv.version}"
            target.mkdir(parents=True, exist_ok=True)
            for name, info in mv.files.items():
                dest = target / name
                if not dest.exists():
                    shutil.copyfile(store.path(info["sha256"]), dest)
            (target / "registry.json").write_text(
                json.dumps({"name": mv.model.name, "version": mv.version, "id": mv.id})
            )
            return target

    return resolve


def execute(job_id: str, settings: Settings, *, token: str, hostname: str) -> str:
    """Run job ``job_id`` as attempt ``token``; returns the state it left the job in."""
    sessions = session_factory(settings.db_url)
    with sessions() as s:
        if not jobs.claim(s, job_id, token, hostname, settings.heartbeat_timeout_s):
            job = jobs.get_job(s, job_id)
            log.info("job %s not claimed (state %s)", job_id, job.status if job else "missing")
            return job.status if job else "missing"
        job = jobs.get_job(s, job_id)
        assert job is not None
        spec = job.spec
        caller = owner_caller(s, job)  # the owner's groups decide what models it may use
    try:
        spec = pin_init_from(settings, job_id, spec) if job.kind == "train" else spec
    except LookupError as exc:
        return finish_plain(settings, job_id, token, "failed", {}, None,
                             error=("NoParent", str(exc)))
    req = _request.validate_python({"kind": job.kind, "spec": spec})
    workdir = settings.work_dir / job_id
    workdir.mkdir(parents=True, exist_ok=True)
    mon = _Monitor(settings, job_id, token)
    used: dict[str, int] = {}
    stop = Deadline(mon.should_stop, settings.soft_time_limit_s,  # checkpoint + re-queue
                    limit=settings.max_job_seconds)  # the server's wall-time cap: failed
    from core.jobs.run import run_job  # torch: only in the task's process

    start = time.perf_counter()
    try:
        with Heartbeat(settings, job_id, token) as beat:  # beats even without progress
            stop.beat = beat
            result = run_job(
                req.spec,
                workdir=workdir,
                progress=mon.progress,
                should_stop=stop,
                model_resolver=_resolver(settings, caller, workdir, used),
                cache_dir=settings.root / "cache",  # log Z_c per coarse theory
            )
    except JobCancelled:
        if stop.timed_out and not cancel_requested(settings, job_id):
            return finish_plain(settings, job_id, token, "failed", mon.latest, workdir,
                                 error=time_limit_error(settings))
        if stop.preempted and not cancel_requested(settings, job_id):
            return requeue(settings, job_id, token, _resend)
        return finish_plain(settings, job_id, token, "cancelled", mon.latest, workdir)
    except SoftTimeLimitExceeded:  # Celery's backstop
        soft = settings.soft_time_limit_s
        if soft is not None and soft < settings.max_job_seconds and not stop.timed_out:
            return requeue(settings, job_id, token, _resend)  # resume from the checkpoint
        return finish_plain(settings, job_id, token, "failed", mon.latest, workdir,
                             error=time_limit_error(settings))
    except Exception as exc:  # the job failed: record why, do not retry
        log.exception("job %s failed", job_id)
        return finish_plain(
            settings,
            job_id,
            token,
            "failed",
            mon.latest,
            None,
            error=(type(exc).__name__, str(exc) or repr(exc)),
        )
    wall = time.perf_counter() - start
    if job.kind == "scan":  # its finished points are kept, whatever stopped it (core.jobs.scan_job)
        return finish_scan(settings, job_id, token, result, wall, mon.latest, workdir, stop)
    if cancel_requested(settings, job_id):
        return finish_plain(settings, job_id, token, "cancelled", mon.latest, workdir)
    try:
        return _register(settings, job_id, token, result, wall, mon.latest, workdir, used)
    except Exception as exc:  # else the row stays running and the reaper re-runs the job
        log.exception("job %s: registering its outputs failed", job_id)
        return finish_plain(settings, job_id, token, "failed", mon.latest, None,
                             error=(type(exc).__name__, f"registering the outputs failed: {exc}"))


def _resend(job: Any) -> None:
    get_app().send_task(TASK_NAME, args=[job.id], queue=job.queue)


def _register(
    settings: Settings,
    job_id: str,
    token: str,
    result: Any,
    wall: float,
    progress: dict[str, Any],
    workdir: Path,
    used: dict[str, int],
) -> str:
    store = ArtifactStore(settings.artifacts_dir)
    with session_factory(settings.db_url)() as s:
        job = jobs.get_job(s, job_id)
        assert job is not None
        summary = clean_json(result.summary)
        out: dict[str, Any] = {"kind": job.kind, "summary": summary}
        if result.ensemble is not None:
            model_version = None
            if job.kind == "sample" and job.spec["model"] in used:
                # the version the job sampled, as resolved with the owner's visibility (a
                # fresh unfiltered resolve could name a moved alias or another's version)
                model_version = s.get(ModelVersion, used[job.spec["model"]])
            ensemble_id = job_id  # one ensemble per job: its id is the job id
            stamp_hdf5(Path(result.ensemble), job, ensemble_id, model_version)
            blob = store.put_file(Path(result.ensemble), move=True)
            fields = ensemble_fields(job, Path(store.path(blob.sha256)), summary, model_version)
            out["ensemble"] = {"id": ensemble_id, "sha256": blob.sha256, "size": blob.size}
            if model_version is not None:
                out["model"] = {"name": model_version.model.name, "version": model_version.version}
            if not jobs.finish(s, job_id, token, "succeeded", result=out, progress=progress):
                s.rollback()
                return "superseded"
            catalog.register_ensemble(s, job=job, blob=blob, fields=fields, ensemble_id=ensemble_id)
        elif result.model_dir is not None:
            mdir = Path(result.model_dir)
            files = {
                name: store.put_file(mdir / name)
                for name in ("model.safetensors", "config.json", "metrics.json")
                if (mdir / name).is_file()
            }
            if "model.safetensors" not in files:
                raise FileNotFoundError(f"train job {job_id} wrote no model.safetensors")
            name = job.model_name or catalog.default_name_for(s, job)  # GROUP.theory
            fields = model_fields(job, mdir, summary, wall)
            if not jobs.finish(s, job_id, token, "succeeded", result=out, progress=progress):
                s.rollback()
                return "superseded"
            mv = catalog.register_model_version(s, name=name, job=job, files=files, fields=fields)
            out["model"] = {"name": name, "version": mv.version, "sha256": mv.sha256}
            jobs.finish_result(s, job_id, out)
        else:
            if not jobs.finish(s, job_id, token, "succeeded", result=out, progress=progress):
                s.rollback()
                return "superseded"
        s.commit()
    shutil.rmtree(workdir, ignore_errors=True)
    return "succeeded"
