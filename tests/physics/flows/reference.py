"""Plain references the flow tests hold the library against: eq. (23) summed site by
site from its definition, the symmetry maps of the upsampled lattice, and log|det J| of a
stack by brute-force autograd Jacobians."""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from core.physics.flows.rg_flow import SuperResolvingFlow
from core.physics.flows.solver import SolverConfig
from core.physics.flows.upsample import from_blocks, to_blocks
from core.physics.flows.vector_field import LocalVectorField


def reflect(psi: Tensor, axis: int, c: int) -> Tensor:
    """(gΨ)_x = Ψ_{g⁻¹x} for the reflection x_μ → (c − x_μ) mod L along lattice ``axis``."""
    size = psi.shape[axis]
    index = (c - torch.arange(size)) % size
    return psi.index_select(axis, index)


def dense_local(field: LocalVectorField, t: float, psi: Tensor) -> Tensor:
    """Eq. (23) summed site by site from the definition s_μ = δ_μ(1 − 2p_μ), c = sorted(s)."""
    reps = field.class_reps
    coeff = field.coefficients(t)
    h = field.basis(psi)
    shape = psi.shape[1:]
    r = (field.kernel_size - 1) // 2
    window = [0, 1] if field.kernel_size == 2 else list(range(-r, r + 1))
    out = torch.zeros_like(psi)
    for x in itertools.product(*[range(n) for n in shape]):
        for s in itertools.product(window, repeat=len(shape)):
            delta = [s_mu * (1 - 2 * (x_mu % 2)) for s_mu, x_mu in zip(s, x, strict=True)]
            y = tuple((x_mu + d) % n for x_mu, d, n in zip(x, delta, shape, strict=True))
            c = reps.index(tuple(sorted(s)))
            out[(slice(None), *x)] += h[(slice(None), slice(None), *y)] @ coeff[c]
    return out


def block_symmetries_2d() -> dict[str, object]:
    return {
        "rot90": lambda p: torch.rot90(p, 1, dims=(1, 2)),
        "rot180": lambda p: torch.rot90(p, 2, dims=(1, 2)),
        "rot270": lambda p: torch.rot90(p, 3, dims=(1, 2)),
        "flip_x": lambda p: torch.flip(p, dims=(1,)),
        "flip_y": lambda p: torch.flip(p, dims=(2,)),
        "transpose": lambda p: p.transpose(1, 2),
        "block_centre_reflection": lambda p: reflect(p, 1, 1),
        "block_boundary_reflection": lambda p: reflect(p, 2, 3),
        "shift2_x": lambda p: torch.roll(p, 2, dims=1),
        "shift2_y": lambda p: torch.roll(p, -2, dims=2),
    }


def full_noise(free: torch.Tensor) -> torch.Tensor:
    """ζ' ``(B, L.., n−1)`` → fine ζ with the last entry −Σζ' (eq. 20), written independently."""
    return from_blocks(torch.cat([free, -free.sum(-1, keepdim=True)], dim=-1))


def brute_log_det(
    flow: SuperResolvingFlow, phi: torch.Tensor, noise: list[torch.Tensor], solver: SolverConfig
) -> float:
    """log|det ∂φ̃/∂(φ, ζ'_1, ..., ζ'_n)| by autograd (one configuration, N copies in a batch)."""
    free = [to_blocks(z)[..., :-1] for z in noise]
    shapes = [phi.shape[1:]] + [f.shape[1:] for f in free]
    sizes = [math.prod(s) for s in shapes]
    v = torch.cat([phi.reshape(-1)] + [f.reshape(-1) for f in free]).detach()
    n = v.numel()
    assert n == flow.fine_L**flow.dim  # the map is square
    rows = v.expand(n, n).clone().requires_grad_(True)
    parts = torch.split(rows, sizes, dim=1)
    zetas = [full_noise(p.reshape(n, *s)) for p, s in zip(parts[1:], shapes[1:], strict=True)]
    out = flow.push(parts[0].reshape(n, *shapes[0]), zetas, solver).phi.reshape(n, -1)
    (jac,) = torch.autograd.grad((out * torch.eye(n)).sum(), rows)
    return float(torch.linalg.slogdet(jac).logabsdet)
