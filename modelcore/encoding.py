"""Turning (prompt, answer) pairs into padded tensors, shared by pretraining, KD and serving.

One place decides how a query becomes model input (the template) and which positions are
answer positions, so the trainer, the distiller and the generator can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from modelcore.template import TEMPLATE, render  # re-exported: one template for all

__all__ = ["TEMPLATE", "Batch", "encode_pairs", "render"]


@dataclass(frozen=True)
class Batch:
    """Right-padded prompt+answer+eos; `answer_mask` marks the positions whose token is scored."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    answer_mask: torch.Tensor

    def labels(self) -> torch.Tensor:
        """Next-token targets aligned with the logits at each position (-100 where unscored)."""
        targets = torch.full_like(self.input_ids, -100)
        targets[:, :-1] = torch.where(self.answer_mask[:, 1:], self.input_ids[:, 1:], -100)
        return targets


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    queries: Sequence[str],
    answers: Sequence[str],
    template: str = TEMPLATE,
) -> Batch:
    """Pad (query, answer) pairs; the answer and its eos are the scored positions."""
    eos = int(tokenizer.eos_token_id)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)
    rows: list[tuple[list[int], int]] = []
    for q, a in zip(queries, answers, strict=True):
        p = tokenizer(render(q, template), add_special_tokens=False)["input_ids"]
        ans = tokenizer(a, add_special_tokens=False)["input_ids"]
        rows.append((list(p) + list(ans) + [eos], len(p)))
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    ans_mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (row, plen) in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        attn[i, : len(row)] = 1
        ans_mask[i, plen : len(row)] = True
    return Batch(ids, attn, ans_mask)
