"""Vector fields of eqs. (23)-(25): definition, symmetries, exact divergence, identity init."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import Tensor

from core.physics.flows.architecture import FieldConfig
from core.physics.flows.time_basis import OddSineBasis, TimeKernel
from core.physics.flows.vector_field import (
    BaselineVectorField,
    LocalVectorField,
    VectorField,
    full_lattice_classes,
    local_classes,
    roll_contract,
)
from tests.physics.flows.reference import block_symmetries_2d, dense_local, reflect

SMALL = dict(n_freq=4, n_time=3, bond_freq=3, bond_time=2)


def randomise(field: VectorField, seed: int, scale: float = 0.3) -> VectorField:
    """Non-zero W̃ of a trained model's scale and jittered frequencies."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        field.weight_space.normal_(0.0, scale, generator=gen)
        field.basis.omega.add_(0.2 * torch.randn(field.basis.omega.shape, generator=gen))
    return field


def test_time_kernel_modes() -> None:
    kern = TimeKernel(6, t0=0.0, t1=2.0)
    s = 0.3 / 2.0
    want = [1.0, math.sin(2 * math.pi * s), math.cos(2 * math.pi * s)]
    want += [math.sin(4 * math.pi * s), math.cos(4 * math.pi * s), math.sin(6 * math.pi * s)]
    torch.testing.assert_close(kern(0.3), torch.tensor(want), rtol=0, atol=1e-15)
    torch.testing.assert_close(kern(torch.tensor(0.0)), torch.tensor([1.0, 0, 1, 0, 1, 0]))
    assert TimeKernel(1)(0.7).tolist() == [1.0]


