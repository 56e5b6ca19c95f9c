"""Job specifications shared by the CLI, the API and the workers (pydantic, no torch).

Field names are the CLI flags in snake_case; defaults are the paper's (Appendix C).
A spec that validates here is one the pipeline can run: every error names the field
and what would fix it. A field left open (None) means the default named beside it; the
named defaults of a train spec live here, and core.jobs.train_plan.train_plan is the one
place that fills them in (the physics library reads the resulting TrainPlan).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from core.physics.exact.coarse_samplers import CoarseSampler
from core.physics.exact.coarse_samplers import (
    coarse_sampler_error as coarse_sampler_error,  # the API's check (app.routes.jobs)
)
from core.physics.training.plan import Dtype, Method, NoiseBase, Solver, VectorField

Device = Literal["cpu", "cuda"]
MAX_BOND = 1024  # F, D, F', D': the paper uses ≤ 30; 1024 keeps a typo from validating
MAX_KERNEL = 15
SEED_MAX = 2**32 - 1  # seeds are scaled and offset per stream; the registry stores BIGINT


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TheorySpec(SpecModel):
    """A φ⁴ theory: dimension d, linear size L, couplings (κ, λ) of eq. (3)."""

    dim: Annotated[int, Field(ge=1, le=3, description="lattice dimension d (1, 2 or 3)")] = 2
    L: Annotated[int, Field(ge=2, le=4096, description="linear lattice size (≥ 2)")]
    kappa: Annotated[float, Field(description="hopping parameter κ")]
    lam: Annotated[float, Field(ge=0.0, description="quartic coupling λ (≥ 0)")]

    @model_validator(mode="after")
    def _stable_free_theory(self) -> TheorySpec:
        if self.lam == 0.0 and not abs(self.kappa) < 1.0 / (2 * self.dim):
            raise ValueError(
                f"kappa={self.kappa} makes the free theory (lam=0) unstable in d={self.dim}: "
                f"use |kappa| < 1/(2d) = {1.0 / (2 * self.dim):g} or lam > 0"
            )
        return self


class HmcSpec(TheorySpec):
    """Direct HMC on the (fine) lattice: the reference every flow is compared with."""

    n_samples: Annotated[int, Field(ge=1, description="configurations to keep (after thinning)")]
    chains: Annotated[int, Field(ge=1, le=4096, description="independent chains in one batch")] = 16
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 0
    device: Device = "cpu"
    integrator: Literal["leapfrog", "omelyan"] = "omelyan"
    trajectory_length: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0
    n_therm: Annotated[int, Field(ge=0, le=1_000_000,
                                  description="thermalisation trajectories per chain")] = 500
    target_acceptance: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8
    thin: Annotated[int | None, Field(ge=1, le=100_000,
                                      description="None: 2·τ_int measured in the run")] = (
        None
    )
    max_seconds: Annotated[float | None, Field(gt=0.0, description="wall-time cap")] = None
    algorithm: Literal["hmc", "cluster"] = Field(
        "hmc", description="hmc, or cluster: Wolff flips of the embedded Ising signs with "
        "checkerboard Metropolis sweeps (Brower & Tamayo 1989); cluster needs an even L and "
        "ignores the HMC-only fields (integrator, trajectory_length, target_acceptance)")
    clusters_per_sweep: Annotated[int, Field(ge=0, le=1000, description="cluster: Wolff "
                                             "flips per Metropolis sweep")] = 1

    @model_validator(mode="after")
    def _cluster_needs_even_L(self) -> HmcSpec:
        if self.algorithm == "cluster" and self.L % 2:
            raise ValueError(f"L={self.L}: algorithm=cluster needs an even L (checkerboard "
                             "Metropolis sweeps); use an even L or algorithm=hmc")
        return self


def default_coarse_L(method: str, dim: int, L: int) -> int:
    """Coarse lattice when a spec leaves ``coarse_L`` open: 8 for IR-matching in d = 2 at
    L ≥ 16, else 4. Measured (docs/training.md, bench/scaling.py, k = 5, one seed each):
    L = 16, κ = 0.25, 15 min: fresh ESS/N 0.867 from 8×8 (one level) against 0.699 from
    4×4 (two, grown); L = 32, 30 min: 0.412 against 0.307, with κ_L 0.129 instead of a
    nearly free 0.052. UV-matching and d ≠ 2 keep 4×4 (not measured)."""
    return 8 if method == "ir" and dim == 2 and L >= 16 else 4


def fill_coarse_L(data: object) -> object:
    """Before validation: an unset/None ``coarse_L`` becomes :func:`default_coarse_L` —
    or 4 for a warm start (``init_from``), the coarse size the registry's models were
    trained with before this default existed (a warm start needs the parent's)."""
    if not isinstance(data, dict) or data.get("coarse_L") is not None:
        return data
    if data.get("init_from"):
        return {**data, "coarse_L": 4}
    try:
        L, dim = int(data["L"]), int(data.get("dim", 2))
    except (KeyError, TypeError, ValueError):
        return {k: v for k, v in data.items() if k != "coarse_L"}  # L's own error speaks
    return {**data, "coarse_L": default_coarse_L(str(data.get("method", "ir")), dim, L)}


def default_kernel_size(dim: int, coarse_L: int) -> int:
    """Kernel of the super-resolving levels when a spec leaves ``kernel_size`` open (a warm
    start takes its parent's instead: core.jobs.train_plan.train_plan).

    d = 2: k = 7 from coarse_L ≥ 8 (the first fine lattice is ≥ 16), else k = 5 where
    2·coarse_L holds it; d = 1 likewise k = 5; d = 3 keeps k = 3 (5³ taps per site). It
    depends on coarse_L alone, never on L, so every stage of a grown stack has the same
    architecture. Measured (docs/training.md, bench/scaling.py, one seed each): k = 2 —
    the upsampling block itself, which cannot correlate neighbouring blocks — caps fresh
    ESS/N at ≈ 0.02 at L = 8, κ = 0.25, where k = 3 reaches 0.66-0.70; at L = 16 and 5 min
    k = 5 reached 0.58 against 0.24 for k = 3; from an 8×8 coarse lattice k = 7 reached
    0.932 against 0.867 at L = 16 (15 min) and 0.761 against 0.471 at L = 32 (30 min),
    at ≈ 1.3× the cost of a k = 5 step. coarse_L = 4 (L = 8, warm starts) keeps k = 5."""
    if dim == 2 and coarse_L >= 8:
        return 7
    return 5 if dim <= 2 and 2 * coarse_L >= 5 else 3


LR = 0.01
"""Adam learning rate of a super-resolving flow when ``lr`` is open (paper Appendix C)."""
BASELINE_LR = 5e-3
"""Adam learning rate of the baseline when ``lr`` is open (the paper's comparison)."""
N_FREQ = 11
"""F, the frequencies of H_f (eq. 24), of a super-resolving flow when ``n_freq`` is open."""
BASELINE_N_FREQ = 30
"""F of the baseline when ``n_freq`` is open (the paper's comparison)."""
KINETIC_WEIGHT = 0.05
"""λ_K of the kinetic-energy regulariser (Finlay et al. 2020) when ``kinetic_weight`` is
open: it keeps k = 3, D = 10, RK4-8 honest (docs/training.md)."""
COUPLING_LR = 1e-3
"""Adam learning rate of the learnable couplings when ``coupling_lr`` is open. Adam moves
every parameter by ≈ lr per step whatever its gradient, so at lr 0.01 κ jumps by 0.01 per
step — comparable to the distance to criticality — and jitters without a trend (measured
at L = 8, κ = 0.25); 1e-3 lets κ_L drift smoothly (docs/training.md)."""
LANGEVIN_THERM = 50_000
"""IR: Langevin thermalisation steps of the coarse source when ``langevin_therm`` is open
(paper Appendix C: 5·10⁴)."""
EVAL_SAMPLES = 4096
"""Fresh proposals for the final ESS/N when ``eval_samples`` is open (a grown stack's
intermediate stages use at most 1024, core.physics.training.grow.GrowConfig)."""
LOWER_LR_FACTOR = 0.2
"""grow: lr of the inherited levels / the stage's lr when ``lower_lr_factor`` is open (the
paper's retraining uses 1/5)."""
STAGE_LR_FACTOR = 0.3
"""grow: lr of every stage after the first / lr when ``stage_lr_factor`` is open. A stage
that starts from a trained stack restarted at the full lr 10⁻² loses what the stack knew:
L = 32 in 30 min reached fresh ESS/N 0.494 at 0.3 against 0.412 at 1 (bench/scaling.py,
one seed each)."""
STAGE_COUPLING_LR_FACTOR = 1.0
"""grow: coupling lr of every stage after the first / coupling_lr when
``stage_coupling_lr_factor`` is open (κ_L keeps learning at the same rate)."""


def default_lr(method: str) -> float:
    """The learning rate of a spec that leaves ``lr`` open: :data:`LR`, or
    :data:`BASELINE_LR` for the baseline."""
    return BASELINE_LR if method == "baseline" else LR


def default_n_freq(method: str) -> int:
    """F of a spec that leaves ``n_freq`` open: :data:`N_FREQ`, or :data:`BASELINE_N_FREQ`
    for the baseline."""
    return BASELINE_N_FREQ if method == "baseline" else N_FREQ


class TrainSpec(TheorySpec):
    """Train a flow. For ``ir`` and ``baseline`` (κ, λ) are the fixed fine couplings; for
    ``uv`` they are the fixed coarse couplings and the fine ones are learned from there."""

    method: Method = "ir"
    coarse_L: Annotated[int, Field(ge=2, le=4096, description="coarse linear size of the "
                                   "flow; unset: default_coarse_L(method, d, L)")] = 4
    steps: Annotated[int, Field(ge=0, le=10_000_000, description="optimiser steps")] = 500
    max_minutes: Annotated[float | None, Field(gt=0.0)] = None
    target_ess: Annotated[float | None, Field(gt=0.0, le=1.0)] = None
    batch: Annotated[int, Field(ge=2, le=65536)] = 64
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 0
    device: Device = "cpu"
    dtype: Dtype = "float32"
    lr: Annotated[float | None, Field(gt=0.0, description=f"None: {LR:g}, or {BASELINE_LR:g} "
                                      "for baseline")] = None
    lr_decay: Annotated[float, Field(gt=0.0, le=1.0)] = 0.997
    kernel_size: Annotated[int | None, Field(ge=2, le=MAX_KERNEL, description="None: "
                                             "the warm-start parent's, else "
                                             "default_kernel_size(d, coarse_L)")] = None
    n_freq: Annotated[int | None, Field(ge=1, le=MAX_BOND, description=f"F; None: {N_FREQ}, or "
                                        f"{BASELINE_N_FREQ} for baseline")] = None
    n_time: Annotated[int, Field(ge=1, le=MAX_BOND, description="D, Fourier time modes")] = 10
    bond_freq: Annotated[int, Field(ge=1, le=MAX_BOND, description="F'")] = 20
    bond_time: Annotated[int, Field(ge=1, le=MAX_BOND, description="D'")] = 20
    solver: Solver = "rk4"
    solver_steps: Annotated[int, Field(ge=1, le=1000)] = 8
    learn_lam: bool = False
    init_from: str | None = None
    kinetic_weight: Annotated[float | None, Field(
        ge=0.0, description=f"λ_K; None: {KINETIC_WEIGHT:g}")] = None
    coupling_lr: Annotated[float | None, Field(gt=0.0,
                                               description=f"None: {COUPLING_LR:g}")] = None
    langevin_therm: Annotated[int | None, Field(ge=0, le=10_000_000,
                                                description=f"IR; None: {LANGEVIN_THERM}")] = None
    eval_samples: Annotated[int | None, Field(ge=16, le=1_000_000, description="fresh "
                                               "proposals for the final ESS/N; None: "
                                               f"{EVAL_SAMPLES}")] = None
    grow: Annotated[bool, Field(description="ir/uv with L > 2·coarse_L: train level by level "
                                "(core.physics.training.grow); false trains every level at "
                                "once")] = True
    lower_lr_factor: Annotated[float | None, Field(ge=0.0, le=1.0, description="grow: lr of "
                                                   "inherited levels / lr; 0 freezes; "
                                                   f"None: {LOWER_LR_FACTOR:g}")] = None
    stage_lr_factor: Annotated[float | None, Field(gt=0.0, le=1.0, description="grow: lr of "
                                                   "every stage after the first / lr; "
                                                   f"None: {STAGE_LR_FACTOR:g}")] = None
    stage_coupling_lr_factor: Annotated[float | None, Field(
        ge=0.0, le=1.0, description="grow: coupling lr of every stage after the first / "
        "coupling_lr; 0 holds the couplings the first stage learned; "
        f"None: {STAGE_COUPLING_LR_FACTOR:g}")] = None
    field: Annotated[VectorField, Field(description="vector field: the paper's "
                                        "eq. 23 or the hollow one")] = "paper"
    base: Annotated[NoiseBase, Field(description="block noise: fixed σ "
                                     "or σ from the coarse field")] = "plain"

    @model_validator(mode="before")
    @classmethod
    def _default_coarse_L(cls, data: object) -> object:
        return fill_coarse_L(data)

    @model_validator(mode="after")
    def _flow_options(self) -> TrainSpec:
        if self.method == "baseline" and (self.field != "paper" or self.base != "plain"):
            bad = "field" if self.field != "paper" else "base"
            raise ValueError(f"{bad}={getattr(self, bad)!r} is defined only for super-resolving "
                             f"flows (method ir or uv): drop it for method=baseline")
        k = self.kernel_size or default_kernel_size(self.dim, self.coarse_L)
        if self.method != "baseline" and k > 2 * self.coarse_L:
            raise ValueError(f"kernel_size={k} is wider than the first fine lattice "
                             f"2·coarse_L={2 * self.coarse_L}: use kernel_size ≤ "
                             f"{2 * self.coarse_L - 1} or a larger coarse_L")
        stages = self.levels if (self.grow and self.method != "baseline") else 1
        if self.max_minutes is not None and self.max_minutes < 0.25 * stages:
            raise ValueError(f"max_minutes={self.max_minutes:g} cannot fit {stages} grow stages "
                             f"(≥ 0.25 min each): use max_minutes ≥ {0.25 * stages:g} or "
                             f"grow=false")
        return self

    @model_validator(mode="after")
    def _fine_size(self) -> TrainSpec:
        if self.method in ("ir", "uv"):
            n, size = 0, self.coarse_L
            while size < self.L:
                size, n = size * 2, n + 1
            if size != self.L or n == 0:
                raise ValueError(
                    f"L={self.L} is not {self.coarse_L}·2^n (n ≥ 1) for a super-resolving flow "
                    f"from coarse_L={self.coarse_L}: use L in "
                    f"{[self.coarse_L * 2**k for k in range(1, 6)]}"
                )
        if self.kernel_size is not None and self.kernel_size != 2 and self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={self.kernel_size}: use 2 (the block) or an odd size")
        return self

    @property
    def levels(self) -> int:
        """Number of factor-2 levels from coarse_L to L (0 for the baseline)."""
        return 0 if self.method == "baseline" else (self.L // self.coarse_L).bit_length() - 1


COARSE_SAMPLER_HELP = (
    "sampler of the coarse configurations a flow pushes: hmc, or cluster (Wolff flips of the "
    "embedded Ising signs with checkerboard Metropolis sweeps, Brower & Tamayo 1989; needs a "
    "super-resolving model with an even coarse_L)")


MAX_REWEIGHT_POINTS = 16
COARSE_TI_SAMPLES_MIN = 200
COARSE_TI_SAMPLES_MAX = 4000


def coarse_ti_samples(n_samples: int) -> int:
    """Configurations per chain per Gauss–Legendre node of a sample job's coarse
    thermodynamic integration (core.physics.mcmc.thermodynamic; 32 chains): n_samples/2
    within [200, 4000], so that log Z_c's error stays below the fine estimate's
    √((1/ESS − 1)/N). Measured at 8×8, λ = 0.01 (docs/free_energy.md): 1000 per chain gave
    σ(log Z_c) ≈ 0.006 at κ_L = 0.2 and 0.015 at 0.24 in ≈ 8 CPU s; N = 4000 proposals at
    ESS/N = 0.75 give σ ≈ 0.009."""
    return max(COARSE_TI_SAMPLES_MIN, min(COARSE_TI_SAMPLES_MAX, n_samples // 2))


class CouplingPoint(SpecModel):
    """Couplings (κ, λ) to which a sample job reweights its proposals' log Z."""

    kappa: float
    lam: Annotated[float, Field(ge=0.0, description="quartic coupling λ (≥ 0)")]


class SampleSpec(SpecModel):
    """Metropolis-corrected fine ensemble from a trained model."""

    model: Annotated[str, Field(min_length=1, description="NAME, NAME/VERSION, NAME@ALIAS or DIR")]
    n_samples: Annotated[int, Field(ge=1)]
    chains: Annotated[int, Field(ge=1, le=4096, description="coarse sampler chains")] = 32
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 0
    device: Device = "cpu"
    coarse_sampler: CoarseSampler = Field("hmc", description=COARSE_SAMPLER_HELP)
    log_z: bool = Field(True, description="estimate log Z and f = −log Z/V from the proposals' "
                        "weights; a super-resolving model's log Z_c comes from thermodynamic "
                        "integration on its coarse lattice, cached per model "
                        "(docs/free_energy.md)")
    reweight_to: Annotated[list[CouplingPoint], Field(
        max_length=MAX_REWEIGHT_POINTS, description="couplings to which log Z − log Z(model) "
        "is estimated by reweighting the same proposals (refused where the reweighted ESS/N "
        "is too small)")] = []
