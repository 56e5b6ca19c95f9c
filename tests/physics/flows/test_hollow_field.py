"""Hollow vector field (Chen & Duvenaud 2019) and the hollow/conditional stack: definition,
hollowness, exact divergence, symmetries, identity at init, exact log-density against
brute-force Jacobians, inversion, config ↔ tensors, save/load."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor

from core.physics.flows.architecture import FieldConfig, HollowConfig, LevelConfig
from core.physics.flows.config import FlowConfig, parameter_shapes
from core.physics.flows.hollow_field import HollowVectorField
from core.physics.flows.rg_flow import SuperResolvingFlow, build_flow
from core.physics.flows.solver import SolverConfig
from core.physics.flows.upsample import to_blocks, upsample
from core.physics.io.flow_files import load_flow, read_config, save_flow
from tests.physics.flows.reference import block_symmetries_2d, brute_log_det, dense_local, reflect

FINE = SolverConfig(method="dopri5", rtol=1e-12, atol=1e-12)
SMALL = dict(n_freq=4, n_time=3, bond_freq=3, bond_time=3)
FIELD_SMALL = dict(n_freq=4, n_time=3, bond_freq=3, bond_time=2)


def randomise(field: HollowVectorField, seed: int, scale: float = 0.3) -> HollowVectorField:
    """Non-zero W̃ and hollow weights (W^out, b) of a trained model's scale."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        field.weight_space.normal_(0.0, scale, generator=gen)
        for p in (field.hollow.weight_out, field.hollow.bias):
            p.normal_(0.0, scale, generator=gen)
        for p in (field.hollow.odd.omega, field.hollow.even_omega):
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return field


