"""The zoo's held-out table (markdown) and its real gaps, computed from the shipped weights."""

from __future__ import annotations

from pathlib import Path

from modelcore.backend import ModelBackend
from modelcore.calibration import fit_and_report
from modelcore.cost import CostScale
from modelcore.evaluation import CellScore, evaluate
from modelcore.world import all_cells, is_small_domain
from modelcore.zoo import DEFAULT_ZOO, WEIGHTS_DIR, MemberSpec, member_dir

Scores = dict[tuple[str, str], CellScore]


def load_zoo(
    specs: tuple[MemberSpec, ...] = DEFAULT_ZOO, root: Path = WEIGHTS_DIR
) -> dict[str, ModelBackend]:
    """Every member as a backend, costs normalised to the top tier's average query."""
    top = max(specs, key=lambda s: s.tier)
    top_backend = ModelBackend.from_dir(member_dir(top, root))
    scale = CostScale.for_top(top_backend.params)
    return {s.name: ModelBackend.from_dir(member_dir(s, root), scale=scale) for s in specs}


def gaps(member: Scores, teacher: Scores) -> list[tuple[str, str]]:
    """Cells where the member is below 50 % and the teacher at or above 90 %."""
    return [c for c, s in member.items() if s.accuracy < 0.5 and teacher[c].accuracy >= 0.9]


def zoo_table(n: int = 200, seed: int = 0, root: Path = WEIGHTS_DIR) -> str:
    zoo = load_zoo(root=root)
    scores = {name: evaluate(b, n_per_cell=n, seed=seed) for name, b in zoo.items()}
    cells = all_cells()
    mark = {c: "†" if is_small_domain(*c) else "" for c in cells}
    head = [
        "member",
        "tier",
        "params",
        "cost/query",
        *[f"{c[0]} {c[1][0]}{mark[c]}" for c in cells],
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in DEFAULT_ZOO:
        s = scores[spec.name]
        cost = sum(x.cost * x.n for x in s.values()) / sum(x.n for x in s.values())
        row = [spec.name, f"L{spec.tier}", f"{zoo[spec.name].params:,}", f"{cost:.3f}"]
        row += [f"{100 * s[c].accuracy:.0f}" for c in cells]
        lines.append("| " + " | ".join(row) + " |")
    sizes = scores[DEFAULT_ZOO[0].name]
    lines.append("| held-out n | | | | " + " | ".join(str(sizes[c].n) for c in cells) + " |")
    lines.append("")
    lines.append("† small domain: held-out drawn from the whole domain, so it overlaps training.")
    teacher = scores[max(DEFAULT_ZOO, key=lambda s: s.tier).name]
    lines.append("")
    for spec in DEFAULT_ZOO:
        if spec.tier == 0:
            g = ", ".join(f"{f}/{lv}" for f, lv in gaps(scores[spec.name], teacher)) or "none"
            lines.append(f"- gaps of {spec.name} (<50 %, teacher ≥90 %): {g}")
    lines += ["", "| member | ECE raw conf. | ECE isotonic | ECE Platt |", "|---|---|---|---|"]
    for spec in DEFAULT_ZOO:
        lines.append(calibration_row(spec.name, scores[spec.name]))
    return "\n".join(lines)


def calibration_row(name: str, scores: Scores) -> str:
    """ECE of raw confidence and of calibrated P(success), on a 30 % split of the answers."""
    conf = [c for s in scores.values() for c in s.confidences]
    ok = [o for s in scores.values() for o in s.successes]
    _, iso = fit_and_report(conf, ok, "isotonic")
    _, platt = fit_and_report(conf, ok, "platt")
    return f"| {name} | {iso.ece_raw:.3f} | {iso.ece_calibrated:.3f} | {platt.ece_calibrated:.3f} |"
