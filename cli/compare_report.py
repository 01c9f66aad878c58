"""The comparison's report: one table of arms (means and 95 % intervals over seeds), the
routing field's summary figures, the paper's claims beside ours, and the plots."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from cli.arms import BY_NAME
from cli.evidence import Interval, RunFigures, interval
from cli.frontier import apgr, cost_at_quality, pgr

Figure = Callable[[RunFigures], float | None]

COLUMNS: tuple[tuple[str, Figure], ...] = (
    ("accuracy", lambda r: r.accuracy),
    ("escalation rate", lambda r: r.escalation),
    ("serving cost/query", lambda r: r.serving),
    ("training cost/query", lambda r: r.training),
    ("all-in cost/query", lambda r: r.all_in),
    ("gap mass (final)", lambda r: r.gap_mass_final),
    ("confidence variance", lambda r: r.conf_variance),
    ("settles by cycle", lambda r: float(r.settles_by)),
)
DRIFT_COLUMN: tuple[str, Figure] = (
    "recovers in (cycles after drift)",
    lambda r: None if r.recovers_in is None else float(r.recovers_in))

#: The paper's Table 4 (initial -> final after 100 cycles), which no code produced.
PAPER = (
    ("escalation rate", 0.152, 0.042, lambda r, w: r.__dict__[w]["escalation"]),
    ("gap mass ΣG", 2.34, 0.76, lambda r, w: r.gap_mass_initial if w == "initial"
     else r.gap_mass_final),
    ("cost per query", 1.00, 0.58, lambda r, w: r.__dict__[w]["serving"]),
    ("confidence variance", 0.18, 0.07, lambda r, w: r.__dict__[w]["conf_variance"]),
)


def by_arm(runs: Sequence[RunFigures]) -> dict[str, list[RunFigures]]:
    out: dict[str, list[RunFigures]] = {}
    for run in sorted(runs, key=lambda r: (r.arm, r.seed)):
        out.setdefault(run.arm, []).append(run)
    return out


def _values(runs: Sequence[RunFigures], figure: Figure) -> list[float]:
    return [v for v in (figure(r) for r in runs) if v is not None]


def _cell(runs: Sequence[RunFigures], figure: Figure) -> str:
    values = _values(runs, figure)
    return str(interval(values)) if values else "-"


def arms_table(arms: dict[str, list[RunFigures]]) -> str:
    drifted = any(r.recovers_in is not None for runs in arms.values() for r in runs)
    columns = (*COLUMNS, DRIFT_COLUMN) if drifted else COLUMNS
    head = "| arm | seeds | " + " | ".join(name for name, _ in columns) + " |"
    rule = "|---|---:|" + "---:|" * len(columns)
    rows = [f"| {arm} | {len(runs)} | " + " | ".join(_cell(runs, f) for _, f in columns) + " |"
            for arm, runs in arms.items()]
    return "\n".join([head, rule, *rows])


def routing_summary(arms: dict[str, list[RunFigures]]) -> str:
    """PGR per arm and, per router family (an arm and its sweep points), APGR over the cost
    range and the cost at 95 % of always-top quality (cli.frontier), each over seeds."""
    if "always-top" not in arms or "cheapest-only" not in arms:
        return ("PGR, APGR and the 95 %-of-always-top cost need both the always-top and the "
                "cheapest-only arms in the comparison.")
    top = interval(_values(arms["always-top"], lambda r: r.accuracy)).mean
    low = interval(_values(arms["cheapest-only"], lambda r: r.accuracy)).mean
    lines = ["| arm | PGR | reaches 95 % of always-top accuracy | all-in cost/query |",
             "|---|---:|---|---:|"]
    for arm, runs in arms.items():
        acc = interval(_values(runs, lambda r: r.accuracy)).mean
        lines.append(f"| {arm} | {pgr(acc, low, top):.2f} | "
                     f"{'yes' if acc >= 0.95 * top else 'no'} | "
                     f"{_cell(runs, lambda r: r.all_in)} |")
    return "\n".join(lines) + "\n\n" + family_table(arms)


def family_of(arm: str) -> str:
    """The router an arm is an operating point of (itself, unless it is a sweep point)."""
    known = BY_NAME.get(arm)
    return (known.family or arm) if known else arm


def family_table(arms: dict[str, list[RunFigures]]) -> str:
    """APGR and cost at 95 % of always-top quality per router family, per seed then over
    seeds (a seed counts where it has the family's points and both reference arms)."""
    refs = {name: {r.seed: (r.serving, r.accuracy) for r in arms[name]}
            for name in ("cheapest-only", "always-top")}
    families: dict[str, list[RunFigures]] = {}
    for arm, runs in arms.items():
        families.setdefault(family_of(arm), []).extend(runs)
    lines = ["| router | operating points | APGR (serving cost) | serving cost at 95 % of "
             "always-top accuracy |", "|---|---:|---:|---:|"]
    for family, runs in families.items():
        apgrs, costs, seeds = [], [], sorted({r.seed for r in runs})
        for seed in seeds:
            if seed not in refs["cheapest-only"] or seed not in refs["always-top"]:
                continue
            points = [(r.serving, r.accuracy) for r in runs if r.seed == seed]
            lo, hi = refs["cheapest-only"][seed], refs["always-top"][seed]
            apgrs.append(apgr(points, lo, hi))
            costs.append(cost_at_quality(points, 0.95 * hi[1]))
        reached = [c for c in costs if c is not None]
        cost = (str(interval(reached)) if len(reached) == len(costs) and reached else
                f"reached in {len(reached)} of {len(costs)} seeds")
        count = len({r.arm for r in runs})
        lines.append(f"| {family} | {count} | {interval(apgrs) if apgrs else '-'} | {cost} |")
    return "\n".join(lines) + (
        "\n\nAPGR averages, over serving costs from cheapest-only's to always-top's, the best "
        "PGR a router's operating points reach at that cost or less (a step curve; points "
        "are not mixed). A router with one point gets its PGR times the share of the range "
        "above its cost; `--sweep` adds other operating points of static routing and the "
        "cascade (δ, which sets θ_crit). Per seed, then mean ± 95 % CI over seeds.")


def paper_table(runs: Sequence[RunFigures]) -> str:
    """The paper's claims (initial -> final), ours beside them, and whether each held."""
    lines = ["| metric | paper: initial → final | ours: initial | ours: final | "
             "ours: change (final - initial) | held? |", "|---|---|---:|---:|---:|---|"]
    for name, p_from, p_to, get in PAPER:
        pairs = [(get(r, "initial"), get(r, "final")) for r in runs]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if not pairs:
            lines.append(f"| {name} | {p_from} → {p_to} | - | - | - | not measured |")
            continue
        first, last = interval([a for a, _ in pairs]), interval([b for _, b in pairs])
        change = interval([b - a for a, b in pairs])
        lines.append(f"| {name} | {p_from} → {p_to} ({(p_to - p_from) / p_from:+.0%}) | "
                     f"{first} | {last} | {change} | {_verdict(change, p_to < p_from)} |")
    return "\n".join(lines)


def _verdict(change: Interval, claimed_fall: bool) -> str:
    if change.half is None:
        return "one seed: no interval, not judged"
    if change.mean + change.half < 0:
        return "fell, as claimed" if claimed_fall else "fell, against the claim"
    if change.mean - change.half > 0:
        return "rose, against the claim" if claimed_fall else "rose, as claimed"
    return "no change beyond the interval: the claim did not hold"


def write_plots(arms: dict[str, list[RunFigures]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Serving alone on a linear axis; all-in on a log axis, where training puts the sleeping
    # arms two orders of magnitude away (each seed drawn: an interval would cross zero).
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    curves: dict[str, list[tuple[float, float]]] = {}  # a swept router's points
    for i, (arm, runs) in enumerate(arms.items()):
        colour = plt.get_cmap("tab20")(i % 20)  # distinct for up to 20 arms (with --sweep)
        serving, acc = interval([r.serving for r in runs]), interval([r.accuracy for r in runs])
        curves.setdefault(family_of(arm), []).append((serving.mean, acc.mean))
        left.errorbar(serving.mean, acc.mean, xerr=serving.half or 0, yerr=acc.half or 0,
                      fmt="o", capsize=3, color=colour, label=arm)
        right.scatter([r.all_in for r in runs], [r.accuracy for r in runs], s=12, alpha=0.5,
                      color=colour)
        right.scatter([interval([r.all_in for r in runs]).mean], [acc.mean], s=50,
                      color=colour, label=arm)
    for family, points in curves.items():
        if len(points) > 1:  # joined in order of cost
            xs, ys = zip(*sorted(points), strict=True)
            left.plot(xs, ys, color="grey", lw=1, alpha=0.6, zorder=0)
            left.annotate(family, (xs[0], ys[0]), fontsize=7, color="grey")
    left.set_xlabel("serving cost per query, router included (always-top = 1)")
    left.set_ylabel("accuracy")
    left.set_title("serving: mean ± 95 % CI over seeds")
    right.set_xscale("log")
    right.set_xlabel("all-in cost per query: serving + training (log scale)")
    right.set_title("all-in: mean (large) and each seed (small)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "frontier.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    panels = (("accuracy", "accuracy"), ("escalation", "escalation rate"),
              ("serving", "serving cost / query"), ("gap_mass", "gap mass"))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for arm, runs in arms.items():
            if family_of(arm) != arm:  # sweep points: in the table and the frontier only
                continue
            series = [r.per_cycle[key] for r in runs]
            length = min(len(s) for s in series)
            means = []
            for i in range(length):
                got = [v for v in (s[i] for s in series) if v is not None]
                means.append(sum(got) / len(got) if got else float("nan"))
            ax.plot(range(length), means, marker="o", ms=2, label=arm)
        ax.set_title(title + " (mean over seeds)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("cycle")
    fig.tight_layout()
    fig.savefig(out / "cycles.png", dpi=110)
    plt.close(fig)


def write_comparison(runs: Sequence[RunFigures], out: Path, command: str,
                     missing: Sequence[str] = ()) -> Path:
    arms = by_arm(runs)
    write_plots(arms, out)
    seeds = sorted({r.seed for r in runs})
    parts = [
        "# sleepwake compare\n",
        f"- command: `{command}`",
        f"- seeds {', '.join(map(str, seeds))}; each run's directory (report.md, cycles.png, "
        "run.duckdb) is `<arm>/seed-<n>/`",
        (f"- **partial**: {len(missing)} planned runs are not done yet and are left out: "
         + ", ".join(missing)) if missing else "",
        "\n## Arms\n",
        *(f"- **{arm}**: {BY_NAME[arm].stands_for}" for arm in arms if arm in BY_NAME),
        "\n## Results (mean ± 95 % CI over seeds)\n", arms_table(arms),
        "\n![frontier](frontier.png)\n\n![per cycle](cycles.png)\n",
        "## Routing summary\n", routing_summary(arms),
        "\n## The paper's claims, from our runs (sleep-wake arm)\n",
        paper_table(arms.get("sleep-wake", [])) if "sleep-wake" in arms else "not run",
        "\n## Definitions\n",
        "Accuracy, escalation rate, serving cost per query (router included) and confidence "
        "variance are means over cycles; training cost per query is the run's training FLOPs "
        "in always-top queries over the queries served; all-in = serving + training. Initial "
        "and final are cycles 1-5 and the last 5. A run settles by the first cycle from which "
        "its serving cost per query stays within 0.05 of its final mean; one whose last cycle "
        "is still outside counts as settling one cycle after its end (censored, not left "
        "out). Recovery is the same, counted from the drift's cycle.",
    ]
    (out / "report.md").write_text("\n".join(p for p in parts if p) + "\n")
    return out / "report.md"
