"""Super-resolving levels and stacks: exact log-density against brute-force Jacobians,
invertibility, identity at initialisation, stack sizes, config ↔ model tensors."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from core.physics.flows.architecture import FieldConfig, LevelConfig
from core.physics.flows.config import FlowConfig, parameter_shapes
from core.physics.flows.rg_flow import SuperResolvingFlow, build_flow, log_det_embedding
from core.physics.flows.solver import SolverConfig
from core.physics.flows.upsample import upsample
from tests.physics.flows.reference import brute_log_det, full_noise

FINE = SolverConfig(method="dopri5", rtol=1e-12, atol=1e-12)
SMALL = dict(n_freq=4, n_time=3, bond_freq=3, bond_time=3)
SCALE = 0.3  # W̃ ~ N(0, 0.3²): log|det J_F| ≈ 5-6 nats on 8-16 sites, far from the identity


def random_stack(dim: int, coarse_L: int, fine_L: int, scale: float = SCALE) -> SuperResolvingFlow:
    level = LevelConfig(FieldConfig(dim, 2, **SMALL))
    flow = SuperResolvingFlow.from_config(level, coarse_L, fine_L, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for level in flow.levels:
            w = level.cnf.field.weight_space
            w.copy_(scale * torch.randn(w.shape, generator=g))
            level.noise.log_sigma.fill_(math.log(0.5))
    return flow


def draw(flow: SuperResolvingFlow, seed: int = 3) -> tuple[torch.Tensor, list[torch.Tensor], float]:
    g = torch.Generator().manual_seed(seed)
    phi = torch.randn(1, *([flow.coarse_L] * flow.dim), generator=g)
    noise = flow(phi, g).noise
    log_p_noise = sum(
        float(level.noise.log_prob(z).detach()) for level, z in zip(flow.levels, noise, strict=True)
    )
    return phi, [z.detach() for z in noise], log_p_noise


@pytest.mark.parametrize(("dim", "coarse_L", "fine_L"), [(1, 2, 8), (2, 2, 4)])
def test_log_q_rel_equals_bruteforce_jacobian(dim: int, coarse_L: int, fine_L: int) -> None:
    flow = random_stack(dim, coarse_L, fine_L)
    phi, noise, log_p_noise = draw(flow)
    with torch.no_grad():
        tracked = float(flow.push(phi, noise, FINE).log_q_rel)
    brute = brute_log_det(flow, phi, noise, FINE)
    assert abs(log_p_noise - brute) > 3.0  # far from the identity: log|det| matters
    # measured: 4.0e-12 (1D, log|det| 6.3), 1.4e-13 (2D, log|det| 13.9)
    assert abs(tracked - (log_p_noise - brute)) < 1e-8


def test_rk4_integrated_divergence_gap_falls_at_fourth_order() -> None:
    """DESIGN §4: tracked log q vs the discrete RK4 map's true Jacobian, steps 8 → 16 → 32."""
    flow = random_stack(2, 2, 4)
    phi, noise, log_p_noise = draw(flow)
    gaps = []
    for steps in (8, 16, 32):
        solver = SolverConfig(method="rk4", steps=steps)
        with torch.no_grad():
            tracked = float(flow.push(phi, noise, solver).log_q_rel)
        gaps.append(abs(tracked - (log_p_noise - brute_log_det(flow, phi, noise, solver))))
    # measured: 1.6e-3, 1.1e-4, 7.3e-6 (ratios 14, 16; order 4 → 16)
    assert gaps[0] < 5e-3
    assert gaps[0] / gaps[1] > 10 and gaps[1] / gaps[2] > 10


def test_embedding_determinant_is_n_per_block() -> None:
    """|det E| for (φ, ζ') ↦ U(φ) + V(ζ') by building E column by column (d = 2, L = 2)."""
    coarse_shape, n_free = (1, 2, 2), 3
    cols = []
    for i in range(4):
        e = torch.zeros(4)
        e[i] = 1.0
        cols.append(upsample(e.reshape(coarse_shape)).reshape(-1))
    for i in range(4 * n_free):
        e = torch.zeros(4 * n_free)
        e[i] = 1.0
        cols.append(full_noise(e.reshape(1, 2, 2, n_free)).reshape(-1))
    logdet = float(torch.linalg.slogdet(torch.stack(cols, dim=1)).logabsdet)
    assert math.isclose(logdet, 4 * math.log(4), abs_tol=1e-12)
    assert math.isclose(log_det_embedding(torch.zeros(coarse_shape)), logdet, abs_tol=1e-12)


