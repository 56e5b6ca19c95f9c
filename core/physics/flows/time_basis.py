"""Time kernel K(t) and odd field basis H(Ψ) of the CNF vector field, paper eqs. (23)-(24).

Time kernel: the first D real Fourier modes on the integration interval [t0, t1],

    s = (t − t0)/(t1 − t0),   K(t) = (1, sin 2πs, cos 2πs, sin 4πs, cos 4πs, ...)[:D],

i.e. K_j = cos(2π m_j s) for even j and sin(2π m_j s) for odd j, with m_j = ⌈j/2⌉.
The same function of t serves the forward (t0 → t1) and backward (t1 → t0) solves.
High modes make G oscillate in t: with D = 10 the top mode has 5 periods on [t0, t1],
which a fixed-step solver with few steps under-resolves (DESIGN §4, "the optimiser
exploits solver error").

Field basis (eq. 24): H_1(x) = x, H_f(x) = sin(ω_f x) for f = 2..F (F functions in all,
F − 1 learnable frequencies). Every H_f is odd, so a vector field linear in H(Ψ) obeys
G(−Ψ) = −G(Ψ) exactly (the Z2 symmetry of φ⁴). Derivatives for the divergence:
H_1' = 1, H_f'(x) = ω_f cos(ω_f x).

Initial frequencies: ω_f = linspace(0.5, ω_max, F − 1) with ω_max = (F − 1)/2 by default,
i.e. ω_f = (f − 1)/2 — periods from 4π down to ~4π/F, spread over the field scale |Ψ| ~ 1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TimeKernel(nn.Module):
    """K(t)_d, d = 1..D: the first D Fourier modes on [t0, t1] (no parameters)."""

    _harmonic: Tensor
    _is_sin: Tensor

    def __init__(self, n_time: int, t0: float = 0.0, t1: float = 1.0) -> None:
        super().__init__()
        if n_time < 1:
            raise ValueError(f"n_time (D) must be >= 1, got {n_time}")
        if t1 == t0:
            raise ValueError("the integration interval [t0, t1] is empty")
        self.n_time = n_time
        self.t0 = float(t0)
        self.t1 = float(t1)
        j = torch.arange(n_time)
        self.register_buffer("_harmonic", torch.div(j + 1, 2, rounding_mode="floor"), False)
        self.register_buffer("_is_sin", j % 2 == 1, False)

    def forward(self, t: Tensor | float, dtype: torch.dtype | None = None) -> Tensor:
        """K(t), shape ``(D,)``; ``t`` a float or 0-d tensor."""
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        t = torch.as_tensor(t, dtype=dtype, device=self._harmonic.device)
        s = (t - self.t0) / (self.t1 - self.t0)
        angle = (2 * math.pi) * self._harmonic.to(dtype) * s
        return torch.where(self._is_sin, torch.sin(angle), torch.cos(angle))


class OddSineBasis(nn.Module):
    """H(Ψ) of eq. (24): (x, sin ω_2 x, ..., sin ω_F x) with learnable ``omega`` (F − 1,)."""

    def __init__(self, n_freq: int, omega_max: float | None = None) -> None:
        super().__init__()
        if n_freq < 1:
            raise ValueError(f"n_freq (F) must be >= 1, got {n_freq}")
        self.n_freq = n_freq
        top = 0.5 * (n_freq - 1) if omega_max is None else float(omega_max)
        self.omega = nn.Parameter(torch.linspace(0.5, max(top, 0.5), n_freq - 1))

    def _shape(self, psi: Tensor) -> Tensor:
        return self.omega.to(psi.dtype).reshape(1, -1, *([1] * (psi.ndim - 1)))

    def forward(self, psi: Tensor) -> Tensor:
        """H_f(Ψ_x): ``(B, *lattice)`` → ``(B, F, *lattice)``."""
        x = psi.unsqueeze(1)
        return torch.cat([x, torch.sin(self._shape(psi) * x)], dim=1)

    def derivative(self, psi: Tensor) -> Tensor:
        """H_f'(Ψ_x): ``(B, *lattice)`` → ``(B, F, *lattice)``."""
        x = psi.unsqueeze(1)
        omega = self._shape(psi)
        return torch.cat([torch.ones_like(x), omega * torch.cos(omega * x)], dim=1)

    def contract_derivative(self, psi: Tensor, coeff: Tensor) -> Tensor:
        """Σ_f c_f H_f'(Ψ_x) for a coefficient vector ``coeff`` (F,): ``(B, *lattice)``."""
        x = psi.unsqueeze(1)
        omega = self._shape(psi)
        c = coeff[1:].reshape(omega.shape)
        return coeff[0] + (c * omega * torch.cos(omega * x)).sum(dim=1)
