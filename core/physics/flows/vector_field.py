"""Equivariant vector fields G(Ψ, t) of the CNF with exact divergence, paper eqs. (22)-(25).

    G_x(Ψ, t) = Σ_{y∈K(x)} Σ_{d,f} W_xydf K(t)_d H_f(Ψ_y)                      (23)
    W_xydf    = Σ_{d'f'} W̃_{c(x,y) d'f'} W^K_{d'd} W^H_{f'f}                   (25)

with K, H from :mod:`core.physics.flows.time_basis`. The spatial weights W̃ depend on (x, y) only
through a symmetry class c(x, y); per class the time-dependent coefficient is
a_{cf}(t) = Σ W̃_{cd'f'} (W^K K(t))_{d'} W^H_{f'f}, and G_x = Σ_y a_{c(x,y)}·H(Ψ_y).

**Local field** (IR/UV-matching): symmetric under the maps that preserve the 2^d
upsampling blocks {2j, 2j+1}^d — translations by 2, axis permutations and reflections
x_μ → c − x_μ with c odd (about block centres *and* block boundaries). For a site x with
in-block parity p_μ = x_μ mod 2 and offset δ = y − x, such a reflection maps
(p_μ, δ_μ) → (1 − p_μ, −δ_μ), so s_μ = δ_μ (1 − 2p_μ) is invariant, and permutations
permute s. The reflections act transitively on p for fixed s, hence the orbits of
pairs (x, y) are exactly the multisets of s: c(x, y) = sorted(s). Kernel size k odd:
δ ∈ {−r..r}^d, r = (k−1)/2; k = 2: the block of x, s ∈ {0, 1}^d. Classes: d+1 for
k = 2; 6 for k = 3 in d = 2. As a sum of shifted maps, G = Σ_s R_s[u_{c(s)}] with
u_c = Σ_f a_cf H_f(Ψ) and R_s a parity-dependent circular shift, (R_s u)_x = u_{x+δ(s,x)}
(:func:`roll_contract`, the plain reference); evaluated as one convolution on the lattice
of blocks whose kernel is built from a_cf (core.physics.flows.block_conv).

**Baseline field** (full-lattice CNF): translations by 1 and the lattice point group;
the kernel spans all offsets δ mod L and c(δ) = sorted(min(δ_μ, L − δ_μ)). Evaluated as
a circular convolution by FFT, G = IFFT(Σ_f FFT(w_f) FFT(H_f(Ψ))), w_f(δ) = a_{c(δ)f}
(w is even under δ → −δ, so correlation = convolution).

**Divergence** (exact): only the δ = 0 tap (one class c0 for every x) depends on Ψ_x,

    ∇·G = Σ_x Σ_f a_{c0 f}(t) H_f'(Ψ_x).

W̃ = 0 at initialisation (identity flow); W^K ~ N(0, 1/(D D')), W^H ~ N(0, 1/(F F')), the
fan-in of the whole contraction over (d, d') and (f, f'): then W̃ ~ N(0, σ²) gives
a_cf ~ σ/√(2F) and |G_x| ~ σ per class, independent of the bond dimensions, and one Adam
step (lr 0.01) moves a_cf by O(0.01-0.05) — the scale of the reference implementation
(Gerdes et al., orthogonal/D), which keeps the field smooth for fixed-step solvers.
Architecture: :class:`core.physics.flows.architecture.FieldConfig` (d, k, F = ``n_freq``,
D = ``n_time``, F' = ``bond_freq``, D' = ``bond_time``, ω_max, [t0, t1]), kept as ``.config``.
Parameters (state_dict, the stored names): ``weight_space`` W̃ (C, D', F'), ``weight_time``
W^K (D', D), ``weight_basis`` W^H (F', F), ``basis.omega`` (F − 1,).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from core.physics.flows.architecture import FieldConfig
from core.physics.flows.block_conv import (
    BlockKernelPlan,
    block_conv,
    block_conv_state,
    block_kernel_plan,
    from_block_state,
    to_block_state,
)
from core.physics.flows.time_basis import OddSineBasis, TimeKernel


@dataclass(frozen=True)
class FieldEval:
    """G(Ψ, t) ``(B, *lattice)`` and its divergence ∇_Ψ·G per configuration ``(B,)``."""

    velocity: Tensor
    divergence: Tensor


def local_offsets(dim: int, kernel_size: int) -> list[tuple[int, ...]]:
    """The parity-relative offsets s of a kernel: {−r..r}^d (k odd) or {0, 1}^d (k = 2)."""
    if kernel_size == 2:
        values = [0, 1]
    elif kernel_size % 2 == 1 and kernel_size >= 1:
        r = (kernel_size - 1) // 2
        values = list(range(-r, r + 1))
    else:
        raise ValueError(f"kernel_size must be 2 or odd, got {kernel_size}")
    return list(itertools.product(values, repeat=dim))


def local_classes(dim: int, kernel_size: int) -> tuple[list[tuple[int, ...]], list[int]]:
    """Symmetry classes of the local kernel: (sorted class representatives, class of each s)."""
    offsets = local_offsets(dim, kernel_size)
    reps = sorted({tuple(sorted(s)) for s in offsets})
    index = {rep: i for i, rep in enumerate(reps)}
    return reps, [index[tuple(sorted(s))] for s in offsets]


def full_lattice_classes(dim: int, size: int) -> tuple[int, Tensor]:
    """(number of classes, class index of every offset δ ∈ Z_L^d as an ``(L,)*d`` tensor)."""
    m = torch.arange(size)
    m = torch.minimum(m, size - m)
    grids = torch.meshgrid(*([m] * dim), indexing="ij")
    key = torch.sort(torch.stack(grids, dim=-1), dim=-1).values  # (L,..,L, d)
    reps, inverse = torch.unique(key.reshape(-1, dim), dim=0, return_inverse=True)
    return reps.shape[0], inverse.reshape([size] * dim)


class VectorField(nn.Module):
    """Common part of eqs. (23)-(25): K(t), H(Ψ), factorised weights over C classes, whose
    class ``centre_class`` is the δ = 0 tap. ``generator`` draws W^K then W^H (default: a
    generator seeded 0)."""

    def __init__(
        self,
        config: FieldConfig,
        n_classes: int,
        centre_class: int,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        self.config = config
        n_freq, n_time = config.n_freq, config.n_time
        bond_freq, bond_time = config.bond_freq, config.bond_time
        self.time_kernel = TimeKernel(n_time, config.t0, config.t1)
        self.basis = OddSineBasis(n_freq, config.omega_max)
        self.centre_class = centre_class
        self.weight_space = nn.Parameter(torch.zeros(n_classes, bond_time, bond_freq))
        wk = torch.randn(bond_time, n_time, generator=gen) / (n_time * bond_time) ** 0.5
        wh = torch.randn(bond_freq, n_freq, generator=gen) / (n_freq * bond_freq) ** 0.5
        self.weight_time = nn.Parameter(wk.to(torch.get_default_dtype()))
        self.weight_basis = nn.Parameter(wh.to(torch.get_default_dtype()))

    @property
    def t0(self) -> float:
        return self.time_kernel.t0

    @property
    def t1(self) -> float:
        return self.time_kernel.t1

    def coefficients(self, t: Tensor | float) -> Tensor:
        """a_cf(t) = Σ_{d'f'} W̃_{cd'f'} (W^K K(t))_{d'} W^H_{f'f}, shape ``(C, F)``."""
        kt = self.weight_time @ self.time_kernel(t, dtype=self.weight_time.dtype)
        return torch.einsum("cpq,p,qf->cf", self.weight_space, kt, self.weight_basis)

    def _contract(self, coeff: Tensor, features: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _check_lattice(self, psi: Tensor) -> None:  # pragma: no cover
        raise NotImplementedError

    def forward(self, t: Tensor | float, psi: Tensor) -> Tensor:
        """G(Ψ, t) of eq. (23), same shape as ``psi`` ``(B, *lattice)``."""
        self._check_lattice(psi)
        coeff = self.coefficients(t).to(psi.dtype)
        return self._contract(coeff, self.basis(psi))

    def divergence(self, t: Tensor | float, psi: Tensor) -> Tensor:
        """∇_Ψ·G = Σ_x Σ_f a_{c0 f}(t) H_f'(Ψ_x), shape ``(B,)``."""
        coeff = self.coefficients(t).to(psi.dtype)
        return self._divergence(coeff, psi)

    def _divergence(self, coeff: Tensor, psi: Tensor) -> Tensor:
        site = self.basis.contract_derivative(psi, coeff[self.centre_class])
        return site.reshape(psi.shape[0], -1).sum(dim=1)

    def velocity_and_divergence(self, t: Tensor | float, psi: Tensor) -> FieldEval:
        """G and ∇·G in one pass (shared coefficients)."""
        self._check_lattice(psi)
        coeff = self.coefficients(t).to(psi.dtype)
        velocity = self._contract(coeff, self.basis(psi))
        return FieldEval(velocity=velocity, divergence=self._divergence(coeff, psi))

    # The ODE state. A CNF integrates Ψ in the layout its field evaluates fastest: a
    # permutation of the coordinates, so the divergence, the log-det and the kinetic
    # energy are the same numbers; Ψ enters and leaves in the lattice layout.
    def to_state(self, psi: Tensor) -> Tensor:
        """Ψ ``(B, *lattice)`` in the layout of the ODE state (here: unchanged)."""
        return psi

    def from_state(self, state: Tensor) -> Tensor:
        """Inverse of :meth:`to_state`."""
        return state

    def state_velocity_and_divergence(self, t: Tensor | float, state: Tensor) -> FieldEval:
        """G and ∇·G with Ψ and G in the state layout."""
        return self.velocity_and_divergence(t, state)


