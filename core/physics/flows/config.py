"""The architecture record of a flow (``config.json``) and the tensors it implies — no torch.

The API process validates uploaded flows with this module, so it imports only pydantic, the
standard library and the torch-free :mod:`core.physics.flows.solver` and
:mod:`core.physics.flows.architecture`. :class:`FlowConfig` is the stored record (flat, its
keys fixed by the files already written); :meth:`FlowConfig.solver_config`,
:meth:`FlowConfig.field_config` and :meth:`FlowConfig.level_config` hand it to the modules
as the configs they take. :func:`parameter_shapes` lists every tensor ``model.safetensors``
must hold, computed from the config alone; ``tests/physics/flows/test_rg_flow.py`` checks it
against the state_dict of the model :func:`core.physics.flows.rg_flow.build_flow` builds, so
any drift between this file and :mod:`core.physics.flows.vector_field` fails a test.

Tensor names: the flow's ``state_dict`` under ``flow.`` and the learned couplings as 0-d
float64 tensors ``couplings.{coarse,fine}_{kappa,lam}``.
"""

from __future__ import annotations

import math
from importlib import metadata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.physics.flows.architecture import FieldConfig, HollowConfig, LevelConfig
from core.physics.flows.solver import SolverConfig

COUPLING_KEYS = (
    "couplings.coarse_kappa",
    "couplings.coarse_lam",
    "couplings.fine_kappa",
    "couplings.fine_lam",
)


def _code_version() -> str:
    try:
        return metadata.version("srflow")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