def test_basis_is_odd_with_exact_derivative() -> None:
    basis = OddSineBasis(5)
    assert basis.omega.tolist() == [0.5, 1.0, 1.5, 2.0]
    psi = torch.randn(2, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    h = basis(psi)
    assert h.shape == (2, 5, 3)
    torch.testing.assert_close(basis(-psi), -h, rtol=0, atol=0)
    grads = [torch.autograd.grad(h[:, f].sum(), psi, retain_graph=True)[0] for f in range(5)]
    torch.testing.assert_close(basis.derivative(psi), torch.stack(grads, dim=1))


@pytest.mark.parametrize(
    ("dim", "k", "n"),
    [(1, 2, 2), (2, 2, 3), (3, 2, 4), (1, 3, 3), (2, 3, 6), (2, 5, 15), (2, 7, 28)],
)
def test_local_class_counts(dim: int, k: int, n: int) -> None:
    reps, classes = local_classes(dim, k)
    assert len(reps) == n
    assert len(classes) == (2 if k == 2 else k) ** dim


@pytest.mark.parametrize(("dim", "size", "n"), [(1, 6, 4), (2, 4, 6), (2, 32, 153), (3, 4, 10)])
def test_full_lattice_class_counts(dim: int, size: int, n: int) -> None:
    count, index = full_lattice_classes(dim, size)
    assert count == n and index.shape == (size,) * dim and int(index.max()) == n - 1


def dense_baseline(field: BaselineVectorField, t: float, psi: Tensor) -> Tensor:
    """Eq. (23) with c(δ) = sorted(min(δ_μ, L − δ_μ)) over all offsets, site by site."""
    coeff = field.coefficients(t)
    h = field.basis(psi)
    size, dim = field.size, field.dim
    reps = sorted({tuple(sorted(min(v, size - v) for v in d)) for d in
                   itertools.product(range(size), repeat=dim)})  # fmt: skip
    out = torch.zeros_like(psi)
    for x in itertools.product(range(size), repeat=dim):
        for delta in itertools.product(range(size), repeat=dim):
            y = tuple((a + b) % size for a, b in zip(x, delta, strict=True))
            c = reps.index(tuple(sorted(min(v, size - v) for v in delta)))
            out[(slice(None), *x)] += h[(slice(None), slice(None), *y)] @ coeff[c]
    return out


@pytest.mark.parametrize(
    ("dim", "size", "k"),
    [(1, 6, 2), (1, 6, 3), (2, 4, 2), (2, 6, 3), (2, 6, 5), (2, 8, 7), (3, 4, 2), (3, 4, 3)],
)
def test_local_field_matches_site_by_site_definition(dim: int, size: int, k: int) -> None:
    field = randomise(LocalVectorField(FieldConfig(dim, k, **SMALL)), 1)
    psi = torch.randn(2, *([size] * dim), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(field(0.37, psi), dense_local(field, 0.37, psi), rtol=0, atol=1e-13)


def test_block_convolution_equals_explicit_shifts_on_every_shape() -> None:
    """One field, several (also non-square) lattices: the convolution is the roll sum."""
    field = randomise(LocalVectorField(FieldConfig(2, 5, **SMALL)), 5)
    gen = torch.Generator().manual_seed(6)
    for shape in [(8, 8), (16, 8), (8, 8), (12, 20)]:
        psi = torch.randn(3, *shape, generator=gen)
        coeff = field.coefficients(0.41)
        u = torch.einsum("bf...,cf->bc...", field.basis(psi), coeff)
        expected = roll_contract(u, field.offsets, field.offset_class)
        torch.testing.assert_close(field(0.41, psi), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize(("dim", "size"), [(1, 6), (2, 4), (1, 5)])
def test_baseline_fft_matches_site_by_site_definition(dim: int, size: int) -> None:
    config = FieldConfig(dim, None, n_freq=4, n_time=3, bond_freq=3)
    field = randomise(BaselineVectorField(config, size), 3)
    psi = torch.randn(2, *([size] * dim), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(
        field(0.61, psi), dense_baseline(field, 0.61, psi), rtol=0, atol=1e-13
    )


def max_violation(field: VectorField, g, psi: Tensor, t: float = 0.29) -> float:
    return float((field(t, g(psi)) - g(field(t, psi))).detach().abs().max())


@pytest.mark.parametrize("k", [2, 3, 7])
def test_local_field_block_equivariance_2d(k: int) -> None:
    field = randomise(LocalVectorField(FieldConfig(2, k)), 5)
    psi = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(6))
    scale = float(field(0.29, psi).detach().abs().max())
    assert scale > 0.1
    for name, g in block_symmetries_2d().items():
        assert max_violation(field, g, psi) < 1e-13 * scale, name
    torch.testing.assert_close(field(0.29, -psi), -field(0.29, psi), rtol=0, atol=0)
    # sensitivity: translation by one site and a reflection about a site are not symmetries
    assert max_violation(field, lambda p: torch.roll(p, 1, dims=1), psi) > 1e-2 * scale
    assert max_violation(field, lambda p: reflect(p, 1, 0), psi) > 1e-2 * scale


@pytest.mark.parametrize("k", [2, 3, 5])
def test_local_field_block_equivariance_1d(k: int) -> None:
    field = randomise(LocalVectorField(FieldConfig(1, k)), 7)
    psi = torch.randn(3, 10, generator=torch.Generator().manual_seed(8))
    scale = float(field(0.8, psi).detach().abs().max())
    for c in (1, 3, 9):
        assert max_violation(field, lambda p, c=c: reflect(p, 1, c), psi) < 1e-13 * scale
    assert max_violation(field, lambda p: torch.roll(p, 2, dims=1), psi) < 1e-13 * scale
    assert max_violation(field, lambda p: torch.roll(p, 1, dims=1), psi) > 1e-2 * scale


def test_local_field_block_equivariance_3d() -> None:
    field = randomise(LocalVectorField(FieldConfig(3, 2, n_freq=5)), 9)
    psi = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(10))
    scale = float(field(0.5, psi).detach().abs().max())
    for g in [
        lambda p: p.permute(0, 2, 3, 1),
        lambda p: torch.flip(p, dims=(3,)),
        lambda p: torch.rot90(p, 1, dims=(1, 3)),
        lambda p: torch.roll(p, 2, dims=2),
    ]:
        assert max_violation(field, g, psi) < 1e-13 * scale
    assert max_violation(field, lambda p: torch.roll(p, 1, dims=3), psi) > 1e-2 * scale


def test_baseline_field_full_equivariance() -> None:
    field = randomise(BaselineVectorField(FieldConfig.paper_baseline(2), 6), 11)
    psi = torch.randn(3, 6, 6, generator=torch.Generator().manual_seed(12))
    scale = float(field(0.4, psi).detach().abs().max())
    symmetries = [*block_symmetries_2d().values()]
    symmetries += [lambda p: torch.roll(p, 1, dims=1), lambda p: torch.roll(p, -1, dims=2)]
    symmetries += [lambda p: reflect(p, 1, 0), lambda p: reflect(p, 2, 5)]
    for g in symmetries:
        assert max_violation(field, g, psi, 0.4) < 1e-13 * scale
    torch.testing.assert_close(field(0.4, -psi), -field(0.4, psi), rtol=0, atol=1e-15)


FIELDS = {
    "local_k2_2d": lambda: LocalVectorField(FieldConfig(2, 2)),
    "local_k3_2d": lambda: LocalVectorField(FieldConfig(2, 3)),
    "local_k3_1d": lambda: LocalVectorField(FieldConfig(1, 3)),
    "local_k7_2d_L8": lambda: LocalVectorField(FieldConfig(2, 7)),  # the d = 2 default from 8×8
    "baseline_2d": lambda: BaselineVectorField(FieldConfig.paper_baseline(2), 4),
}


def _shape(name: str) -> tuple[int, ...]:
    return (4,) if name.endswith("1d") else (8, 8) if name.endswith("L8") else (4, 4)


@pytest.mark.parametrize("name", FIELDS)
def test_divergence_is_trace_of_jacobian(name: str) -> None:
    field = randomise(FIELDS[name](), 13)
    psi = torch.randn(2, *_shape(name), generator=torch.Generator().manual_seed(14))
    ev = field.velocity_and_divergence(0.71, psi)
    torch.testing.assert_close(ev.velocity, field(0.71, psi), rtol=0, atol=0)
    torch.testing.assert_close(ev.divergence, field.divergence(0.71, psi), rtol=0, atol=0)
    for b in range(2):
        jac = torch.autograd.functional.jacobian(lambda v: field(0.71, v[None])[0], psi[b])
        trace = jac.reshape(psi[b].numel(), -1).diagonal().sum()
        torch.testing.assert_close(ev.divergence[b], trace, rtol=1e-13, atol=1e-13)
        assert abs(float(trace)) > 1e-2


@pytest.mark.parametrize("name", FIELDS)
def test_zero_spatial_weights_give_zero_field(name: str) -> None:
    field = FIELDS[name]()
    assert not field.weight_space.any()
    assert field.weight_time.abs().min() > 0 and field.weight_basis.abs().min() > 0
    psi = torch.randn(2, *_shape(name), generator=torch.Generator().manual_seed(15))
    ev = field.velocity_and_divergence(0.3, psi)
    assert not ev.velocity.any() and not ev.divergence.any()


def test_parameters_and_rebuild_from_config() -> None:
    field = LocalVectorField(FieldConfig(2, 3), generator=torch.Generator().manual_seed(1))
    shapes = {k: tuple(v.shape) for k, v in field.state_dict().items()}
    assert shapes == {  # the stored names of model.safetensors (F = 11, D = 10, F' = D' = 20)
        "weight_space": (6, 20, 20),
        "weight_time": (20, 10),
        "weight_basis": (20, 11),
        "basis.omega": (10,),
    }
    randomise(field, 3)
    rebuilt = LocalVectorField(field.config)
    rebuilt.load_state_dict(field.state_dict())
    psi = torch.randn(2, 6, 6, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(rebuilt(0.3, psi), field(0.3, psi), rtol=0, atol=0)
    base = BaselineVectorField(FieldConfig.paper_baseline(2), 8)
    assert BaselineVectorField(base.config, base.size).weight_space.shape == (15, 20, 20)
    assert base.weight_basis.shape == (20, 30)


def test_field_config_names_every_size_once() -> None:
    """F, D, F', D' reach the tensors under the names config.json stores."""
    config = FieldConfig(2, 2, n_freq=5, n_time=4, bond_freq=3, bond_time=6, omega_max=1.5)
    field = LocalVectorField(config)
    assert field.weight_space.shape == (3, config.bond_time, config.bond_freq)
    assert field.weight_time.shape == (config.bond_time, config.n_time)
    assert field.weight_basis.shape == (config.bond_freq, config.n_freq)
    assert field.basis.n_freq == config.n_freq and field.time_kernel.n_time == config.n_time
    assert float(field.basis.omega.detach().max()) == 1.5


def test_bad_configs_and_lattices_are_rejected() -> None:
    with pytest.raises(ValueError, match="kernel_size"):
        FieldConfig(2, 4)
    for bad in (dict(n_freq=0), dict(n_time=0), dict(bond_freq=0), dict(bond_time=0)):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} .* must be >= 1"):
            FieldConfig(2, 3, **bad)
    with pytest.raises(ValueError, match="interval"):
        FieldConfig(2, 3, t0=1.0, t1=1.0)
    with pytest.raises(ValueError, match="local field needs kernel_size"):
        LocalVectorField(FieldConfig(2, None))
    with pytest.raises(ValueError, match="spans the lattice"):
        BaselineVectorField(FieldConfig(2, 3), 4)
    with pytest.raises(ValueError, match="even"):
        LocalVectorField(FieldConfig(1, 2))(0.0, torch.zeros(1, 5))
    with pytest.raises(ValueError, match="kernel size"):
        LocalVectorField(FieldConfig(1, 5))(0.0, torch.zeros(1, 4))
    with pytest.raises(ValueError, match="expected"):
        BaselineVectorField(FieldConfig.paper_baseline(2), 4)(0.0, torch.zeros(1, 6, 6))
