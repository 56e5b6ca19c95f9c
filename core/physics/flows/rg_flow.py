"""Super-resolving levels T = F∘N∘U, their left inverse T† = U†∘F⁻¹, and stacks.
Paper eqs. (17)-(30) and (38).

**Exact density of one level** (DESIGN §4). With n = 2^d and ζ' the n − 1 free noise
components of each block (:mod:`core.physics.flows.noise`), the embedding

    E: (φ, ζ') ↦ Ψ = U(φ) + V(ζ'),   V(ζ')_B = (ζ'_1, ..., ζ'_{n−1}, −Σ_i ζ'_i)

is a linear bijection of R^{(2L)^d}; then φ̃ = F(Ψ) and

    log q(φ̃) = log p_L(φ) + log p_ζ(ζ') − log|det E| − log|det J_F(Ψ)|.

E is block diagonal with L^d identical n×n blocks M = [1 | e_1 − e_n | ... | e_{n−1} − e_n]
(columns: φ_B, then ζ'_i). Adding all rows to the last turns that row into (n, 0, ..., 0)
and leaves the identity in the ζ' columns of rows 1..n−1, so |det M| = n and

    log|det E| = L^d log 2^d = L^d · d log 2.

**Relation to eq. (18).** The paper books −½ L^d log b^d for U (½ log det J_UᵀJ_U: the
volume factor of the rectangular U alone) and adds log p_ζ. That is the same total only if
ζ is measured in orthonormal coordinates η on the zero-sum plane (ζ_B = Q η_B, QᵀQ = I,
Q ⊥ 1): then |det [1 | Q]| = √n and p_η is isotropic N(0, σ² I_{n−1}). In the ζ' coordinates
of eq. (19)-(20) used here, p_ζ'(ζ') = p_η(η)·√n per block (det Σ = σ^{2(n−1)}/n), and the
embedding costs n, not √n: log p_ζ' − log n = log p_η − ½ log n. Mixing eq. (19)'s density
with eq. (18)'s constant would be off by ½ L^d log 2^d per level — harmless for ESS and
Metropolis ratios, wrong for log q, KL values and log Z. We use log|det E| = L^d d log 2
with p_ζ' of eq. (19); the brute-force autograd Jacobian of (φ, ζ') ↦ φ̃ in tests decides
(tests/physics/flows/test_rg_flow.py), not this derivation.

Stacks (eq. 38) compose levels with their own parameters; log q_rel = log q(φ̃) − log p_L(φ)
is the sum of the per-level terms. p_L (coarse theory) is unnormalised: callers add −S_L(φ)
and the unknown log Z_L cancels in every ratio.

A level is built from a :class:`core.physics.flows.architecture.LevelConfig` (field, base,
solver), a stack from one LevelConfig and its sizes (:meth:`SuperResolvingFlow.from_config`);
:func:`build_flow` builds the flow a stored :class:`core.physics.flows.config.FlowConfig`
describes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from core.physics.flows.architecture import LevelConfig
from core.physics.flows.baseline import BaselineFlow
from core.physics.flows.cnf import CNF
from core.physics.flows.conditional_noise import ConditionalBlockNoise
from core.physics.flows.config import FlowConfig, n_levels
from core.physics.flows.hollow_field import HollowVectorField
from core.physics.flows.noise import BlockNoise
from core.physics.flows.solver import SolverConfig
from core.physics.flows.upsample import downsample, upsample
from core.physics.flows.vector_field import LocalVectorField


@dataclass(frozen=True)
class FlowSample:
    """φ̃ ``(B, L_f^d)``, log q(φ̃) − log p_L(φ) ``(B,)``, the ζ of each level (coarse to
    fine) and the summed kinetic energy (None unless asked for)."""

    phi: Tensor
    log_q_rel: Tensor
    noise: list[Tensor]
    kinetic: Tensor | None


@dataclass(frozen=True)
class FlowInverse:
    """T†(φ̃) on the coarse lattice, the implied ζ of each level (coarse to fine) and
    log q(φ̃) − log p_L(T†φ̃), so log q(φ̃) = log p_L(phi_coarse) + log_q_rel."""

    phi_coarse: Tensor
    noise: list[Tensor]
    log_q_rel: Tensor


def log_det_embedding(coarse: Tensor) -> float:
    """log|det E| = L^d log 2^d for a coarse batch ``(B, L, ..., L)`` (see module doc)."""
    dim = coarse.ndim - 1
    return math.prod(coarse.shape[1:]) * dim * math.log(2.0)


class SuperResolvingLevel(nn.Module):
    """One level T = F∘N∘U (eq. 29): ``noise`` (σ_θ) and ``cnf`` with the block-equivariant
    local field of kernel size k. Size independent: applies to any even coarse lattice.

    From ``config``: the field G is :class:`LocalVectorField` (eq. 23; ``config.hollow``
    None) or :class:`HollowVectorField` (eq. 23 plus the hollow term); the base is
    :class:`BlockNoise` ("plain") or :class:`ConditionalBlockNoise` ("conditional": ζ's width
    and mean depend on the coarse field φ, so log p_ζ below is log p(ζ'|φ)); the CNF
    integrates with ``config.solver``. ``generator`` draws the field's initial weights."""

    def __init__(self, config: LevelConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        vf = (
            LocalVectorField(config.field, generator)
            if config.hollow is None
            else HollowVectorField(config.field, config.hollow, generator)
        )
        dim = config.field.dim
        self.dim = dim
        self.noise = BlockNoise(dim) if config.base == "plain" else ConditionalBlockNoise(dim)
        self.cnf = CNF(vf, config.solver)

    def push(
        self, phi: Tensor, zeta: Tensor, solver: SolverConfig | None = None, kinetic: bool = False
    ) -> FlowSample:
        """φ̃ = F(U(φ) + ζ) for a given ζ; log_q_rel = log p_ζ(ζ'|φ) − log|det E| − log|det J_F|."""
        out = self.cnf(upsample(phi) + zeta, solver=solver, kinetic=kinetic)
        log_q_rel = self.noise.log_prob(zeta, coarse=phi) - log_det_embedding(phi) - out.log_det
        return FlowSample(phi=out.x, log_q_rel=log_q_rel, noise=[zeta], kinetic=out.kinetic)

    def forward(
        self,
        phi: Tensor,
        generator: torch.Generator,
        solver: SolverConfig | None = None,
        kinetic: bool = False,
    ) -> FlowSample:
        """Draw ζ (eq. 19-20) and push φ through the level."""
        zeta = self.noise.sample(phi.shape, generator, coarse=phi).zeta
        return self.push(phi, zeta, solver, kinetic)

    def inverse(self, phi_fine: Tensor, solver: SolverConfig | None = None) -> FlowInverse:
        """T† = U†∘F⁻¹ and ζ(φ̃) = F⁻¹(φ̃) − U(T†φ̃) (eq. 30) with the level's log q_rel."""
        back = self.cnf.inverse(phi_fine, solver=solver)
        coarse = downsample(back.x)
        zeta = back.x - upsample(coarse)
        log_p = self.noise.log_prob(zeta, coarse=coarse)
        log_q_rel = log_p - log_det_embedding(coarse) + back.log_det
        return FlowInverse(phi_coarse=coarse, noise=[zeta], log_q_rel=log_q_rel)


class SuperResolvingFlow(nn.Module):
    """Stack of levels with their own θ_i (eq. 38), coarse to fine: the given level modules
    (shared, not copied) from ``coarse_L`` to fine_L = coarse_L·2^len(levels).
    :meth:`from_config` builds a fresh stack."""

    def __init__(self, levels: Sequence[SuperResolvingLevel], coarse_L: int) -> None:
        super().__init__()
        if not levels:
            raise ValueError("a stack needs at least one level")
        dim = levels[0].dim
        if any(level.dim != dim for level in levels):
            raise ValueError(f"every level must be {dim}-dimensional")
        self.dim = dim
        self.coarse_L = coarse_L
        self.fine_L = coarse_L * 2 ** len(levels)
        self.levels = nn.ModuleList(levels)

    @classmethod
    def from_config(
        cls,
        config: LevelConfig,
        coarse_L: int,
        fine_L: int,
        generator: torch.Generator | None = None,
    ) -> SuperResolvingFlow:
        """log2(fine_L/coarse_L) fresh levels of one architecture, their initial weights
        drawn from ``generator`` level by level, coarse to fine."""
        count = n_levels(coarse_L, fine_L)  # ValueError "L=24 is not 4·2^n: use ..."
        return cls([SuperResolvingLevel(config, generator) for _ in range(count)], coarse_L)

    @property
    def level_list(self) -> list[SuperResolvingLevel]:
        """The levels, coarse to fine (typed view of ``self.levels``)."""
        return cast(list[SuperResolvingLevel], list(self.levels))

    def truncated(self, k: int) -> SuperResolvingFlow:
        """The first k levels (shared modules): coarse_L → coarse_L·2^k."""
        if not 1 <= k <= len(self.levels):
            raise ValueError(f"k={k}: choose 1..{len(self.levels)}")
        return SuperResolvingFlow(self.level_list[:k], self.coarse_L)

    def extended(self, extra: int = 1) -> SuperResolvingFlow:
        """UV-matching iteration (Appendix A): append ``extra`` independent copies of the
        last level (same parameters now, free to be retrained separately)."""
        last = self.level_list[-1]
        new = [*self.level_list, *(copy.deepcopy(last) for _ in range(extra))]
        return SuperResolvingFlow(new, self.coarse_L)

    def _check_coarse(self, phi: Tensor) -> None:
        if tuple(phi.shape[1:]) != (self.coarse_L,) * self.dim:
            raise ValueError(
                f"coarse batch has shape {tuple(phi.shape)}; "
                f"expected (B, {self.coarse_L}^{self.dim})"
            )

    def push(
        self,
        phi: Tensor,
        noise: Sequence[Tensor],
        solver: SolverConfig | None = None,
        kinetic: bool = False,
    ) -> FlowSample:
        """Deterministic map (φ, ζ_1..ζ_n) ↦ φ̃ with log q_rel (ζ_i with zero block sums)."""
        if len(noise) != len(self.levels):
            raise ValueError(f"{len(noise)} noise fields for {len(self.levels)} levels")
        return self._compose(phi, lambda i, lv, x: lv.push(x, noise[i], solver, kinetic))

    def forward(
        self,
        phi_coarse: Tensor,
        generator: torch.Generator,
        solver: SolverConfig | None = None,
        kinetic: bool = False,
    ) -> FlowSample:
        """φ̃ = T_n∘...∘T_1(φ) (eq. 38), drawing each level's ζ from ``generator`` in order
        (coarse to fine; the CNF draws nothing, so this is :meth:`push` with fresh noise).
        Level by level: a conditional base needs the level's input field for its ζ."""
        return self._compose(phi_coarse, lambda i, lv, x: lv(x, generator, solver, kinetic))

    def _compose(
        self, phi: Tensor, step: Callable[[int, SuperResolvingLevel, Tensor], FlowSample]
    ) -> FlowSample:
        self._check_coarse(phi)
        log_q = torch.zeros(phi.shape[0], dtype=phi.dtype, device=phi.device)
        energy: Tensor | None = None
        noise: list[Tensor] = []
        x = phi
        for i, level in enumerate(self.level_list):
            out = step(i, level, x)
            x, log_q, noise = out.phi, log_q + out.log_q_rel, noise + out.noise
            if out.kinetic is not None:
                energy = out.kinetic if energy is None else energy + out.kinetic
        return FlowSample(phi=x, log_q_rel=log_q, noise=noise, kinetic=energy)

    def inverse(self, phi_fine: Tensor, solver: SolverConfig | None = None) -> FlowInverse:
        """T† = T_1†∘...∘T_n† and the implied noise; scores any fine configuration."""
        if tuple(phi_fine.shape[1:]) != (self.fine_L,) * self.dim:
            raise ValueError(
                f"fine batch has shape {tuple(phi_fine.shape)}; "
                f"expected (B, {self.fine_L}^{self.dim})"
            )
        log_q = torch.zeros(phi_fine.shape[0], dtype=phi_fine.dtype, device=phi_fine.device)
        noise: list[Tensor] = []
        x = phi_fine
        for level in reversed(self.level_list):
            back = level.inverse(x, solver)
            x, log_q = back.phi_coarse, log_q + back.log_q_rel
            noise = back.noise + noise
        return FlowInverse(phi_coarse=x, noise=noise, log_q_rel=log_q)

    @torch.no_grad()
    def init_sigma(self, coarse: Tensor, generator: torch.Generator) -> list[float]:
        """σ of level i = std of level i−1's output (level 1: of the coarse samples)."""
        sigmas: list[float] = []
        x = coarse
        for level in self.level_list:
            sigmas.append(level.noise.init_sigma(x))
            x = level(x, generator).phi
        return sigmas


def build_flow(config: FlowConfig) -> SuperResolvingFlow | BaselineFlow:
    """The flow a :class:`FlowConfig` describes, in ``config.dtype`` on CPU. Initial weights
    depend only on ``config.seed``; load a state_dict to get a trained model."""
    gen = torch.Generator().manual_seed(config.seed)
    dtype = torch.float32 if config.dtype == "float32" else torch.float64
    flow: SuperResolvingFlow | BaselineFlow
    if config.kind == "baseline":
        flow = BaselineFlow(config.field_config(), config.fine_L, config.solver_config(),
                            learn_prior_sigma=config.learn_prior_sigma, generator=gen)
    else:
        assert config.coarse_L is not None
        flow = SuperResolvingFlow.from_config(config.level_config(), config.coarse_L,
                                              config.fine_L, gen)
    return flow.to(dtype)