def test_inverse_recovers_coarse_noise_and_log_q() -> None:
    flow = random_stack(2, 2, 8)
    g = torch.Generator().manual_seed(5)
    phi = torch.randn(4, 2, 2, generator=g)
    errors = []
    with torch.no_grad():
        for steps in (8, 16, 32):
            solver = SolverConfig(method="rk4", steps=steps)
            fwd = flow(phi, torch.Generator().manual_seed(6), solver)
            back = flow.inverse(fwd.phi, solver)
            noise_err = max(
                float((a - b).abs().max()) for a, b in zip(fwd.noise, back.noise, strict=True)
            )
            errors.append(
                (
                    float((back.phi_coarse - phi).abs().max()),
                    noise_err,
                    float((back.log_q_rel - fwd.log_q_rel).abs().max()),
                )
            )
    # measured (8/16/32 steps), log|det J_F| ≈ 19 nats on the 4×4 level alone:
    # φ 2.3e-3/7.5e-5/2.4e-6, ζ 4.3e-3/1.4e-4/4.4e-6, log q 9.4e-3/3.0e-4/9.4e-6 (ratio ≈ 30)
    for k in range(3):
        assert errors[0][k] < 2e-2
        assert errors[0][k] / errors[1][k] > 10 and errors[1][k] / errors[2][k] > 10
    with torch.no_grad():  # an error-controlled solve inverts to well below 1e-6
        solver = SolverConfig(method="dopri5", rtol=1e-10, atol=1e-10)
        fwd = flow(phi, torch.Generator().manual_seed(6), solver)
        back = flow.inverse(fwd.phi, solver)
    assert float((back.phi_coarse - phi).abs().max()) < 1e-7
    assert float((back.log_q_rel - fwd.log_q_rel).abs().max()) < 1e-6


