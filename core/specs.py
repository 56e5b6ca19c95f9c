"""Job specifications shared by the CLI, the API and the workers (pydantic, no torch).

Field names are the CLI flags in snake_case; defaults are the paper's (Appendix C).
A spec that validates here is one the pipeline can run: every error names the field
and what would fix it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Device = Literal["cpu", "cuda"]
Method = Literal["ir", "uv", "baseline"]
Solver = Literal["rk4", "euler", "midpoint", "dopri5"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TheorySpec(_Spec):
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
    seed: Annotated[int, Field(ge=0)] = 0
    device: Device = "cpu"
    integrator: Literal["leapfrog", "omelyan"] = "omelyan"
    trajectory_length: Annotated[float, Field(gt=0.0)] = 1.0
    n_therm: Annotated[int, Field(ge=0, description="thermalisation trajectories per chain")] = 500
    target_acceptance: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8
    thin: Annotated[int | None, Field(ge=1, description="None: 2·τ_int measured in the run")] = (
        None
    )
    max_seconds: Annotated[float | None, Field(gt=0.0, description="wall-time cap")] = None


class TrainSpec(TheorySpec):
    """Train a flow. For ``ir`` and ``baseline`` (κ, λ) are the fixed fine couplings; for
    ``uv`` they are the fixed coarse couplings and the fine ones are learned from there."""

    method: Method = "ir"
    coarse_L: Annotated[int, Field(ge=2, description="coarse linear size of the flow")] = 4
    steps: Annotated[int, Field(ge=0, description="optimiser steps")] = 500
    max_minutes: Annotated[float | None, Field(gt=0.0)] = None
    target_ess: Annotated[float | None, Field(gt=0.0, le=1.0)] = None
    batch: Annotated[int, Field(ge=2, le=65536)] = 64
    seed: Annotated[int, Field(ge=0)] = 0
    device: Device = "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    lr: Annotated[float | None, Field(gt=0.0, description="None: 0.01, or 5e-3 for baseline")] = (
        None
    )
    lr_decay: Annotated[float, Field(gt=0.0, le=1.0)] = 0.997
    kernel_size: Annotated[int | None, Field(ge=2, description="None: 3 (measured best)")] = None
    n_freq: Annotated[int | None, Field(ge=1, description="F; None: 11, or 30 for baseline")] = (
        None
    )
    n_time: Annotated[int, Field(ge=1, description="D, Fourier time modes")] = 10
    bond_freq: Annotated[int, Field(ge=1, description="F'")] = 20
    bond_time: Annotated[int, Field(ge=1, description="D'")] = 20
    solver: Solver = "rk4"
    solver_steps: Annotated[int, Field(ge=1, le=1000)] = 8
    learn_lam: bool = False
    init_from: str | None = None
    kinetic_weight: Annotated[float | None, Field(ge=0.0, description="λ_K; None: 0.05")] = None
    coupling_lr: Annotated[float | None, Field(gt=0.0, description="None: 1e-3")] = None
    langevin_therm: Annotated[int | None, Field(ge=0, description="IR; None: 5·10⁴")] = None
    eval_samples: Annotated[int | None, Field(ge=16, description="fresh proposals for the "
                                               "final ESS/N; None: 4096")] = None

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


class SampleSpec(_Spec):
    """Metropolis-corrected fine ensemble from a trained model."""

    model: Annotated[str, Field(min_length=1, description="NAME, NAME/VERSION, NAME@ALIAS or DIR")]
    n_samples: Annotated[int, Field(ge=1)]
    chains: Annotated[int, Field(ge=1, le=4096, description="coarse HMC chains")] = 32
    seed: Annotated[int, Field(ge=0)] = 0
    device: Device = "cpu"


class HmcJob(_Spec):
    kind: Literal["hmc"]
    spec: HmcSpec


class TrainJob(_Spec):
    kind: Literal["train"]
    spec: TrainSpec


class SampleJob(_Spec):
    kind: Literal["sample"]
    spec: SampleSpec


JobRequest = Annotated[HmcJob | TrainJob | SampleJob, Field(discriminator="kind")]
JobSpec = HmcSpec | TrainSpec | SampleSpec
