"""The cost study's rows and how they are read (bench/cost_study.py measures them,
bench/cost_report.py prints and plots them): one Row per (method, line, L), the
amortisation labels, and the power-law fits.

    cost(O) = seconds × 2τ_int(O)/N,   O ∈ {|M|, χ = V M²}
    cost_N_tot(O) = (train_s + N_tot·seconds/N)·2τ_int(O)/N_tot   (flows, training amortised)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.cost_fit import PowerLaw

LINES = ("k0.25", "xi_L4")
TIMING_REL_ERROR = 0.05  # seconds on a shared CPU: added in quadrature to δτ/τ in the fits

AMORTISE = (10**4, 10**5, 10**6)  # N_tot over which a flow's training is amortised


@dataclass(frozen=True)
class Row:
    """One (method, line, L): ``n`` configurations in ``seconds`` (sampling only), τ_int ± δ
    of |M| and χ, ``train_s`` (flows), measured ``xi`` (direct samplers)."""

    method: str
    line: str
    L: int
    kappa: float
    n: int
    seconds: float
    tau_m: tuple[float, float]
    tau_chi: tuple[float, float]
    train_s: float = 0.0
    xi: float = math.nan
    chains: int = 1
    notes: str = ""

    def cost(self, obs: str = "chi", n_tot: int | None = None) -> float:
        tau = (self.tau_chi if obs == "chi" else self.tau_m)[0]
        per = self.seconds / self.n
        total = per if n_tot is None else (self.train_s + n_tot * per) / n_tot
        return total * 2 * tau

    def rel_error(self, obs: str = "chi") -> float:
        tau, dtau = self.tau_chi if obs == "chi" else self.tau_m
        return math.hypot(dtau / tau, TIMING_REL_ERROR)


def series(rows: list[Row], line: str) -> dict[str, list[Row]]:
    """Method label → rows by L; flow rows appear once per amortisation (label flow@N)."""
    out: dict[str, list[Row]] = {}
    for r in sorted(rows, key=lambda r: r.L):
        if r.line == line:
            out.setdefault(r.method, []).append(r)
    return out


def label_cost(label: str, r: Row, obs: str = "chi") -> float:
    n_tot = int(float(label.split("@")[1])) if "@" in label else None
    return r.cost(obs, n_tot)


def cost_labels(methods: list[str]) -> list[str]:
    return [m for m in methods if m != "flow"] + (
        ["flow", *(f"flow@{n:.0e}" for n in AMORTISE)] if "flow" in methods else [])


@dataclass(frozen=True)
class Fit:
    line: str
    label: str
    quantity: str  # "tau_m", "tau_chi", "cost_m", "cost_chi"
    sizes: list[int]
    law: PowerLaw

    def summary(self) -> dict[str, float | str | list[int]]:
        return {"line": self.line, "label": self.label, "quantity": self.quantity,
                "sizes": self.sizes, "exponent": self.law.a, "error": self.law.a_error,
                "chi2_dof": self.law.chi2_dof, "at_256": self.law.value(256.0),
                "at_256_rel_error": self.law.rel_error(256.0)}


