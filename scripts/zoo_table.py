"""Print the README's zoo table: held-out accuracy (%) per member x family x level.

python scripts/zoo_table.py --n 200 --seed 0 --threads 2
"""

from __future__ import annotations

import os

import torch
import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from modelcore.zoo_table import zoo_table


def main(n: int = 200, seed: int = 0, threads: int = 2) -> None:
    torch.set_num_threads(threads)
    print(f"held-out tasks per cell: up to {n}, seed {seed}; e/m/h = easy/medium/hard\n")
    print(zoo_table(n=n, seed=seed))


if __name__ == "__main__":
    typer.run(main)