class TheoryConfig(BaseModel):
    """Fine-lattice target couplings (κ, λ) of eq. (3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kappa: float
    lam: Annotated[float, Field(ge=0.0, description="λ ≥ 0")]


def fine_size_error(coarse_L: int, fine_L: int) -> str | None:
    """None if fine_L = coarse_L·2^n with n ≥ 1, else the message a physicist can act on."""
    n, size = 0, coarse_L
    while size < fine_L:
        size, n = size * 2, n + 1
    if size == fine_L and n >= 1:
        return None
    return (
        f"L={fine_L} is not {coarse_L}·2^n (n ≥ 1): use one of "
        f"{[coarse_L * 2**k for k in range(1, 6)]} for a super-resolving flow from "
        f"coarse_L={coarse_L}"
    )


def n_levels(coarse_L: int, fine_L: int) -> int:
    """log2(fine_L/coarse_L); raises ValueError if that is not a positive integer."""
    msg = fine_size_error(coarse_L, fine_L)
    if msg is not None:
        raise ValueError(msg)
    return (fine_L // coarse_L).bit_length() - 1


class FlowConfig(BaseModel):
    """Everything needed to rebuild a flow's function from its weights (``config.json``).

    ``super_resolving``: ``levels`` = log2(fine_L/coarse_L) levels T = F∘N∘U (eq. 38), local
    kernel ``kernel_size`` (2 = the block, or odd). ``baseline``: one full-lattice CNF on
    ``fine_L`` with a Gaussian prior; ``coarse_L`` and ``kernel_size`` are None, levels 0.
    ``theory`` holds the fine target couplings; learned couplings travel in the weights.
    ``field``: "paper" (eq. 23) or "hollow" (eq. 23 plus Σ_k g_k(Ψ_x)·h_k(Ψ_{K(x)∖x}),
    :mod:`core.physics.flows.hollow_field`); ``base``: "plain" (eqs. 19-21) or "conditional"
    (width and mean from the coarse field, :mod:`core.physics.flows.conditional_noise`).
    ``solver``: the :class:`SolverConfig` record (``to_dict``), defaults filled in. The
    defaults of F, D, F', D' and of the hollow sizes are :class:`FieldConfig`'s and
    :class:`HollowConfig`'s.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["super_resolving", "baseline"]
    dim: Annotated[int, Field(ge=1, le=3)]
    coarse_L: Annotated[int | None, Field(ge=2)] = None
    fine_L: Annotated[int, Field(ge=2, le=4096)]
    levels: Annotated[int, Field(ge=0)]
    kernel_size: Annotated[int | None, Field(ge=2)] = None
    n_freq: Annotated[int, Field(ge=1, description="F")] = FieldConfig.n_freq
    n_time: Annotated[int, Field(ge=1, description="D")] = FieldConfig.n_time
    bond_freq: Annotated[int, Field(ge=1, description="F'")] = FieldConfig.bond_freq
    bond_time: Annotated[int, Field(ge=1, description="D'")] = FieldConfig.bond_time
    solver: dict[str, Any] = Field(default_factory=lambda: SolverConfig().to_dict())
    dtype: Literal["float32", "float64"] = "float32"
    theory: TheoryConfig
    method: Literal["ir", "uv", "baseline"]
    seed: Annotated[int, Field(ge=0)] = 0
    code_version: str = Field(default_factory=_code_version)
    parent: str | None = None
    learn_prior_sigma: bool = False
    field: Literal["paper", "hollow"] = "paper"
    base: Literal["plain", "conditional"] = "plain"
    hollow_channels: Annotated[int, Field(ge=1, le=64, description="K")] = HollowConfig.channels
    hollow_hidden: Annotated[int, Field(ge=1, le=256)] = HollowConfig.hidden

    @field_validator("solver")
    @classmethod
    def _solver(cls, value: dict[str, Any]) -> dict[str, Any]:
        return SolverConfig.from_dict(value).to_dict()

    @model_validator(mode="after")
    def _consistent(self) -> FlowConfig:
        hollow = HollowConfig(self.hollow_channels, self.hollow_hidden)
        if self.field != "hollow" and hollow != HollowConfig():
            raise ValueError("hollow_channels and hollow_hidden apply to field='hollow' only")
        if self.kind == "baseline":
            if self.field != "paper":
                raise ValueError(
                    f"field={self.field!r} is defined for super-resolving levels only; "
                    "a baseline flow uses field='paper'"
                )
            if self.base != "plain":
                raise ValueError(
                    f"base={self.base!r} is defined for super-resolving levels only; "
                    "a baseline flow uses base='plain'"
                )
            if self.method != "baseline":
                raise ValueError(f"kind='baseline' needs method='baseline', got {self.method!r}")
            if self.levels != 0 or self.kernel_size is not None or self.coarse_L is not None:
                raise ValueError("a baseline flow has levels=0, kernel_size=None, coarse_L=None")
            return self
        if self.method == "baseline":
            raise ValueError("method='baseline' needs kind='baseline'")
        if self.learn_prior_sigma:
            raise ValueError("learn_prior_sigma applies to the baseline only")
        if self.coarse_L is None or self.kernel_size is None:
            raise ValueError("a super-resolving flow needs coarse_L and kernel_size")
        msg = fine_size_error(self.coarse_L, self.fine_L)
        if msg is not None:
            raise ValueError(msg)
        expected = n_levels(self.coarse_L, self.fine_L)
        if self.levels != expected:
            raise ValueError(
                f"levels={self.levels} but fine_L={self.fine_L}, coarse_L={self.coarse_L} "
                f"need log2({self.fine_L}/{self.coarse_L}) = {expected}"
            )
        if self.kernel_size != 2 and self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={self.kernel_size}: use 2 (the block) or odd")
        if self.kernel_size > 2 * self.coarse_L:
            raise ValueError(
                f"kernel_size={self.kernel_size} exceeds the first fine lattice 2·coarse_L="
                f"{2 * self.coarse_L}"
            )
        return self

    def solver_config(self) -> SolverConfig:
        """The stored ``solver`` record as the solver the CNF integrates with."""
        return SolverConfig.from_dict(self.solver)

    def field_config(self) -> FieldConfig:
        """G of every level (super-resolving: the local kernel ``kernel_size``; baseline:
        ``kernel_size`` None, the kernel spanning ``fine_L``), on the solver's interval."""
        solver = self.solver_config()
        return FieldConfig(
            self.dim, self.kernel_size, n_freq=self.n_freq, n_time=self.n_time,
            bond_freq=self.bond_freq, bond_time=self.bond_time, t0=solver.t0, t1=solver.t1,
        )  # fmt: skip

    def level_config(self) -> LevelConfig:
        """Every level of a super-resolving flow (they share one architecture)."""
        if self.kind != "super_resolving":
            raise ValueError("a baseline flow has no super-resolving levels")
        hollow = HollowConfig(self.hollow_channels, self.hollow_hidden)
        return LevelConfig(self.field_config(), self.solver_config(), base=self.base,
                           hollow=hollow if self.field == "hollow" else None)  # fmt: skip


