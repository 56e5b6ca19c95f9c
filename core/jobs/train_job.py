"""Training jobs: a flow trained as the spec says (grown level by level or all at once),
saved to ``workdir/model``."""

from __future__ import annotations

from pathlib import Path

from core.jobs.protocol import JobCancelled, JobError, JobResult, ProgressFn, StopFn
from core.jobs.runtime import progress_hook, resolve_device
from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.control import SamplingCancelled
from core.physics.training.api import train
from core.physics.training.grow import should_grow, train_grown
from core.physics.training.warm import WarmStartError, parent_kernel_size


def run_train_job(
    spec: TrainSpec,
    *,
    workdir: Path,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    init_dir: Path | None = None,
) -> JobResult:
    """Train (or resume from ``workdir/checkpoint``) and save the model to ``workdir/model``;
    ``init_dir`` is the warm-start parent (``spec.init_from`` resolved to a directory)."""
    resolve_device(spec.device)
    plan = train_plan(spec, parent_kernel_size(init_dir))
    try:
        if should_grow(plan, init_dir):
            result = train_grown(plan, workdir=workdir, progress=progress_hook(progress, "train"),
                                 should_stop=should_stop, init_dir=init_dir)
        else:
            result = train(plan, workdir=workdir, progress=progress_hook(progress, "train"),
                           should_stop=should_stop, init_dir=init_dir)
    except WarmStartError as err:
        raise JobError(f"init_from={spec.init_from!r}: {err}") from err
    except SamplingCancelled as exc:  # in thermalisation or the final evaluation
        raise JobCancelled(str(exc)) from exc
    if result.stopped == "cancelled":
        raise JobCancelled(f"training cancelled at step {result.steps}")
    summary = {
        "model": str(result.model_dir), "method": result.method,
        "theory": {"dim": spec.dim, "L": spec.L, "kappa": spec.kappa, "lam": spec.lam},
        "ess": result.ess, "loss": result.loss, "couplings": result.couplings,
        "steps": result.steps, "seconds": result.seconds, "solver_gap": result.gap,
        "stopped": result.stopped,
    }
    return JobResult("train", summary, model_dir=result.model_dir)
