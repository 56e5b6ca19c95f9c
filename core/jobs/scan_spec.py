"""The scan job's specification (core.jobs.scan_job): a grid of couplings at fixed (d, L),
each point trained — warm-started from the previous point's flow — and sampled (pydantic,
no torch)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator

from core.jobs.specs import (
    COARSE_SAMPLER_HELP,
    MAX_KERNEL,
    SEED_MAX,
    Device,
    SampleSpec,
    SpecModel,
    TrainSpec,
    fill_coarse_L,
)
from core.physics.exact.coarse_samplers import CoarseSampler, coarse_sampler_error
from core.physics.training.plan import Method

MAX_SCAN_POINTS = 64


class GridPoint(SpecModel):
    """One point of an explicit scan grid; ``dim``/``L``, if given, must be the scan's."""

    kappa: float
    lam: Annotated[float, Field(ge=0.0, description="quartic coupling λ (≥ 0)")]
    dim: Annotated[int | None, Field(ge=1, le=3)] = None
    L: Annotated[int | None, Field(ge=2, le=4096)] = None


class ScanSpec(SpecModel):
    """A grid of couplings at fixed (d, L) (core.jobs.scan_job): per point train — warm-started from
    the previous point's flow — then sample an exact ensemble. The grid is ``kappa`` × ``lam``
    (λ outer, κ inner) or the explicit ``points``; at most 64 points."""

    method: Method = "ir"
    dim: Annotated[int, Field(ge=1, le=3, description="lattice dimension d")] = 2
    L: Annotated[int, Field(ge=2, le=4096, description="fine linear size (coarse_L·2^n)")]
    coarse_L: Annotated[int, Field(ge=2, le=4096, description="unset: "
                                   "default_coarse_L(method, d, L)")] = 4
    kappa: Annotated[list[float] | None, Field(min_length=1, max_length=MAX_SCAN_POINTS)] = None
    lam: Annotated[list[Annotated[float, Field(ge=0.0)]], Field(min_length=1, max_length=
                                                                 MAX_SCAN_POINTS)] = [0.01]  # noqa: RUF012 (pydantic copies it)
    points: Annotated[list[GridPoint] | None, Field(min_length=1,
                                                    max_length=MAX_SCAN_POINTS)] = None
    steps_per_point: Annotated[int, Field(ge=0, le=10_000_000)] = 500
    max_minutes_per_point: Annotated[float | None, Field(gt=0.0)] = None
    batch: Annotated[int, Field(ge=2, le=65536)] = 64
    kernel_size: Annotated[int | None, Field(ge=2, le=MAX_KERNEL)] = None
    langevin_therm: Annotated[int | None, Field(ge=0, le=10_000_000)] = None
    eval_samples: Annotated[int | None, Field(ge=16, le=1_000_000)] = None
    warm_start: Annotated[bool, Field(description="point i starts from point i−1's flow")] = True
    n_samples: Annotated[int, Field(ge=1, description="configurations per point")] = 4000
    chains: Annotated[int, Field(ge=1, le=4096, description="coarse sampler chains")] = 32
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 0
    device: Device = "cpu"
    coarse_sampler: CoarseSampler = Field("hmc", description=COARSE_SAMPLER_HELP)

    @model_validator(mode="before")
    @classmethod
    def _default_coarse_L(cls, data: object) -> object:
        return fill_coarse_L(data)

    @field_validator("lam", mode="before")
    @classmethod
    def _one_lam(cls, v: object) -> object:
        return [v] if isinstance(v, int | float) else v

    @model_validator(mode="after")
    def _grid(self) -> ScanSpec:
        if (self.kappa is None) == (self.points is None):
            raise ValueError("kappa=None: give the grid as kappa (with lam) or as points, "
                             "exactly one of them")
        if (msg := coarse_sampler_error(self.coarse_sampler, self.method,
                                        self.coarse_L)) is not None:
            raise ValueError(msg)
        n = len(self.grid())
        if n > MAX_SCAN_POINTS:
            raise ValueError(f"kappa={self.kappa}: the grid kappa × lam has {n} points, more "
                             f"than {MAX_SCAN_POINTS}: split the scan")
        for i, p in enumerate(self.points or []):
            for name in ("dim", "L"):
                got = getattr(p, name)
                if got is not None and got != getattr(self, name):
                    raise ValueError(f"{name}={got} at points[{i}]: a scan runs at one (d, L) "
                                     f"= ({self.dim}, {self.L}); use {name}="
                                     f"{getattr(self, name)} or a separate scan")
        for i in range(n):
            try:
                self.train_spec(i)
            except ValidationError as err:
                msg = "; ".join(str(e["msg"]).removeprefix("Value error, ")
                                for e in err.errors())
                raise ValueError(f"{msg} (grid point {i})") from None
        return self

    def grid(self) -> list[tuple[float, float]]:
        """(κ, λ) per point, in scan order."""
        if self.points is not None:
            return [(p.kappa, p.lam) for p in self.points]
        return [(k, lam) for lam in self.lam for k in self.kappa or []]

    def train_spec(self, i: int, init_from: str | None = None) -> TrainSpec:
        kappa, lam = self.grid()[i]
        return TrainSpec(
            method=self.method, dim=self.dim, L=self.L, coarse_L=self.coarse_L, kappa=kappa,
            lam=lam, steps=self.steps_per_point, max_minutes=self.max_minutes_per_point,
            batch=self.batch, seed=self.seed + i, device=self.device,
            kernel_size=self.kernel_size, langevin_therm=self.langevin_therm,
            eval_samples=self.eval_samples, init_from=init_from)

    def sample_spec(self, i: int, model: str) -> SampleSpec:
        return SampleSpec(model=model, n_samples=self.n_samples, chains=self.chains,
                          seed=self.seed + i, device=self.device,
                          coarse_sampler=self.coarse_sampler)

    @property
    def max_minutes(self) -> float | None:
        """The whole scan's training budget (the server's max_job_seconds check)."""
        per = self.max_minutes_per_point
        return None if per is None else per * len(self.grid())


__all__ = ["MAX_SCAN_POINTS", "GridPoint", "ScanSpec"]