def local_class_count(dim: int, kernel_size: int) -> int:
    """Symmetry classes of the block-equivariant kernel: multisets of d parity-relative
    offsets from {0, 1} (k = 2) or {−r..r} (k = 2r+1); see core.physics.flows.vector_field."""
    values = 2 if kernel_size == 2 else kernel_size
    return math.comb(values + dim - 1, dim)


def baseline_class_count(dim: int, size: int) -> int:
    """Classes of the full-lattice kernel: sorted (min(δ_μ, L−δ_μ))_μ, i.e. multisets of
    d values from the n = ⌊L/2⌋+1 values {0..⌊L/2⌋}: C(n+d−1, d) = C(⌊L/2⌋+d, d).

    Closed form, O(1): the API computes it for an uploaded ``config.json`` before any
    tensor is checked, and enumerating the tuples cost ~C(L/2+3, 3) (1.4·10⁹ at d=3,
    L=4096). ``tests/physics/flows/test_config_counts.py`` checks it against the enumeration."""
    return math.comb(size // 2 + dim, dim)


def _field_shapes(prefix: str, classes: int, cfg: FlowConfig) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}weight_space": (classes, cfg.bond_time, cfg.bond_freq),
        f"{prefix}weight_time": (cfg.bond_time, cfg.n_time),
        f"{prefix}weight_basis": (cfg.bond_freq, cfg.n_freq),
        f"{prefix}basis.omega": (cfg.n_freq - 1,),
    }


def _hollow_shapes(prefix: str, classes: int, cfg: FlowConfig) -> dict[str, tuple[int, ...]]:
    k, hidden = cfg.hollow_channels, cfg.hollow_hidden  # core.physics.flows.hollow_field
    return {
        f"{prefix}even_omega": (k - 1,),
        f"{prefix}odd.omega": (k - 1,),
        f"{prefix}weight_in": (classes - 1, k, hidden),
        f"{prefix}weight_time": (hidden, cfg.n_time),
        f"{prefix}bias": (hidden,),
        f"{prefix}weight_out": (k, hidden),
    }


def parameter_shapes(config: FlowConfig) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor ``model.safetensors`` must contain (no torch needed)."""
    shapes: dict[str, tuple[int, ...]] = {}
    if config.kind == "baseline":
        classes = baseline_class_count(config.dim, config.fine_L)
        shapes.update(_field_shapes("flow.cnf.field.", classes, config))
        shapes["flow.prior_log_sigma"] = ()
    else:
        assert config.kernel_size is not None
        classes = local_class_count(config.dim, config.kernel_size)
        for i in range(config.levels):
            shapes[f"flow.levels.{i}.noise.log_sigma"] = ()
            if config.base == "conditional":
                shapes[f"flow.levels.{i}.noise.width_weight"] = (2,)
                shapes[f"flow.levels.{i}.noise.mean_weight"] = ()
            shapes.update(_field_shapes(f"flow.levels.{i}.cnf.field.", classes, config))
            if config.field == "hollow":
                prefix = f"flow.levels.{i}.cnf.field.hollow."
                shapes.update(_hollow_shapes(prefix, classes, config))
    for key in COUPLING_KEYS:
        shapes[key] = ()
    return shapes


def parameter_dtypes(config: FlowConfig) -> dict[str, str]:
    """Name → dtype string ("float32"/"float64"): flow tensors in config.dtype, couplings
    in float64."""
    return {
        name: ("float64" if name.startswith("couplings.") else config.dtype)
        for name in parameter_shapes(config)
    }


def count_learnable(config: FlowConfig) -> int:
    """Number of flow parameters (scalars) without building the model; the fixed baseline
    prior width is not counted unless learnable."""
    total = 0
    for name, shape in parameter_shapes(config).items():
        if name.startswith("couplings."):
            continue
        if name == "flow.prior_log_sigma" and not config.learn_prior_sigma:
            continue
        total += math.prod(shape)
    return total