def dense_hollow(field: HollowVectorField, t: float, psi: Tensor) -> Tensor:
    """G_x = eq. (23) + Σ_k g_k(Ψ_x) h_k(x), h = W^out tanh(Σ_{s≠0} A_{c(s)}ᵀ e(Ψ_{x+δ}) + W^t K(t)
    + b), summed site by site from δ_μ = s_μ(1 − 2p_μ), c = sorted(s) without the centre."""
    net = field.hollow
    reps = [r for r in field.class_reps if any(r)]  # classes without the centre (0, ..., 0)
    shape, k = psi.shape[1:], field.kernel_size
    window = [0, 1] if k == 2 else list(range(-(k // 2), k // 2 + 1))
    x_ = psi.unsqueeze(-1)
    e = torch.cat([x_.square(), torch.cos(net.even_omega * x_)], dim=-1)
    g = torch.cat([x_, torch.sin(net.odd.omega * x_)], dim=-1)
    shift = net.weight_time @ field.time_kernel(t) + net.bias
    out = dense_local(field, t, psi)
    for x in itertools.product(*[range(n) for n in shape]):
        z = shift.expand(psi.shape[0], -1).clone()
        for s in itertools.product(window, repeat=len(shape)):
            if not any(s):
                continue
            delta = [s_mu * (1 - 2 * (x_mu % 2)) for s_mu, x_mu in zip(s, x, strict=True)]
            y = tuple((a + b) % n for a, b, n in zip(x, delta, shape, strict=True))
            z = z + e[(slice(None), *y)] @ net.weight_in[reps.index(tuple(sorted(s)))]
        h = torch.tanh(z) @ net.weight_out.T
        out[(slice(None), *x)] += (g[(slice(None), *x)] * h).sum(-1)
    return out


@pytest.mark.parametrize(("dim", "size", "k"), [(1, 6, 2), (1, 6, 3), (2, 4, 2), (2, 6, 3)])
def test_hollow_field_matches_site_by_site_definition(dim: int, size: int, k: int) -> None:
    field = randomise(HollowVectorField(FieldConfig(dim, k, **FIELD_SMALL), HollowConfig(3, 5)), 1)
    psi = torch.randn(2, *([size] * dim), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(
            field(0.37, psi), dense_hollow(field, 0.37, psi), rtol=0, atol=1e-13
        )


@pytest.mark.parametrize(("dim", "size", "k"), [(1, 6, 3), (2, 4, 2), (2, 6, 3)])
def test_h_at_x_never_sees_psi_x_but_sees_its_neighbourhood(dim: int, size: int, k: int) -> None:
    field = randomise(HollowVectorField(FieldConfig(dim, k, **FIELD_SMALL), HollowConfig(3, 5)), 3)
    psi = torch.randn(1, *([size] * dim), generator=torch.Generator().manual_seed(4))
    jac = torch.autograd.functional.jacobian(lambda v: field.hollow_output(0.3, v[None])[0], psi[0])
    v = psi[0].numel()
    jac = jac.reshape(3, v, v)  # (k, x, y) = ∂h_k(x)/∂Ψ_y
    assert not jac.diagonal(dim1=1, dim2=2).any()  # exactly zero: h at x is blind to Ψ_x
    r = 0 if k == 2 else k // 2
    sites = list(itertools.product(range(size), repeat=dim))
    for i, x in enumerate(sites):  # support = K(x)∖{x}: the block (k = 2) or the k^d window
        for j, y in enumerate(sites):
            if k == 2:
                inside = all(a // 2 == b // 2 for a, b in zip(x, y, strict=True))
            else:
                inside = all(
                    min((a - b) % size, (b - a) % size) <= r for a, b in zip(x, y, strict=True)
                )
            assert bool(jac[:, i, j].abs().max() > 1e-6) == (inside and i != j), (x, y)


FIELDS = {
    "k2_1d": (1, 2, (6,)),
    "k3_1d": (1, 3, (6,)),
    "k2_2d": (2, 2, (4, 4)),
    "k3_2d": (2, 3, (4, 4)),
    "k2_3d": (3, 2, (2, 2, 4)),
}


@pytest.mark.parametrize("name", FIELDS)
def test_divergence_is_trace_of_jacobian(name: str) -> None:
    dim, k, shape = FIELDS[name]
    field = randomise(HollowVectorField(FieldConfig(dim, k, **FIELD_SMALL), HollowConfig()), 5)
    psi = torch.randn(2, *shape, generator=torch.Generator().manual_seed(6))
    ev = field.velocity_and_divergence(0.71, psi)
    torch.testing.assert_close(ev.velocity, field(0.71, psi), rtol=0, atol=0)
    torch.testing.assert_close(ev.divergence, field.divergence(0.71, psi), rtol=0, atol=1e-13)
    hollow_part = ev.divergence - super(HollowVectorField, field).divergence(0.71, psi)
    for b in range(2):
        jac = torch.autograd.functional.jacobian(lambda v: field(0.71, v[None])[0], psi[b])
        trace = jac.reshape(psi[b].numel(), -1).diagonal().sum()
        # measured: ≤ 3.6e-15 with |∇·G| ~ 10-30
        assert abs(float((ev.divergence[b] - trace).detach())) < 1e-12
        assert abs(float(hollow_part[b].detach())) > 0.1  # the hollow term contributes


@pytest.mark.parametrize("k", [2, 3])
def test_block_equivariance_and_z2_2d(k: int) -> None:
    field = randomise(HollowVectorField(FieldConfig(2, k), HollowConfig()), 7)
    psi = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        out = field(0.29, psi)
        hollow = out - super(HollowVectorField, field).forward(0.29, psi)
        scale = float(hollow.abs().max())
        assert scale > 0.1
        for name, g in block_symmetries_2d().items():
            assert float((field(0.29, g(psi)) - g(out)).abs().max()) < 1e-13 * scale, name
        torch.testing.assert_close(field(0.29, -psi), -out, rtol=0, atol=0)
        # not symmetries: translation by one site, reflection about a site
        for g in (lambda p: torch.roll(p, 1, dims=1), lambda p: reflect(p, 1, 0)):
            assert float((field(0.29, g(psi)) - g(out)).abs().max()) > 1e-2 * scale


def test_block_equivariance_1d_and_3d() -> None:
    field = randomise(HollowVectorField(FieldConfig(1, 5), HollowConfig()), 9)
    psi = torch.randn(3, 10, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        out = field(0.8, psi)
        for g in [lambda p, c=c: reflect(p, 1, c) for c in (1, 3, 9)] + [
            lambda p: torch.roll(p, 2, dims=1)
        ]:
            assert float((field(0.8, g(psi)) - g(out)).abs().max()) < 1e-13
        field3 = randomise(HollowVectorField(FieldConfig(3, 2, n_freq=5), HollowConfig()), 11)
        psi3 = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(12))
        out3 = field3(0.5, psi3)
        for g in [
            lambda p: p.permute(0, 2, 3, 1),
            lambda p: torch.flip(p, dims=(3,)),
            lambda p: torch.roll(p, 2, dims=2),
        ]:
            assert float((field3(0.5, g(psi3)) - g(out3)).abs().max()) < 1e-13
        torch.testing.assert_close(field3(0.5, -psi3), -out3, rtol=0, atol=0)


def test_zero_at_initialisation_and_rebuild_from_config() -> None:
    field = HollowVectorField(FieldConfig(2, 3), HollowConfig(),
                              generator=torch.Generator().manual_seed(1))  # fmt: skip
    psi = torch.randn(2, 6, 6, generator=torch.Generator().manual_seed(2))
    ev = field.velocity_and_divergence(0.3, psi)
    assert not ev.velocity.any() and not ev.divergence.any()
    assert field.hollow.weight_in.abs().min() > 0  # only W^out is zero: h learns at step 1
    assert field.hollow_output(0.3, psi).shape == (2, 4, 6, 6)
    randomise(field, 3)
    rebuilt = HollowVectorField(field.config, field.hollow.config)
    rebuilt.load_state_dict(field.state_dict())
    torch.testing.assert_close(rebuilt(0.3, psi), field(0.3, psi), rtol=0, atol=0)


def hollow_stack(dim: int, coarse_L: int, fine_L: int) -> SuperResolvingFlow:
    """Hollow field + conditional base with every weight random and non-zero."""
    level = LevelConfig(FieldConfig(dim, 2, **SMALL), base="conditional", hollow=HollowConfig(3, 5))
    flow = SuperResolvingFlow.from_config(level, coarse_L, fine_L, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for level in flow.levels:
            randomise(level.cnf.field, int(torch.randint(100, (1,), generator=g)), 0.15)
            level.noise.log_sigma.fill_(math.log(0.5))
            level.noise.width_weight.copy_(torch.tensor([0.4, -0.3]))
            level.noise.mean_weight.fill_(0.7)
    return flow


def reference_log_p_noise(
    flow: SuperResolvingFlow, inputs: list[Tensor], noise: list[Tensor]
) -> float:
    """Σ_levels log N(ζ'_B; μ'_B, σ_B²(I − J/n)) by torch's MultivariateNormal, with σ_B and μ
    written from the definitions in core.physics.flows.conditional_noise (``inputs``: each
    level's φ)."""
    total, d = 0.0, flow.dim
    n = 2**d
    for level, x, zeta in zip(flow.level_list, inputs, noise, strict=True):
        nz = level.noise
        sq = x.square()
        nn_sq = sum(torch.roll(sq, s, dims=a) for a in range(1, d + 1) for s in (1, -1)) / (2 * d)
        a = nz.width_weight
        sigma = torch.exp(nz.log_sigma + a[0] * torch.log1p(sq) + a[1] * torch.log1p(nn_sq))
        grad = [
            (torch.roll(x, -1, dims=ax) - torch.roll(x, 1, dims=ax)) / 4 for ax in range(1, d + 1)
        ]
        offsets = itertools.product([0, 1], repeat=d)
        mean = torch.stack([sum((o[m] - 0.5) * grad[m] for m in range(d)) for o in offsets], dim=-1)
        cov = sigma[..., None, None] ** 2 * (torch.eye(n - 1) - 1.0 / n)
        mvn = torch.distributions.MultivariateNormal(nz.mean_weight * mean[..., :-1], cov)
        total += float(mvn.log_prob(to_blocks(zeta)[..., :-1]).sum())
    return total


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dim", "coarse_L", "fine_L"), [(1, 4, 8), (1, 2, 8), (2, 2, 4), (2, 2, 8)]
)
def test_log_q_rel_equals_bruteforce_jacobian(dim: int, coarse_L: int, fine_L: int) -> None:
    """Hollow field + conditional base, all weights non-zero: tracked log q_rel against
    log p(ζ'|φ) (MultivariateNormal) − log|det ∂φ̃/∂(φ, ζ')| (autograd, one dopri5 map)."""
    flow = hollow_stack(dim, coarse_L, fine_L)
    g = torch.Generator().manual_seed(3)
    phi = torch.randn(1, *([coarse_L] * dim), generator=g)
    inputs, noise, tracked, x = [], [], 0.0, phi
    with torch.no_grad():
        for level in flow.level_list:
            noise.append(level.noise.sample(x.shape, g, coarse=x).zeta)
            inputs.append(x)
            out = level.push(x, noise[-1], FINE)
            x, tracked = out.phi, tracked + float(out.log_q_rel)
        log_p_noise = reference_log_p_noise(flow, inputs, noise)
    brute = brute_log_det(flow, phi, noise, FINE)
    assert abs(brute) > 3.0  # far from the identity: log|det| matters
    # measured: 1.9e-12 (1D 4→8), 9e-12 (1D 2→8), 3.3e-11 (2D 2→4), 4.4e-11 (2D 2→8)
    assert abs(tracked - (log_p_noise - brute)) < 2e-10


def test_inverse_round_trip() -> None:
    """T†(T(φ, ζ)) = (φ, ζ) and the same log q, the conditional base reading U†(F⁻¹φ̃) on the
    way back; the round-trip error falls at the solver's fourth order."""
    flow = hollow_stack(1, 2, 8)
    phi = torch.randn(3, 2, generator=torch.Generator().manual_seed(5))
    errors = []
    for steps in (16, 32):
        solver = SolverConfig(method="rk4", steps=steps)
        with torch.no_grad():
            fwd = flow(phi, torch.Generator().manual_seed(6), solver)
            back = flow.inverse(fwd.phi, solver)
        noise = max(float((a - b).abs().max()) for a, b in zip(fwd.noise, back.noise, strict=True))
        lq = float((back.log_q_rel - fwd.log_q_rel).abs().max())
        errors.append((float((back.phi_coarse - phi).abs().max()), noise, lq))
    # measured (16/32 steps), |log q_rel| ≈ 8: φ 1.5e-7/4.8e-9, ζ 2.2e-7/7.3e-9, log q 3.1e-6/1.0e-7
    assert errors[1][0] < 5e-8 and errors[1][1] < 5e-8 and errors[1][2] < 5e-7
    assert all(a / b > 10 for a, b in zip(errors[0], errors[1], strict=True))


@pytest.mark.parametrize("dim", [1, 2])
def test_identity_at_initialisation(dim: int) -> None:
    level = LevelConfig(FieldConfig(dim, 2), base="conditional", hollow=HollowConfig())
    flow = SuperResolvingFlow.from_config(level, 2, 8, torch.Generator().manual_seed(0))
    phi = torch.randn(3, *([2] * dim), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = flow(phi, torch.Generator().manual_seed(2))
    assert torch.equal(out.phi, upsample(upsample(phi) + out.noise[0]) + out.noise[1])


CONFIG_BASE = dict(theory=dict(kappa=0.27, lam=0.02), dtype="float64", n_freq=4, n_time=3)


@pytest.mark.parametrize("field", ["paper", "hollow"])
@pytest.mark.parametrize("base", ["plain", "conditional"])
def test_parameter_shapes_match_built_models(field: str, base: str) -> None:
    extra = dict(hollow_channels=3, hollow_hidden=7) if field == "hollow" else {}
    for dim, k, coarse, fine in [(2, 2, 4, 16), (1, 3, 4, 16), (3, 2, 2, 4), (2, 5, 4, 8)]:
        config = FlowConfig(kind="super_resolving", dim=dim, coarse_L=coarse, fine_L=fine,
                            levels=int(math.log2(fine // coarse)), kernel_size=k, method="ir",
                            field=field, base=base, **extra, **CONFIG_BASE)  # fmt: skip
        model = build_flow(config)
        built = {f"flow.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
        couplings = {k: () for k in parameter_shapes(config) if k.startswith("couplings.")}
        assert parameter_shapes(config) == {**built, **couplings}


def test_config_refuses_hollow_or_conditional_baseline_and_stray_hollow_sizes() -> None:
    base = dict(kind="baseline", dim=2, fine_L=8, levels=0, method="baseline", **CONFIG_BASE)
    with pytest.raises(ValueError, match="field='hollow' is defined for super-resolving"):
        FlowConfig(field="hollow", **base)
    with pytest.raises(ValueError, match="base='conditional' is defined for super-resolving"):
        FlowConfig(base="conditional", **base)
    sr = dict(kind="super_resolving", dim=2, coarse_L=4, fine_L=8, levels=1, kernel_size=2,
              method="ir", **CONFIG_BASE)  # fmt: skip
    with pytest.raises(ValueError, match="hollow_channels and hollow_hidden apply to field='hol"):
        FlowConfig(hollow_channels=8, **sr)
    with pytest.raises(ValueError, match="field"):
        FlowConfig(field="fancy", **sr)
    cfg = FlowConfig(**sr)
    assert (cfg.field, cfg.base) == ("paper", "plain")


def test_save_load_bit_identical_and_old_configs_load_as_paper(tmp_path: Path) -> None:
    config = FlowConfig(kind="super_resolving", dim=2, coarse_L=2, fine_L=8, levels=2,
                        kernel_size=3, method="ir", field="hollow", base="conditional",
                        hollow_channels=3, hollow_hidden=6, solver=dict(steps=4),
                        **CONFIG_BASE)  # fmt: skip
    flow = build_flow(config)
    gen = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    couplings = {"coarse_kappa": 0.2, "coarse_lam": 0.02, "fine_kappa": 0.27, "fine_lam": 0.02}
    save_flow(tmp_path / "m", flow, config, couplings)
    loaded = load_flow(tmp_path / "m")
    assert loaded.config == config
    phi = torch.randn(4, 2, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = flow(phi, torch.Generator().manual_seed(2))
        b = loaded.flow(phi, torch.Generator().manual_seed(2))
        assert torch.equal(a.phi, b.phi) and torch.equal(a.log_q_rel, b.log_q_rel)
        assert torch.equal(flow.inverse(a.phi).log_q_rel, loaded.flow.inverse(a.phi).log_q_rel)
    # a config.json written before these keys existed reads as the paper's field and base
    data = json.loads((tmp_path / "m" / "config.json").read_text())
    for key in ("field", "base", "hollow_channels", "hollow_hidden"):
        del data[key]
    (tmp_path / "m" / "config.json").write_text(json.dumps(data))
    old = read_config(tmp_path / "m")
    assert (old.field, old.base, old.hollow_channels) == ("paper", "plain", 4)
    assert "flow.levels.0.noise.width_weight" not in parameter_shapes(old)
