"""What one level of the flow is made of — frozen configs, no torch.

    FieldConfig    the vector field G(Ψ, t) of eqs. (23)-(25)
    HollowConfig   the hollow term Σ_k g_k(Ψ_x) h_k(Ψ_{K(x)∖{x}}, t) (DESIGN §4b)
    LevelConfig    one super-resolving level T = F∘N∘U (eq. 29): field, base, solver

They travel from :class:`core.physics.flows.config.FlowConfig` (``field_config()``,
``level_config()``) down through :class:`core.physics.flows.rg_flow.SuperResolvingFlow`, the
level and the field constructors. Each quantity has one name throughout, the one
``config.json`` stores: ``n_freq`` (F), ``n_time`` (D), ``bond_freq`` (F'), ``bond_time``
(D'), ``kernel_size`` (k), ``base``. FlowConfig keeps the hollow sizes flat
(``hollow_channels``, ``hollow_hidden``) and selects the field by name (``field="paper"`` or
``"hollow"``); here that is ``LevelConfig.hollow``: None (eq. 23 alone) or a
:class:`HollowConfig`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from core.physics.flows.solver import SolverConfig


@dataclass(frozen=True)
class FieldConfig:
    """G_x(Ψ, t) = Σ_{y∈K(x)} Σ_{d,f} W_xydf K(t)_d H_f(Ψ_y), W factorised as in eq. (25).

    ``dim``          d, the lattice dimension
    ``kernel_size``  k of the local kernel K(x): 2 (the upsampling block of x) or odd (a k^d
                     window centred on x); None for the baseline, whose kernel spans the lattice
    ``n_freq``       F, functions of the odd basis H (eq. 24): x and F − 1 sines sin(ω_f x)
    ``n_time``       D, Fourier modes of the time kernel K(t) (eq. 23)
    ``bond_freq``    F', bond dimension between W̃ and W^H (eq. 25)
    ``bond_time``    D', bond dimension between W̃ and W^K (eq. 25)
    ``omega_max``    initial top frequency ω_F of H (None: (F − 1)/2)
    ``t0``, ``t1``   the integration interval on which K(t) lives (the solver's)

    Defaults: the super-resolving levels' F = 11, D = 10, F' = D' = 20 (:meth:`paper_baseline`
    gives the paper's baseline field, F = 30).
    """

    dim: int
    kernel_size: int | None
    n_freq: int = 11
    n_time: int = 10
    bond_freq: int = 20
    bond_time: int = 20
    omega_max: float | None = None
    t0: float = 0.0
    t1: float = 1.0

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {self.dim}")
        k = self.kernel_size
        if k is not None and not (k == 2 or (k >= 1 and k % 2 == 1)):
            raise ValueError(f"kernel_size must be 2 or odd, got {k}")
        sizes = {"n_freq (F)": self.n_freq, "n_time (D)": self.n_time,
                 "bond_freq (F')": self.bond_freq, "bond_time (D')": self.bond_time}
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.t1 == self.t0:
            raise ValueError("the integration interval [t0, t1] is empty")

    @classmethod
    def paper_baseline(cls, dim: int) -> FieldConfig:
        """The paper's baseline field (Section VI B): kernel spanning the lattice, F = 30,
        D = 10, F' = D' = 20."""
        return cls(dim, None, n_freq=30, n_time=10, bond_freq=20, bond_time=20)


@dataclass(frozen=True)
class HollowConfig:
    """Sizes of the hollow term of :mod:`core.physics.flows.hollow_field`: K = ``channels``
    pairs (g_k, h_k), h an MLP with ``hidden`` units (FlowConfig: ``hollow_channels``,
    ``hollow_hidden``)."""

    channels: int = 4
    hidden: int = 16

    def __post_init__(self) -> None:
        if self.channels < 1 or self.hidden < 1:
            raise ValueError(
                f"hollow channels={self.channels}, hidden={self.hidden}: both must be >= 1"
            )


@dataclass(frozen=True)
class LevelConfig:
    """One super-resolving level T = F∘N∘U (eq. 29), independent of the lattice size.

    ``field``   G of the CNF F_θ; a local kernel (``kernel_size`` not None)
    ``solver``  the CNF's ODE solver (default: the library's, :class:`SolverConfig`)
    ``base``    the noise N: "plain" (eqs. 19-21) or "conditional" (width and mean from the
                coarse field, :mod:`core.physics.flows.conditional_noise`)
    ``hollow``  None for the paper's field (23), or the sizes of the hollow term added to it
    """

    field: FieldConfig
    solver: SolverConfig = dataclasses.field(default_factory=SolverConfig)
    base: Literal["plain", "conditional"] = "plain"
    hollow: HollowConfig | None = None

    def __post_init__(self) -> None:
        if self.field.kernel_size is None:
            raise ValueError(
                "a super-resolving level needs a local kernel (kernel_size 2 or odd); "
                "kernel_size=None is the baseline's full-lattice kernel"
            )
        if self.base not in ("plain", "conditional"):
            raise ValueError(f"base={self.base!r}: use 'plain' or 'conditional'")
