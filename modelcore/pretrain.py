"""Seeded pretraining of a zoo member on its families (answer-token cross-entropy).

On 2 CPU cores optimiser steps matter more than parameters, so the loop is lean: the whole
example pool is encoded once and batches are sliced from it by a seeded permutation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from modelcore.encoding import Batch, encode_pairs
from modelcore.tasks import Task

Progress = Callable[[int, float], None]


def answer_ce(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean next-token cross-entropy over answer positions."""
    labels = batch.labels()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def slice_batch(batch: Batch, idx: torch.Tensor) -> Batch:
    """Rows `idx` of a batch, trimmed to their longest row (short batches run faster)."""
    attn = batch.attention_mask[idx]
    width = int(attn.sum(dim=1).max())
    return Batch(batch.input_ids[idx, :width], attn[:, :width], batch.answer_mask[idx, :width])


def lr_at(step: int, steps: int, lr: float, warmup: int = 100) -> float:
    """Linear warmup then cosine decay to 10 % of `lr`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def pretrain(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Task],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    desc: str = "pretrain",
    progress: Progress | None = None,
) -> float:
    """Train `model` in place; returns the mean loss of the last 100 steps."""
    torch.manual_seed(seed)
    pool = encode_pairs(tokenizer, [t.prompt for t in examples], [t.answer for t in examples])
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    model.train()
    order = torch.randperm(len(examples), generator=gen)
    cursor, recent = 0, list[float]()
    bar = tqdm(range(steps), desc=desc, mininterval=2.0)
    for step in bar:
        if cursor + batch_size > len(order):
            order, cursor = torch.randperm(len(examples), generator=gen), 0
        batch = slice_batch(pool, order[cursor : cursor + batch_size])
        cursor += batch_size
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = answer_ce(logits, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        recent = [*recent[-99:], loss.item()]
        if step % 50 == 0:
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
            if progress is not None:
                progress(step, recent[-1])
    model.eval()
    return sum(recent) / max(1, len(recent))
