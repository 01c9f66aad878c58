"""The model zoo: tiers of small Llama models on the shared character tokenizer.

Entry-tier members are pretrained on different family subsets: each lacks a family another
member knows (the selector's work), and none knows gcd, which only the teacher learned — the
cohort gap the sleep phase exists to close (a third of the default traffic). Each member is
an ordinary HF model directory, cached under a hash of its spec (the spec, the level
definitions and the data recipe), so a changed recipe retrains and an unchanged one loads the
shipped weights.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

from modelcore.arch import ENTRY, TOP, Arch  # re-exported: the zoo's shapes
from modelcore.charset import char_tokenizer
from modelcore.encoding import TEMPLATE
from modelcore.pretrain import pretrain
from modelcore.tasks import FAMILIES, STRING
from modelcore.world import family_cells, training_examples
from modelcore.zoo_files import META_FILE, WEIGHTS_DIR  # re-exported: the zoo's own names

RECIPE_VERSION = 3


@dataclass(frozen=True)
class MemberSpec:
    """Everything that determines a member's weights (its hash is the cache key)."""

    name: str
    tier: int
    families: tuple[str, ...]
    arch: Arch
    steps: int
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    examples_per_cell: int = 6000

    def cell_counts(self) -> list[tuple[tuple[str, str], int]]:
        """Pretraining examples per cell: harder levels and slow-learning families get more
        (reverse is learnt fastest, gcd slowest)."""
        level_w = {"easy": 1.0, "medium": 1.5, "hard": 2.0}
        fam_w = {f: (0.5 if f in STRING else 1.5 if f == "gcd" else 1.0) for f in self.families}
        return [
            ((f, lv), int(self.examples_per_cell * fam_w[f] * level_w[lv]))
            for f, lv in family_cells(self.families)
        ]

    def digest(self) -> str:
        levels = {f: {k: asdict(v) for k, v in FAMILIES[f].levels.items()} for f in self.families}
        blob = json.dumps(
            {"spec": asdict(self), "levels": levels, "recipe": RECIPE_VERSION},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]



DEFAULT_ZOO: tuple[MemberSpec, ...] = (
    MemberSpec(
        "top-teacher", 1, tuple(FAMILIES), TOP, steps=12000, seed=4, examples_per_cell=20000
    ),
    MemberSpec("l0-chain-rev", 0, ("chain", "reverse"), ENTRY, steps=3500, seed=1),
    MemberSpec("l0-chain", 0, ("chain",), ENTRY, steps=3500, seed=2),
    MemberSpec("l0-rev", 0, ("reverse",), ENTRY, steps=3500, seed=3),
)


def member_dir(spec: MemberSpec, root: Path = WEIGHTS_DIR) -> Path:
    return root / spec.name


def is_cached(spec: MemberSpec, root: Path = WEIGHTS_DIR) -> bool:
    meta = member_dir(spec, root) / META_FILE
    return meta.exists() and json.loads(meta.read_text()).get("digest") == spec.digest()


def train_member(spec: MemberSpec, root: Path = WEIGHTS_DIR, threads: int = 1) -> Path:
    """Pretrain one member from scratch (seeded) and save it as an HF model directory.

    One thread by default: tiny models gain little from more, and a fixed thread count keeps
    the float reductions, hence the weights, identical from build to build.
    """
    torch.set_num_threads(threads)
    tok = char_tokenizer()
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(spec.arch.config(len(tok), tok.pad_token_id, tok.eos_token_id))
    data = training_examples(spec.cell_counts(), spec.seed)
    t0 = time.perf_counter()
    loss = pretrain(
        model,
        tok,
        data,
        steps=spec.steps,
        batch_size=spec.batch_size,
        lr=spec.lr,
        seed=spec.seed,
        desc=spec.name,
    )
    out = member_dir(spec, root)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    meta = {
        "name": spec.name,
        "tier": spec.tier,
        "families": list(spec.families),
        "template": TEMPLATE,
        "digest": spec.digest(),
        "final_loss": loss,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "params": sum(p.numel() for p in model.parameters()),
        "spec": asdict(spec),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return out


def _timed_train(spec: MemberSpec, root: Path) -> tuple[Path, float]:
    t0 = time.perf_counter()
    return train_member(spec, root), time.perf_counter() - t0


def build_zoo(
    specs: Sequence[MemberSpec] = DEFAULT_ZOO,
    root: Path = WEIGHTS_DIR,
    force: bool = False,
    jobs: int = 2,
    on_member: Callable[[MemberSpec, float, bool], None] | None = None,
) -> dict[str, Path]:
    """Train every member whose cache is missing or stale (all with `force`), `jobs` at once.

    Members train in separate single-threaded processes, so the weights do not depend on `jobs`.
    """
    todo = [s for s in specs if force or not is_cached(s, root)]
    paths = {s.name: member_dir(s, root) for s in specs}
    for s in specs:
        if s not in todo and on_member is not None:
            on_member(s, 0.0, False)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx) as pool:
        futures = {pool.submit(_timed_train, s, root): s for s in todo}
        for fut in as_completed(futures):
            path, seconds = fut.result()
            paths[futures[fut].name] = path
            if on_member is not None:
                on_member(futures[fut], seconds, True)
    return paths


def tiers(specs: Sequence[MemberSpec] = DEFAULT_ZOO) -> dict[int, list[MemberSpec]]:
    out: dict[int, list[MemberSpec]] = {}
    for s in specs:
        out.setdefault(s.tier, []).append(s)
    return out