def _parity_shift(a: Tensor, s: tuple[int, ...]) -> Tensor:
    """R_s: (R_s a)_x = a_{x+δ}, δ_μ = s_μ for even x_μ and −s_μ for odd x_μ (lattice axes 1..d)."""
    for mu, s_mu in enumerate(s):
        if s_mu == 0:
            continue
        axis = mu + 1
        size = a.shape[axis]
        even = (torch.arange(size, device=a.device) % 2 == 0).reshape(
            [size if i == axis else 1 for i in range(a.ndim)]
        )
        a = torch.where(even, torch.roll(a, -s_mu, dims=axis), torch.roll(a, s_mu, dims=axis))
    return a


def roll_contract(u: Tensor, offsets: list[tuple[int, ...]], offset_class: list[int]) -> Tensor:
    """Σ_s R_s[u_{c(s)}] by explicit parity shifts, ``u`` ``(B, C, *lattice)``.

    The plain reference for :meth:`LocalVectorField._contract` (tests, bench/profile_step.py
    ``--compare-contract``): 2-4 rolls and a ``where`` per offset.
    """
    out = torch.zeros_like(u[:, 0])
    for s, c in zip(offsets, offset_class, strict=True):
        out = out + _parity_shift(u[:, c], s)
    return out


class LocalVectorField(VectorField):
    """Block-equivariant local field G^(K) (eqs. 23-25), kernel size k = 2 (block) or odd k
    (``config.kernel_size``, not None)."""

    block_index: Tensor

    def __init__(self, config: FieldConfig, generator: torch.Generator | None = None) -> None:
        if config.kernel_size is None:
            raise ValueError("a local field needs kernel_size 2 or odd; None is the baseline's")
        dim, kernel_size = config.dim, config.kernel_size
        reps, classes = local_classes(dim, kernel_size)
        super().__init__(config, len(reps), reps.index(tuple([0] * dim)), generator)
        self.dim = dim
        self.kernel_size = kernel_size
        self.offsets = local_offsets(dim, kernel_size)
        self.offset_class = classes
        self.class_reps = reps
        plan = block_kernel_plan(dim, kernel_size, dict(zip(self.offsets, classes, strict=True)))
        self.block_reach = plan.reach
        self.register_buffer("block_index", plan.index, persistent=False)

    def _check_lattice(self, psi: Tensor) -> None:
        shape = tuple(psi.shape[1:])
        if len(shape) != self.dim:
            raise ValueError(f"expected a (B, L^{self.dim}) batch, got shape {tuple(psi.shape)}")
        if any(n % 2 or n < max(self.kernel_size, 2) for n in shape):
            raise ValueError(f"lattice {shape} must be even and >= kernel size {self.kernel_size}")

    def _plan(self) -> BlockKernelPlan:
        return BlockKernelPlan(dim=self.dim, reach=self.block_reach, index=self.block_index)

    def _contract(self, coeff: Tensor, features: Tensor) -> Tensor:
        """Σ_y a_{c(x,y)}·H(Ψ_y) as one convolution on the lattice of blocks
        (core.physics.flows.block_conv); :func:`roll_contract` is the plain reference."""
        return block_conv(features, coeff, self._plan())

    def to_state(self, psi: Tensor) -> Tensor:
        """The block layout ``(B, 2^d, L/2..)``: the convolution reads and writes it
        without a copy per evaluation."""
        self._check_lattice(psi)
        return to_block_state(psi)

    def from_state(self, state: Tensor) -> Tensor:
        return from_block_state(state)

    def state_velocity_and_divergence(self, t: Tensor | float, state: Tensor) -> FieldEval:
        """G and ∇·G on the block layout: H(Ψ) is elementwise, so it is ``(B, F, 2^d, ..)``
        there, and the convolution returns G in the same layout."""
        coeff = self.coefficients(t).to(state.dtype)
        velocity = block_conv_state(self.basis(state), coeff, self._plan())
        return FieldEval(velocity=velocity, divergence=self._divergence(coeff, state))


