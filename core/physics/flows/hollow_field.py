"""Hollow vector field (Chen & Duvenaud 2019) on top of the paper's local field, eq. (23).

    G_x(Ψ, t) = G^(23)_x(Ψ, t) + Σ_{k=1}^{K} g_k(Ψ_x) · h_k(Ψ_{K(x)∖{x}}, t)

G^(23) is :class:`core.physics.flows.vector_field.LocalVectorField` unchanged (same parameters and
names). g is an odd basis in the style of eq. (24) with its own learnable frequencies,
g_1(x) = x, g_k(x) = sin(ω_k x). h ("hollow": never sees Ψ_x) is

    e(Ψ_y)  = (Ψ_y², cos ν_2 Ψ_y, ..., cos ν_K Ψ_y)              even single-site features
    z_x     = Σ_{s≠0} A_{c(s)}ᵀ e(Ψ_{x+δ(s,x)}) + W^t K(t) + b     masked, class-tied layer
    h_x     = W^out tanh(z_x)                                    pointwise MLP

with K(t) the time kernel of eq. (23) and the offsets s, classes c(s) = sorted(s) and
parity shifts δ(s, x) of the local field *without its centre tap* s = 0. Hence:

* block equivariance: the masked layer has the tied form of eq. (23) and the MLP is
  pointwise, so h (and G) commute with translations by 2 and the block-preserving
  reflections/permutations;
* Z2: e is even, so h is even; g is odd, so G(−Ψ) = −G(Ψ);
* hollowness: on a lattice ``_check_lattice`` accepts (even, ≥ k ≥ 2|δ_μ| + 1) an offset
  s ≠ 0 never wraps onto x, so ∂h_x/∂Ψ_x = 0 exactly and

    ∂G_x/∂Ψ_x = Σ_f a_{c0 f}(t) H_f'(Ψ_x) + Σ_k g_k'(Ψ_x) h_k(x),   ∇·G = Σ_x of that,

  exact in O(V·K) (Chen & Duvenaud's "cheap differential operators").

Init: W^out = 0, so the hollow part vanishes and the flow is the identity while W̃ = 0;
A ~ N(0, 1/(n_taps K)) with n_taps = k^d − 1 (k = 2: 2^d − 1) non-centre taps,
W^t ~ N(0, 1/D), b = 0, so z = O(1); ν, ω = linspace(0.5, (K−1)/2) as in eq. (24).
Architecture: the local field's :class:`core.physics.flows.architecture.FieldConfig` and a
:class:`core.physics.flows.architecture.HollowConfig` (K = ``channels``, H = ``hidden``; in
``config.json`` ``hollow_channels``, ``hollow_hidden``), kept as ``.config`` and
``.hollow.config``. Parameters (state_dict, under ``hollow.``): ``even_omega`` ν (K−1,),
``odd.omega`` ω (K−1,), ``weight_in`` A (C−1, K, H), ``weight_time`` W^t (H, D), ``bias`` b
(H,), ``weight_out`` W^out (K, H); C the class count of the local kernel.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.physics.flows.architecture import FieldConfig, HollowConfig
from core.physics.flows.time_basis import OddSineBasis
from core.physics.flows.upsample import from_blocks, to_blocks
from core.physics.flows.vector_field import (
    FieldEval,
    LocalVectorField,
    VectorField,
    local_classes,
    local_offsets,
)


def _window_classes(dim: int, kernel_size: int) -> tuple[Tensor, int]:
    """Class of every (parity p, window position q) of the block-aligned window, ``(2^d, w^d)``
    with w = k + 1 (odd k) or 2 (k = 2): q_μ = p_μ + δ_μ + r, s_μ = δ_μ(1 − 2p_μ); the centre
    s = 0 and positions outside the kernel get the index C − 1 of an appended zero row."""
    reps, _ = local_classes(dim, kernel_size)
    centre = reps.index(tuple([0] * dim))
    r = 0 if kernel_size == 2 else (kernel_size - 1) // 2
    width = 2 if kernel_size == 2 else kernel_size + 1
    allowed = set(local_offsets(dim, kernel_size))
    rows = []
    for p in itertools.product([0, 1], repeat=dim):
        row = []
        for q in itertools.product(range(width), repeat=dim):
            s = tuple((qm - r - pm) * (1 - 2 * pm) for qm, pm in zip(q, p, strict=True))
            c = reps.index(tuple(sorted(s))) if s in allowed else centre
            row.append(len(reps) - 1 if c == centre else (c if c < centre else c - 1))
        rows.append(row)
    return torch.tensor(rows), r


def _as(param: Tensor, like: Tensor) -> Tensor:
    """``param`` in the dtype of ``like`` (a no-op, without a dispatch, when they agree)."""
    return param if param.dtype == like.dtype else param.to(like.dtype)


class HollowNet(nn.Module):
    """h_k(Ψ_{K(x)∖{x}}, t) in the block view: ``(B, *lattice)`` → ``(B, M.., 2^d, K)``
    (M = L/2; the 2^d axis lists the in-block parities p in the order of
    :func:`core.physics.flows.upsample.to_blocks`).

    The masked layer is one matrix product per block (a strided convolution): block j
    reads the block-aligned window of sites 2j − r .. 2j + r + 1 (circular padding r) and
    writes 2^d·H values, H for each in-block parity p, with A_{c(s)} gathered per (p, q).
    ``field`` gives d, k and D (a local kernel); ``generator`` draws A, then W^t."""

    _index: Tensor

    def __init__(
        self, field: FieldConfig, config: HollowConfig, generator: torch.Generator
    ) -> None:
        super().__init__()
        if field.kernel_size is None:
            raise ValueError("the hollow term needs a local kernel (kernel_size 2 or odd)")
        dim, kernel_size = field.dim, field.kernel_size
        channels, hidden = config.channels, config.hidden
        self.config = config
        index, self.pad = _window_classes(dim, kernel_size)
        self.register_buffer("_index", index, persistent=False)
        self.dim, self.hidden = dim, hidden
        self.window = 2 if kernel_size == 2 else kernel_size + 1
        n_classes = len(local_classes(dim, kernel_size)[0]) - 1
        self.odd = OddSineBasis(channels)
        self.even_omega = nn.Parameter(self.odd.omega.detach().clone())
        dtype = torch.get_default_dtype()
        fan_in = (len(local_offsets(dim, kernel_size)) - 1) * channels
        a = torch.randn(n_classes, channels, hidden, generator=generator) / fan_in**0.5
        wt = torch.randn(hidden, field.n_time, generator=generator) / field.n_time**0.5
        self.weight_in = nn.Parameter(a.to(dtype))
        self.weight_time = nn.Parameter(wt.to(dtype))
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.weight_out = nn.Parameter(torch.zeros(channels, hidden))

    def even_features(self, psi: Tensor) -> Tensor:
        """e(Ψ) = (Ψ², cos ν_2 Ψ, ..., cos ν_K Ψ) on a new last axis ``(..., K)``."""
        x = psi.unsqueeze(-1)
        return torch.cat([x.square(), torch.cos(_as(self.even_omega, psi) * x)], dim=-1)

    def odd_features(self, psi: Tensor) -> tuple[Tensor, Tensor]:
        """g_k(Ψ) and g_k'(Ψ) on a new last axis ``(..., K)``."""
        x = psi.unsqueeze(-1)
        omega = _as(self.odd.omega, psi)
        angle = omega * x
        g = torch.cat([x, torch.sin(angle)], dim=-1)
        return g, torch.cat([torch.ones_like(x), omega * torch.cos(angle)], dim=-1)

    def window_weight(self) -> Tensor:
        """The masked layer as a matrix ``(w^d·K, 2^d·H)``: rows (window position q,
        feature), columns (parity p, hidden unit); zero where s = 0 or q is outside K."""
        ext = F.pad(self.weight_in, (0, 0, 0, 0, 0, 1))  # (C, K, H), last row = 0
        w = ext[self._index]  # (2^d, w^d, K, H)
        return w.permute(1, 2, 0, 3).reshape(-1, w.shape[0] * w.shape[3])

    def forward(self, kt: Tensor, psi: Tensor) -> Tensor:
        """h(Ψ, t) ``(B, M.., 2^d, K)`` for the time kernel values ``kt`` = K(t) ``(D,)``."""
        d = self.dim
        x = psi
        if self.pad:
            x = F.pad(x.unsqueeze(1), (self.pad,) * (2 * d), mode="circular").squeeze(1)
        for mu in range(d):  # block-aligned windows (B, M_1..M_d, w..w): a view
            x = x.unfold(1 + mu, self.window, 2)
        half = x.shape[1 : 1 + d]
        cols = self.even_features(x).reshape(psi.shape[0] * math.prod(half), -1)
        z = (cols @ _as(self.window_weight(), psi)).reshape(-1, 2**d, self.hidden)
        shift = torch.addmv(_as(self.bias, psi), _as(self.weight_time, psi), kt)
        h = F.linear(torch.tanh(z + shift), _as(self.weight_out, psi))  # (B·M^d, 2^d, K)
        return h.reshape(psi.shape[0], *half, 2**d, -1)


