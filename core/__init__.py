"""srflow core: the library under the service, in three parts that import downwards only.

    physics/   the physics library: lattice, MCMC, flows, training, exact sampling, stats, io
    jobs/      job orchestration: specs, budgets, run_job, scans, reports
    registry/  models, ensembles, jobs, users and groups (SQLAlchemy; no torch)

beside ``settings`` (the service's one settings object) and ``client`` (the HTTP client:
httpx + pydantic only). Nothing here imports ``app``, ``worker`` or ``cli``; the registry,
the specs and the client import no torch, so the API process and a client-only install
stay light.
"""

__version__ = "0.1.0"
