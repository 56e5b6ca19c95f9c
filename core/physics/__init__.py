"""The physics library: φ⁴ on the lattice, exact samplers, super-resolving flows, their
training, flow + Metropolis sampling, Monte Carlo statistics and the file formats.

    lattice/   the action S (eq. 3), its force and coupling derivatives (35), observables
    mcmc/      exact Markov chains: HMC, the cluster algorithm; differentiable Langevin (37)
    flows/     the super-resolving flow: U, noise, the equivariant CNF (17)-(29), baseline
    training/  reverse KL (31)-(33), the log Z gradient (34)-(36), IR/UV-matching, growth
    exact/     flow + independence Metropolis (10): the exact fine ensemble
    stats/     Γ-method errors, τ_int, ESS/N (12), chain consistency
    io/        ensembles (HDF5) and flows (safetensors + JSON)

It imports neither job orchestration (core.jobs) nor the registry (core.registry);
``flows.config`` imports no torch (the API validates uploads with it).
"""
