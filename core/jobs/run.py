"""One entry for every job: ``run_job(spec, ...)``, called by the CLI and by the Celery worker.

A job is a validated spec (core.jobs.specs, core.jobs.scan_spec) plus a working directory.
Progress goes out through a callback, cancellation comes in through ``should_stop``
(checked between steps), and the result names the files produced: an HDF5 ensemble for
``hmc`` and ``sample`` jobs, a model directory for ``train`` jobs, one of each per point
for ``scan`` jobs (core.jobs.protocol has the types).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.jobs.hmc_job import run_hmc_job
from core.jobs.protocol import JobResult, ProgressFn, StopFn
from core.jobs.request import JobSpec
from core.jobs.sample_job import run_sample_job
from core.jobs.scan_job import run_scan_job
from core.jobs.scan_spec import ScanSpec
from core.jobs.specs import HmcSpec, SampleSpec, TrainSpec
from core.jobs.train_job import run_train_job


def run_job(
    spec: JobSpec,
    *,
    workdir: Path,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    model_resolver: Callable[[str], Path] | None = None,
    cache_dir: Path | None = None,
) -> JobResult:
    """Run any job. ``model_resolver`` maps a sample spec's model reference to a directory;
    ``cache_dir`` keeps the coarse theories' log Z_c (None: each model's own directory)."""
    if isinstance(spec, HmcSpec):
        return run_hmc_job(spec, workdir=workdir, progress=progress, should_stop=should_stop)
    if isinstance(spec, TrainSpec):
        return run_train_job(spec, workdir=workdir, progress=progress, should_stop=should_stop,
                             init_dir=model_resolver(spec.init_from)
                             if (model_resolver and spec.init_from) else None)
    if isinstance(spec, SampleSpec):
        return run_sample_job(
            spec, workdir=workdir, progress=progress, should_stop=should_stop,
            model_resolver=model_resolver, cache_dir=cache_dir,
        )
    if isinstance(spec, ScanSpec):
        return run_scan_job(spec, workdir=workdir, progress=progress, should_stop=should_stop,
                            cache_dir=cache_dir)
    raise TypeError(f"unknown job spec {type(spec).__name__}")
