"""Per-configuration measurements and ensemble summaries of lattice φ⁴ theory.

A batch has shape ``(..., L, ..., L)``: the last ``dim`` axes are the periodic lattice,
V = L^dim sites; leading axes are batch axes (e.g. time × chains).

    M = (1/V) Σ_x φ_x,   φ² density = (1/V) Σ_x φ_x²,   action density = S(φ)/V   (paper eq. 3)
    χ = V⟨M²⟩ = G̃(0),   χ_conn = V(⟨M²⟩ − ⟨|M|⟩²),   U = 1 − ⟨M⁴⟩/(3⟨M²⟩²)
    G̃(p) = (1/V)⟨|φ̃(p)|²⟩,  φ̃(p) = Σ_x e^{ip·x} φ_x
    ξ_2nd² = (χ/F − 1) / (4 sin²(π/L)),  F = G̃(p_min) averaged over the d momenta
             p = (2π/L) e_μ (the smallest nonzero ones); ξ is NaN when χ/F < 1.

The connected two-point function subtracts ⟨|M|⟩² by default,
G_c(x) = ⟨(1/V) Σ_y φ_y φ_{y+x}⟩ − ⟨|M|⟩², so that Σ_x G_c(x) = χ_conn; on a finite
lattice ⟨M⟩ = 0 by symmetry and ⟨|M|⟩ is the order parameter of the broken phase.
In the free theory (λ = 0) G̃(p) = 1/(2(1 − 2κ Σ_μ cos p_μ)), so ξ_2nd² = κ/(1 − 2dκ).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from core.physics.lattice.action import action
from core.physics.stats.gamma import (
    as_float64,
    gamma_method,
    gamma_method_derived,
    reweighted_derived,
)

Subtraction = Literal["abs", "signed", "none"]
_BATCH_SITES = 1 << 18  # sites per measurement batch: 2 MiB in float64 stays in cache/arena


@dataclass(frozen=True)
class Estimate:
    """An ensemble estimate: mean ± error with the integrated autocorrelation time."""

    mean: float
    error: float
    tau_int: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def lattice_axes(dim: int) -> tuple[int, ...]:
    """The last ``dim`` axes of a batch."""
    return tuple(range(-dim, 0))


def magnetization(phi: Tensor, dim: int) -> Tensor:
    """M = (1/V) Σ_x φ_x per configuration."""
    return phi.mean(dim=lattice_axes(dim))


def abs_magnetization(phi: Tensor, dim: int) -> Tensor:
    """|M| per configuration."""
    return magnetization(phi, dim).abs()


def phi2_density(phi: Tensor, dim: int) -> Tensor:
    """(1/V) Σ_x φ_x² per configuration."""
    return (phi * phi).mean(dim=lattice_axes(dim))


def action_density(phi: Tensor, kappa: float, lam: float, dim: int) -> Tensor:
    """S(φ)/V per configuration (paper eq. 3)."""
    lattice = phi.shape[phi.ndim - dim :]
    flat = phi.reshape(-1, *lattice)
    return (action(flat, kappa, lam) / math.prod(lattice)).reshape(phi.shape[: phi.ndim - dim])


def two_point(phi: Tensor, dim: int) -> Tensor:
    """Translation-averaged C(x) = (1/V) Σ_y φ_y φ_{y+x} per configuration (via FFT)."""
    axes = lattice_axes(dim)
    lattice = phi.shape[phi.ndim - dim :]
    ft = torch.fft.rfftn(phi, dim=axes)
    return torch.fft.irfftn(ft.abs() ** 2, s=lattice, dim=axes) / math.prod(lattice)


def min_momentum_power(phi: Tensor, dim: int) -> Tensor:
    """F = (1/(dV)) Σ_μ |φ̃(2π e_μ/L)|² per configuration; ⟨F⟩ = G̃(p_min)."""
    size = phi.shape[-1]
    angle = 2 * math.pi * torch.arange(size, device=phi.device, dtype=phi.dtype) / size
    cos, sin = torch.cos(angle), torch.sin(angle)
    total = torch.zeros(phi.shape[: phi.ndim - dim], dtype=phi.dtype, device=phi.device)
    for mu in lattice_axes(dim):
        others = tuple(a for a in lattice_axes(dim) if a != mu)
        profile = phi.sum(dim=others) if others else phi  # the remaining lattice axis is last
        total = total + (profile @ cos) ** 2 + (profile @ sin) ** 2
    return total / (dim * size**dim)


def correlation_length_2nd(chi: float, f: float, size: int) -> float:
    """ξ_2nd = √((χ/F − 1)/(4 sin²(π/L))); NaN when χ/F ≤ 1 or F ≤ 0."""
    if not f > 0:
        return math.nan
    x = (chi / f - 1.0) / (4.0 * math.sin(math.pi / size) ** 2)
    return math.sqrt(x) if x > 0 else math.nan


def _layout(configs: Any, dim: int) -> tuple[int, int, int]:
    """(T, C, L) of configs shaped (T, C, L, ..., L) or (N, L, ..., L) (one chain)."""
    shape = tuple(configs.shape)
    if len(shape) not in (dim + 1, dim + 2) or len(set(shape[-dim:])) != 1:
        raise ValueError(f"configs must be (T, C, L^{dim}) or (N, L^{dim}), got {shape}")
    t_len, n_chains = (shape[0], shape[1]) if len(shape) == dim + 2 else (shape[0], 1)
    return t_len, n_chains, shape[-1]


def _batches(configs: Any, dim: int, device: torch.device | None) -> Any:
    """Yield float64 torch batches ``(bt, C, L^dim)`` along the time axis."""
    t_len, n_chains, size = _layout(configs, dim)
    step = max(1, _BATCH_SITES // (n_chains * size**dim))
    for t0 in range(0, t_len, step):
        chunk = configs[t0 : t0 + step]
        x = chunk if isinstance(chunk, Tensor) else torch.from_numpy(np.asarray(chunk))
        x = x.to(device=device or x.device, dtype=torch.float64)
        yield x.reshape(x.shape[0], n_chains, *([size] * dim))


@dataclass(frozen=True)
class Measurements:
    """Per-configuration primaries, each shaped (T, C): M, φ² density, S/V and F."""

    magnetization: np.ndarray
    phi2: np.ndarray
    action_density: np.ndarray
    min_momentum_power: np.ndarray
    volume: int
    size: int


def _hopping_density(x: Tensor, dim: int) -> Tensor:
    """(1/V) Σ_{x,μ} φ_x φ_{x+μ} with views instead of torch.roll (no full copies)."""
    axes = lattice_axes(dim)
    total = torch.zeros(x.shape[: x.ndim - dim], dtype=x.dtype, device=x.device)
    for mu in axes:
        size = x.shape[mu]
        inner = x.narrow(mu, 0, size - 1) * x.narrow(mu, 1, size - 1)
        wrap = x.narrow(mu, size - 1, 1) * x.narrow(mu, 0, 1)
        total = total + inner.sum(dim=axes) + wrap.sum(dim=axes)
    return total / math.prod(x.shape[x.ndim - dim :])


def _primaries(x: Tensor, dim: int, kappa: float, lam: float) -> tuple[Tensor, ...]:
    """(M, φ² density, S/V, F) per configuration; S/V = (1−2λ)⟨φ²⟩_V + λ⟨φ⁴⟩_V − 2κ hop/V
    equals :func:`action_density` (eq. 3) and is tested against it."""
    axes = lattice_axes(dim)
    q = x * x
    p2 = q.mean(dim=axes)
    p4 = q.square_().mean(dim=axes)
    s = (1 - 2 * lam) * p2 + lam * p4 - 2 * kappa * _hopping_density(x, dim)
    return magnetization(x, dim), p2, s, min_momentum_power(x, dim)


def measure(
    configs: Any, *, dim: int, kappa: float, lam: float, device: torch.device | None = None
) -> Measurements:
    """Measure the primaries of configs (T, C, L^dim) or (N, L^dim) batch by batch in torch.

    ``configs`` may be a torch tensor, a numpy array or anything sliceable along axis 0
    (e.g. an h5py dataset), so the ensemble need not fit in memory in float64.
    """
    _, _, size = _layout(configs, dim)
    parts: list[tuple[Tensor, ...]] = []
    with torch.no_grad():
        for x in _batches(configs, dim, device):
            parts.append(_primaries(x, dim, kappa, lam))
    m, p2, s, f = (torch.cat(p).cpu().numpy() for p in zip(*parts, strict=True))
    return Measurements(m, p2, s, f, size**dim, size)


def connected_two_point(
    configs: Any, *, dim: int, subtract: Subtraction = "abs", device: torch.device | None = None
) -> np.ndarray:
    """G_c(x) = ⟨C(x)⟩ − ⟨|M|⟩² ("abs"), − ⟨M⟩² ("signed") or unsubtracted ("none");
    shape (L, ..., L), averaged over all configurations and translations."""
    total, m_sum, am_sum, count = None, 0.0, 0.0, 0
    with torch.no_grad():
        for x in _batches(configs, dim, device):
            flat = x.reshape(-1, *x.shape[2:])
            c = two_point(flat, dim).sum(dim=0)
            total = c if total is None else total + c
            m = magnetization(flat, dim)
            m_sum, am_sum = m_sum + float(m.sum()), am_sum + float(m.abs().sum())
            count += flat.shape[0]
    assert total is not None
    g = total.cpu().numpy() / count
    shift = {"abs": (am_sum / count) ** 2, "signed": (m_sum / count) ** 2, "none": 0.0}
    return g - shift[subtract]


def _derived_quantities(volume: int, size: int) -> dict[str, Callable[..., float]]:
    """Functions of the means of (M, |M|, M², M⁴, φ², S/V, F) for every summary key."""
    return {
        "magnetization": lambda m, am, m2, m4, p2, s, f: m,
        "abs_magnetization": lambda m, am, m2, m4, p2, s, f: am,
        "phi2": lambda m, am, m2, m4, p2, s, f: p2,
        "susceptibility": lambda m, am, m2, m4, p2, s, f: volume * m2,
        "susceptibility_connected": lambda m, am, m2, m4, p2, s, f: volume * (m2 - am * am),
        "binder": lambda m, am, m2, m4, p2, s, f: 1.0 - m4 / (3.0 * m2 * m2),
        "action_density": lambda m, am, m2, m4, p2, s, f: s,
        "correlation_length": lambda m, am, m2, m4, p2, s, f: correlation_length_2nd(
            volume * m2, f, size
        ),
    }


_PRIMARY = {"magnetization": 0, "abs_magnetization": 1, "phi2": 4, "action_density": 5}


def summarize(
    configs: Any, *, dim: int, kappa: float, lam: float, log_weights: Any = None
) -> dict[str, Estimate]:
    """Observables with errors: Γ-method over (T, C) chains (C replicas), or, with
    ``log_weights`` (importance weights log p/q̃ of i.i.d. flow proposals, one per
    configuration), self-normalised reweighted estimates with i.i.d. errors (τ_int = 0.5).

    Keys: magnetization, abs_magnetization, phi2, susceptibility (V⟨M²⟩),
    susceptibility_connected (V(⟨M²⟩−⟨|M|⟩²)), binder, action_density, correlation_length.
    """
    return summarize_measurements(measure(configs, dim=dim, kappa=kappa, lam=lam), log_weights)


def summarize_measurements(meas: Measurements, log_weights: Any = None) -> dict[str, Estimate]:
    """:func:`summarize` from primaries already measured (no second pass over the configs)."""
    m = meas.magnetization
    prim = [m, np.abs(m), m * m, m**4, meas.phi2, meas.action_density, meas.min_momentum_power]
    funcs = _derived_quantities(meas.volume, meas.size)
    out: dict[str, Estimate] = {}
    if log_weights is not None:
        lw = as_float64(log_weights).reshape(-1)
        for key, f in funcs.items():
            r = reweighted_derived(f, prim, lw)
            out[key] = Estimate(r.mean, r.error, 0.5)
        return out
    for key, f in funcs.items():
        if key in _PRIMARY:
            res = gamma_method(prim[_PRIMARY[key]])
        else:
            res = gamma_method_derived(f, prim)
        out[key] = Estimate(res.mean, res.error, res.tau_int)
    return out
