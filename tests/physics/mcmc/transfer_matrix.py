"""Exact results of the d = 1 theory on the periodic chain by the transfer matrix.

T(φ, φ') = exp(−½V(φ) − ½V(φ') + 2κφφ'),  V(φ) = (1 − 2λ)φ² + λφ⁴ (eq. 3 at d = 1), so that
Z = ∫Πdφ Π_x T(φ_x, φ_{x+1}) = Tr T^L. On a trapezoid grid K_ij = √w_i T(φ_i, φ_j) √w_j and
⟨φ_0 φ_r⟩ = Tr(Φ K^r Φ K^{L−r}) / Tr K^L with Φ = diag(φ_i); χ = V⟨M²⟩ = Σ_r ⟨φ_0 φ_r⟩.
The grid's measure is in K (the trapezoid weights), so Z itself is Tr K^L = Σ_i k_i^L over
K's eigenvalues k_i: log Z = L log k_max + log Σ_i (k_i/k_max)^L (:func:`transfer_matrix_log_z`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Exact1D:
    G: np.ndarray  # ⟨φ_0 φ_r⟩ for r = 0..L/2
    chi: float


def _kernel(kappa: float, lam: float, n: int, cut: float) -> tuple[np.ndarray, np.ndarray]:
    """The grid φ_i and K_ij = √w_i T(φ_i, φ_j) √w_j (trapezoid weights w)."""
    phi = np.linspace(-cut, cut, n)
    w = np.full(n, phi[1] - phi[0])
    w[[0, -1]] *= 0.5
    v = (1 - 2 * lam) * phi**2 + lam * phi**4
    sw = np.sqrt(w) * np.exp(-0.5 * v)
    return phi, sw[:, None] * np.exp(2 * kappa * np.outer(phi, phi)) * sw[None, :]


def transfer_matrix_log_z(L: int, kappa: float, lam: float, n: int = 800,
                          cut: float = 6.0) -> float:
    """log Z = log Tr K^L of the periodic chain of L sites."""
    k = np.linalg.eigvalsh(_kernel(kappa, lam, n, cut)[1])
    top = float(np.abs(k).max())
    return L * float(np.log(top)) + float(np.log(np.sum((k / top) ** L)))


def transfer_matrix_exact(L: int, kappa: float, lam: float, n: int = 800,
                          cut: float = 6.0) -> Exact1D:
    phi, K = _kernel(kappa, lam, n, cut)
    evals, U = np.linalg.eigh(K)
    evals = evals / evals.max()  # Tr K^L is scale-free in the ratios below
    A = U.T @ (phi[:, None] * U)  # Φ in the eigenbasis
    z = np.sum(evals**L)
    G = np.array([np.sum(A**2 * np.outer(evals**r, evals ** (L - r))) / z for r in range(L)])
    return Exact1D(G=G[: L // 2 + 1], chi=float(G.sum()))