class HollowVectorField(LocalVectorField):
    """Eq. (23) plus the hollow term Σ_k g_k(Ψ_x) h_k(Ψ_{K(x)∖{x}}, t); exact divergence.
    One ``generator`` (default: seeded 0) draws the local field's weights, then the hollow
    term's."""

    def __init__(
        self,
        config: FieldConfig,
        hollow: HollowConfig,
        generator: torch.Generator | None = None,
    ) -> None:
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        super().__init__(config, gen)
        self.hollow = HollowNet(config, hollow, gen)

    def _hollow_terms(self, t: Tensor | float, psi: Tensor) -> FieldEval:
        """Σ_k g_k(Ψ_x) h_k(x) ``(B, *lattice)`` and Σ_x Σ_k g_k'(Ψ_x) h_k(x) ``(B,)``."""
        self._check_lattice(psi)
        kt = self.time_kernel(t, dtype=self.weight_time.dtype).to(psi.dtype)
        h = self.hollow(kt, psi)
        g, dg = self.hollow.odd_features(to_blocks(psi))
        div = (dg * h).reshape(psi.shape[0], -1).sum(1)
        return FieldEval(velocity=from_blocks((g * h).sum(-1)), divergence=div)

    def hollow_output(self, t: Tensor | float, psi: Tensor) -> Tensor:
        """h(Ψ, t) on the lattice ``(B, K, *lattice)``; h at x does not depend on Ψ_x."""
        self._check_lattice(psi)
        kt = self.time_kernel(t, dtype=self.weight_time.dtype).to(psi.dtype)
        h = self.hollow(kt, psi).movedim(-1, 1)  # (B, K, M.., 2^d)
        lattice = from_blocks(h.reshape(-1, *h.shape[2:]))
        return lattice.reshape(psi.shape[0], -1, *psi.shape[1:])

    def forward(self, t: Tensor | float, psi: Tensor) -> Tensor:
        """G(Ψ, t) = G^(23) + Σ_k g_k(Ψ_x) h_k, same shape as ``psi``."""
        return super().forward(t, psi) + self._hollow_terms(t, psi).velocity

    def divergence(self, t: Tensor | float, psi: Tensor) -> Tensor:
        """∇·G = Σ_x [Σ_f a_{c0 f} H_f'(Ψ_x) + Σ_k g_k'(Ψ_x) h_k(x)], shape ``(B,)``."""
        return super().divergence(t, psi) + self._hollow_terms(t, psi).divergence

    # the hollow term works on the lattice layout: the ODE state stays there (VectorField's
    # identity layout, not LocalVectorField's blocks)
    to_state = VectorField.to_state
    from_state = VectorField.from_state
    state_velocity_and_divergence = VectorField.state_velocity_and_divergence

    def velocity_and_divergence(self, t: Tensor | float, psi: Tensor) -> FieldEval:
        """G and ∇·G in one pass (h evaluated once)."""
        ev, hollow = super().velocity_and_divergence(t, psi), self._hollow_terms(t, psi)
        return FieldEval(ev.velocity + hollow.velocity, ev.divergence + hollow.divergence)
