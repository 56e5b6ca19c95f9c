"""The cost study's output (bench/cost_study.py): the table, the fits and crossovers, and the
figure — seconds per independent χ against L, log-log, one panel per line, measured points
with their errors and the fitted power laws drawn to L = 256 (solid over the measured sizes,
dotted beyond)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.cost_rows import AMORTISE, LINES, Fit, Row, cost_labels, label_cost, series

STYLE = {"HMC": ("C0", "o"), "cluster": ("C1", "^"), "flow": ("C2", "s"),
         "flow@1e+04": ("C3", "v"), "flow@1e+05": ("C4", "D"), "flow@1e+06": ("C5", "P")}
TITLE = {"k0.25": "κ = 0.25, λ = 0.01", "xi_L4": "ξ_2nd ≈ L/4, λ = 0.01"}


def print_table(rows: list[Row], header: bool = True) -> None:
    amort = "".join(f" {'χ@' + f'{n:.0e}':>9}" for n in AMORTISE)
    if header:
        print(f"{'line':<7} {'method':<8} {'L':>3} {'κ':>7} {'ξ_2nd':>6} {'N':>8} {'s/conf':>8} "
              f"{'τ|M|':>11} {'τχ':>11} {'s/ind|M|':>9} {'s/ind χ':>9}{amort} {'train':>7}  notes")
    for r in rows:
        am = "".join(f" {r.cost('chi', n):>9.2e}" for n in AMORTISE)
        print(f"{r.line:<7} {r.method:<8} {r.L:>3} {r.kappa:>7.4f} {r.xi:>6.2f} {r.n:>8} "
              f"{r.seconds / r.n:>8.2e} {r.tau_m[0]:>6.1f}±{r.tau_m[1]:<4.1f} "
              f"{r.tau_chi[0]:>6.1f}±{r.tau_chi[1]:<4.1f} {r.cost('m'):>9.2e} "
              f"{r.cost('chi'):>9.2e}{am} {r.train_s:>7.0f}  {r.notes}", flush=True)


def print_fits(fits: list[Fit], cross: list[dict[str, object]]) -> None:
    print("\nfits y ∝ L^a (log-log weighted least squares; error scaled by √(χ²/dof) if > 1)")
    for f in fits:
        s = f.summary()
        print(f"{f.line:<7} {f.label:<10} {f.quantity:<9} L={f.sizes}  a = {f.law.a:6.2f} ± "
              f"{f.law.a_error:.2f}  χ²/dof {f.law.chi2_dof:5.2f}  at L=256: "
              f"{s['at_256']:.3g} (±{100 * f.law.rel_error(256.0):.0f} %)")
    print("\ncrossovers of cost(χ) for 8 ≤ L ≤ 256")
    for c in cross:
        x = c["crossover"]
        pair = " / ".join(c["pair"])  # type: ignore[arg-type]
        if x is None:
            print(f"{c['line']:<7} {pair:<22} none")
        else:
            assert isinstance(x, dict)
            vague = " (not resolved: error > L*/2)" if x["L_error"] > x["L"] / 2 else ""
            print(f"{c['line']:<7} {pair:<22} L* = {x['L']:.0f} ± {x['L_error']:.0f}: "
                  f"{x['cheaper_below']} cheaper below, {x['cheaper_above']} above{vague}")


def plot_study(rows: list[Row], fits: list[Fit], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, line in zip(axes, LINES, strict=True):
        by = series(rows, line)
        for label in cost_labels(list(by)):
            sel = by[label.split("@")[0]]
            color, marker = STYLE.get(label, ("k", "x"))
            Ls = np.array([r.L for r in sel], dtype=float)
            y = np.array([label_cost(label, r) for r in sel])
            err = y * np.array([r.rel_error() for r in sel])
            name = "flow (sampling only)" if label == "flow" else label.replace(
                "flow@", "flow, training over ")
            ax.errorbar(Ls, y, yerr=err, fmt=marker, color=color, label=name, ms=5)
            fit = next((f for f in fits if f.line == line and f.label == label
                        and f.quantity == "cost_chi"), None)
            if fit is not None:
                inside = np.geomspace(Ls.min(), Ls.max(), 20)
                beyond = np.geomspace(Ls.max(), 256.0, 20)
                ax.plot(inside, [fit.law.value(x) for x in inside], "-", color=color, lw=1)
                ax.plot(beyond, [fit.law.value(x) for x in beyond], ":", color=color, lw=1)
        ax.set(xscale="log", yscale="log", xlabel="L", title=TITLE[line])
        ax.set_xticks([8, 16, 32, 64, 128, 256], ["8", "16", "32", "64", "128", "256"])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("CPU seconds per independent χ (fits dotted beyond the data)")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
