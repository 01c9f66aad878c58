"""LoRA-KD on one gap family: the lift there, the forgetting elsewhere, with and without replay.

    python benchmarks/bench_kd.py                       # l0-chain-rev learns gcd
    python benchmarks/bench_kd.py --member l0-gcd-rev --gap chain

Pass criteria: lift ≥ 30 points on the gap family within 120 s of training, own
families drop ≤ 5 points (with replay). Time is the training's process CPU time (all
threads); wall time is shown too but depends on what else shares the cores. The no-replay
run shows what the replay term buys.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from modelcore.backend import ModelBackend
from modelcore.kd import KDConfig
from modelcore.kd_eval import KDOutcome, kd_experiment
from modelcore.zoo import DEFAULT_ZOO, member_dir


def _row(label: str, o: KDOutcome) -> str:
    return (
        f"| {label} | {100 * o.gap_before:.0f} → {100 * o.gap_after:.0f} | {100 * o.lift:+.0f} "
        f"| {100 * o.own_before:.0f} → {100 * o.own_after:.0f} | {-100 * o.forgetting:+.0f} "
        f"| {o.seconds:.0f} | {o.cpu_seconds:.0f} |"
    )


def main(
    member: str = "l0-chain-rev",
    gap: str = "gcd",
    steps: int = 500,
    seed: int = 0,
    n_eval: int = 200,
    threads: int = 1,
    rows_ablation: bool = typer.Option(
        False, help="Add a run with the embedding rows frozen (LoRA on the linear layers only)."),
) -> None:
    torch.set_num_threads(threads)
    specs = {s.name: s for s in DEFAULT_ZOO}
    teacher_spec = max(DEFAULT_ZOO, key=lambda s: s.tier)
    student = ModelBackend.from_dir(member_dir(specs[member]))
    teacher = ModelBackend.from_dir(member_dir(teacher_spec))
    own = [f for f in specs[member].families if f != gap]
    cfg = KDConfig(steps=steps, seed=seed)
    configs = {
        f"replay (λ={cfg.replay_weight:g})": cfg,
        "no replay (λ=0)": replace(cfg, replay_weight=0.0),
    }
    if rows_ablation:
        configs[f"replay (λ={cfg.replay_weight:g}), embedding rows frozen"] = replace(
            cfg, train_token_rows=False)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            label: kd_experiment(student, teacher, gap, own, c, Path(tmp), n_eval=n_eval, seed=seed)
            for label, c in configs.items()
        }
    print(
        f"member {member}, gap family {gap}, own families {', '.join(own)}; "
        f"rank {cfg.rank}, {steps} steps, seed {seed}, {threads} threads, "
        f"{n_eval} held-out tasks per cell\n"
    )
    print(
        "| run | gap family acc. | lift (pts) | own families acc. | change (pts) | wall s | CPU s |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, o in runs.items():
        print(_row(label, o))
    o = next(iter(runs.values()))
    ok = o.lift >= 0.30 and o.forgetting <= 0.05 and o.cpu_seconds <= 120
    print(f"\n{'PASS' if ok else 'FAIL'}: lift ≥ 30 pts, forgetting ≤ 5 pts, ≤ 120 CPU s")


if __name__ == "__main__":
    typer.run(main)