@pytest.mark.parametrize("dim", [1, 2])
def test_identity_at_initialisation(dim: int) -> None:
    level = LevelConfig(FieldConfig(dim, 2))
    flow = SuperResolvingFlow.from_config(level, 4, 16, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    phi = torch.randn(3, *([4] * dim), generator=g)
    sigmas = flow.init_sigma(phi, g)
    assert math.isclose(sigmas[0], float(phi.std()), rel_tol=1e-12)
    assert sigmas[1] > sigmas[0]  # the output of level 1 spreads more than its input
    with torch.no_grad():
        out = flow(phi, g)
        expected = upsample(upsample(phi) + out.noise[0]) + out.noise[1]
        assert torch.equal(out.phi, expected)
        constant = sum(log_det_embedding(torch.zeros(1, *([s] * dim))) for s in (4, 8))
        log_p = sum(lv.noise.log_prob(z) for lv, z in zip(flow.levels, out.noise, strict=True))
        assert torch.allclose(out.log_q_rel, log_p - constant, atol=1e-10, rtol=0)


@pytest.mark.parametrize(("coarse_L", "fine_L"), [(4, 24), (4, 4), (4, 2), (3, 8)])
def test_stack_refuses_sizes_not_coarse_times_power_of_two(coarse_L: int, fine_L: int) -> None:
    with pytest.raises(ValueError, match=rf"L={fine_L} is not {coarse_L}·2\^n"):
        SuperResolvingFlow.from_config(LevelConfig(FieldConfig(2, 2)), coarse_L, fine_L)


def test_level_access_truncate_extend_from_levels() -> None:
    flow = random_stack(1, 2, 8)
    g = torch.Generator().manual_seed(7)
    phi = torch.randn(2, 2, generator=g)
    with torch.no_grad():
        full = flow(phi, torch.Generator().manual_seed(8))
        first = flow.truncated(1)(phi, torch.Generator().manual_seed(8))
        assert first.phi.shape == (2, 4) and flow.truncated(1).fine_L == 4
        assert torch.equal(first.noise[0], full.noise[0])
        longer = flow.extended(1)
        assert longer.fine_L == 16 and len(longer.levels) == 3
        assert longer.levels[2] is not longer.levels[1]
        w_new, w_old = (
            longer.levels[2].cnf.field.weight_space,
            flow.levels[1].cnf.field.weight_space,
        )
        assert torch.equal(w_new, w_old)
        out = longer(phi, torch.Generator().manual_seed(8))
        assert torch.equal(out.noise[1], full.noise[1]) and out.phi.shape == (2, 16)
    again = SuperResolvingFlow(flow.level_list, coarse_L=2)
    assert again.levels[0] is flow.levels[0] and again.fine_L == 8


def test_stack_and_level_refuse_what_they_cannot_build() -> None:
    with pytest.raises(ValueError, match="at least one level"):
        SuperResolvingFlow([], coarse_L=2)
    one_d = SuperResolvingFlow.from_config(LevelConfig(FieldConfig(1, 2)), 2, 4).level_list
    two_d = SuperResolvingFlow.from_config(LevelConfig(FieldConfig(2, 2)), 2, 4).level_list
    with pytest.raises(ValueError, match="1-dimensional"):
        SuperResolvingFlow([*one_d, *two_d], coarse_L=2)
    with pytest.raises(ValueError, match="local kernel"):
        LevelConfig(FieldConfig(2, None))
    with pytest.raises(ValueError, match="base='fancy'"):
        LevelConfig(FieldConfig(2, 2), base="fancy")  # type: ignore[arg-type]


def test_parameter_shapes_match_built_models() -> None:
    base = dict(theory=dict(kappa=0.27, lam=0.02), dtype="float64")
    configs = [
        FlowConfig(kind="super_resolving", dim=2, coarse_L=4, fine_L=32, levels=3,
                   kernel_size=2, method="ir", **base),
        FlowConfig(kind="super_resolving", dim=1, coarse_L=4, fine_L=16, levels=2,
                   kernel_size=3, method="uv", **base),
        FlowConfig(kind="baseline", dim=2, fine_L=8, levels=0, n_freq=30, method="baseline",
                   **base),
    ]  # fmt: skip
    for config in configs:
        model = build_flow(config)
        built = {f"flow.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
        couplings = {k: () for k in parameter_shapes(config) if k.startswith("couplings.")}
        assert len(couplings) == 4
        assert parameter_shapes(config) == {**built, **couplings}
        assert all(v.dtype == torch.float64 for v in model.state_dict().values())


def test_config_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="L=24 is not 4·2"):
        FlowConfig(kind="super_resolving", dim=2, coarse_L=4, fine_L=24, levels=2,
                   kernel_size=2, method="ir", theory=dict(kappa=0.2, lam=0.0))  # fmt: skip
    with pytest.raises(ValueError, match="levels=2"):
        FlowConfig(kind="super_resolving", dim=2, coarse_L=4, fine_L=32, levels=2,
                   kernel_size=2, method="ir", theory=dict(kappa=0.2, lam=0.0))  # fmt: skip
    with pytest.raises(ValueError, match="extra"):
        FlowConfig(kind="baseline", dim=2, fine_L=8, levels=0, method="baseline",
                   theory=dict(kappa=0.2, lam=0.0), surprise=1)  # fmt: skip


def test_config_modules_import_no_torch() -> None:
    modules = ", ".join(f"core.physics.flows.{m}" for m in ("config", "solver", "architecture"))
    code = f"import sys, {modules}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cuda_forward_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    flow = random_stack(2, 2, 8)
    phi = torch.randn(4, 2, 2, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator(device="cuda").manual_seed(3)
    with torch.no_grad():
        gpu = flow.to("cuda")(phi.cuda(), gen)
        cpu = flow.to("cpu").push(phi, [z.cpu() for z in gpu.noise])
    assert torch.allclose(gpu.phi.cpu(), cpu.phi, atol=1e-10)
    assert torch.allclose(gpu.log_q_rel.cpu(), cpu.log_q_rel, atol=1e-9)
