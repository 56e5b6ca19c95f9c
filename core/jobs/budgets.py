"""Job budgets: peak memory and generated lattice volume per job, estimated at
submission and checked against the group's quotas and the worker's memory
(core.registry.quotas). Pure arithmetic over the specs — the API process imports no torch;
a train spec's open fields take their values from its plan (core.jobs.train_plan), as the
job will; tests/jobs/test_budgets.py keeps ``flow_parameter_count`` equal to the built
flow's."""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.jobs.request import JobSpec
from core.jobs.scan_spec import ScanSpec
from core.jobs.specs import HmcSpec, SampleSpec, TrainSpec
from core.jobs.train_plan import train_plan

HMC_STATE_TENSORS = 8  # φ, π, force, saved φ/π for the accept step and temporaries
KEPT_COPIES = 3  # kept configurations: the list, torch.stack, the chain-major copy
SOLVER_STAGES = {"euler": 1, "midpoint": 2, "rk4": 4, "dopri5": 6}
SAMPLE_CHUNK = 1024  # proposals pushed through the flow at once (core.physics.exact.sampler)


@dataclass(frozen=True)
class Budget:
    """What one job will take: peak memory (bytes) and lattice sites it generates
    (the ``max_sample_volume`` quota, a proxy for time); each names the field to change."""

    memory_bytes: int
    memory_field: str
    memory_formula: str
    volume: int
    volume_field: str
    parameters: int = 0


def flow_parameter_count(spec: TrainSpec) -> int:
    """Learnable scalars of the flow a train spec builds, in closed form: per vector field
    C·D'·F' + D'·D + F'·F + (F − 1) (core.physics.flows.config.count_learnable), with C the
    symmetry classes — C(v + d − 1, d) for a local kernel of v values per axis (v = 2 for
    the block, k for odd k), C(⌊L/2⌋ + d, d) for the baseline's lattice-wide kernel — and
    one noise width per super-resolving level."""
    plan = train_plan(spec)
    d, n_freq, k = plan.dim, plan.n_freq, plan.kernel_size
    if k is None:  # the baseline
        classes = math.comb(plan.L // 2 + d, d)
    else:
        classes = math.comb((2 if k == 2 else k) + d - 1, d)
    field = (classes * plan.bond_time * plan.bond_freq + plan.bond_time * plan.n_time
             + plan.bond_freq * n_freq + n_freq - 1)
    if k is None:
        return field
    if plan.field == "hollow":  # core.physics.flows.hollow_field, K = 4 channels, H = 16 hidden
        k_ch, hidden = 4, 16
        field += (2 * (k_ch - 1) + (classes - 1) * k_ch * hidden + hidden * plan.n_time
                  + hidden + k_ch * hidden)
    noise = 4 if plan.base == "conditional" else 1  # σ_θ (+ widths a₁, a₂ and mean c)
    return plan.levels * (field + noise)


def _hmc_budget(spec: HmcSpec) -> Budget:
    volume = spec.L**spec.dim
    per_chain = -(-spec.n_samples // spec.chains)
    kept = per_chain * spec.chains
    state = 8 * volume * spec.chains * HMC_STATE_TENSORS
    stored = 8 * volume * kept * KEPT_COPIES
    pilot = 0 if spec.thin is not None else max(200, spec.n_therm // 2)
    therm = spec.chains * (spec.n_therm + pilot)
    produced = kept * (spec.thin or 1)
    return Budget(
        memory_bytes=state + stored,
        memory_field="spec.chains" if state >= stored else "spec.n_samples",
        memory_formula=f"8 B × L^d × ({HMC_STATE_TENSORS}·chains + {KEPT_COPIES}·n_samples)",
        volume=volume * (therm + produced),
        volume_field="spec.n_therm" if therm > produced else "spec.n_samples",
    )


def _train_budget(spec: TrainSpec) -> Budget:
    plan = train_plan(spec)
    width = 4 if spec.dtype == "float32" else 8
    volume = spec.L**spec.dim
    baseline = spec.method == "baseline"
    n_freq, k = plan.n_freq, plan.kernel_size
    per_site = n_freq + 4 + (2 * n_freq if k is None else (2 if k == 2 else k) ** spec.dim)
    evals = spec.solver_steps * SOLVER_STAGES.get(spec.solver, 6)
    levels = 1 if baseline else 2  # Σ_j 2^(−d·j) over the levels ≤ 2
    activations = 2 * width * spec.batch * volume * evals * per_site * levels
    params = flow_parameter_count(spec)
    weights = 4 * width * params  # weights, gradients and Adam's two moments
    field = "spec.batch" if activations >= weights else "spec.bond_freq"
    trained = volume * (spec.batch * max(spec.steps, 1) + plan.eval_samples)
    therm = _langevin_volume(spec, plan.langevin_therm)
    return Budget(
        memory_bytes=activations + weights,
        memory_field=field,
        memory_formula=(f"{width} B × (2·batch·L^d·solver evaluations·(F + kernel + 4)·levels"
                        f" + 4·parameters), parameters = {params}"),
        volume=trained + therm,
        volume_field="spec.langevin_therm" if therm > trained else "spec.steps",
        parameters=params,
    )


def _langevin_volume(spec: TrainSpec, langevin_therm: int) -> int:
    """IR: the coarse source thermalises ``langevin_therm`` Langevin steps of ``batch``
    coarse lattices, once per grow stage (each stage builds its source afresh)."""
    if spec.method != "ir":
        return 0
    stages = spec.levels if spec.grow else 1
    return langevin_therm * spec.batch * spec.coarse_L**spec.dim * max(stages, 1)


def _sample_budget(spec: SampleSpec, L: int, dim: int) -> Budget:
    volume = L**dim
    return Budget(
        memory_bytes=8 * volume * (4 * spec.n_samples + 64 * min(spec.n_samples, SAMPLE_CHUNK)),
        memory_field="spec.n_samples",
        memory_formula="8 B × L^d × (4·n_samples + 64·min(n_samples, 1024))",
        volume=volume * spec.n_samples,
        volume_field="spec.n_samples",
    )


def budget(spec: JobSpec, *, model_L: int | None = None, model_dim: int | None = None
           ) -> Budget | None:
    """The job's :class:`Budget`; a sample spec needs its model's L and d (else None)."""
    if isinstance(spec, HmcSpec):
        return _hmc_budget(spec)
    if isinstance(spec, TrainSpec):
        return _train_budget(spec)
    if isinstance(spec, ScanSpec):
        return _scan_budget(spec)
    if model_L is None or model_dim is None:
        return None
    return _sample_budget(spec, model_L, model_dim)


def _scan_budget(spec: ScanSpec) -> Budget:
    """A scan's points run one after another: memory is the largest point's, the volume
    the sum over points of training and sampling."""
    parts = []
    for i in range(len(spec.grid())):
        parts += [_train_budget(spec.train_spec(i)),
                  _sample_budget(spec.sample_spec(i, "scan"), spec.L, spec.dim)]
    peak = max(parts, key=lambda b: b.memory_bytes)
    field = {"spec.steps": "spec.steps_per_point"}.get(peak.memory_field, peak.memory_field)
    therm = any(b.volume_field == "spec.langevin_therm" for b in parts)
    return Budget(memory_bytes=peak.memory_bytes, memory_field=field,
                  memory_formula=peak.memory_formula, volume=sum(b.volume for b in parts),
                  volume_field="spec.langevin_therm" if therm else "spec.steps_per_point",
                  parameters=parts[0].parameters)