class BaselineVectorField(VectorField):
    """Full-lattice translation- and point-group-equivariant field (the paper's baseline CNF)
    on an L^d lattice, L = ``size``; its kernel spans the lattice (``config.kernel_size``
    None; :meth:`FieldConfig.paper_baseline` is the paper's F = 30, D = 10, F' = D' = 20)."""

    class_index: Tensor

    def __init__(
        self, config: FieldConfig, size: int, generator: torch.Generator | None = None
    ) -> None:
        if config.kernel_size is not None:
            raise ValueError(
                f"the baseline kernel spans the lattice: kernel_size must be None, "
                f"got {config.kernel_size}"
            )
        n_classes, index = full_lattice_classes(config.dim, size)
        super().__init__(config, n_classes, int(index.reshape(-1)[0]), generator)
        self.dim = config.dim
        self.size = size
        self.register_buffer("class_index", index, persistent=False)

    def _check_lattice(self, psi: Tensor) -> None:
        if tuple(psi.shape[1:]) != (self.size,) * self.dim:
            raise ValueError(f"expected (B, {self.size}^{self.dim}), got {tuple(psi.shape)}")

    def _contract(self, coeff: Tensor, features: Tensor) -> Tensor:
        dims = tuple(range(2, features.ndim))
        lattice = features.shape[2:]
        w = torch.movedim(coeff[self.class_index], -1, 0)  # (F, *lattice) w_f(δ)
        wk = torch.fft.rfftn(w, dim=tuple(d - 1 for d in dims))
        hk = torch.fft.rfftn(features, dim=dims)
        gk = (hk * wk.unsqueeze(0)).sum(dim=1)
        return torch.fft.irfftn(gk, s=lattice, dim=tuple(d - 1 for d in dims))


def count_parameters(module: nn.Module) -> int:
    """Number of learnable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
