"""Batched greedy decoding that also records the token probabilities of the chosen answer.

A hand-rolled loop over the KV cache rather than `generate()`: it is several times faster for
tiny models, and it yields exactly the per-token log-probs and margins that confidence needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Decoded:
    """One greedy answer with its token counts and probability statistics."""

    text: str
    prompt_tokens: int
    answer_tokens: int
    mean_logprob: float
    min_margin: float


def _left_pad(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = [list(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), int(pad), dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        attn[i, width - len(r) :] = 1
    return ids, attn, [len(r) for r in rows]


@torch.no_grad()
def greedy_decode(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_new_tokens: int = 16,
) -> list[Decoded]:
    """Greedy continuation of each rendered prompt until eos or `max_new_tokens`."""
    ids, attn, lens = _left_pad(tokenizer, texts)
    eos = int(tokenizer.eos_token_id)
    n = len(texts)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True)
    chosen: list[list[int]] = [[] for _ in range(n)]
    logps: list[list[float]] = [[] for _ in range(n)]
    margins: list[list[float]] = [[] for _ in range(n)]
    done = torch.zeros(n, dtype=torch.bool)
    next_pos = pos[:, -1:]
    for _ in range(max_new_tokens):
        logp = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        top = logp.topk(2, dim=-1)
        tok = top.indices[:, 0]
        probs = top.values.exp()
        for i in torch.nonzero(~done).flatten().tolist():
            logps[i].append(float(top.values[i, 0]))
            margins[i].append(float(probs[i, 0] - probs[i, 1]))
            if int(tok[i]) != eos:
                chosen[i].append(int(tok[i]))
        done |= tok == eos
        if bool(done.all()):
            break
        attn = torch.cat([attn, torch.ones((n, 1), dtype=attn.dtype)], dim=1)
        next_pos = next_pos + 1
        out = model(
            input_ids=tok[:, None],
            attention_mask=attn,
            position_ids=next_pos,
            past_key_values=out.past_key_values,
            use_cache=True,
        )
    return [
        Decoded(
            text=str(tokenizer.decode(chosen[i], skip_special_tokens=True)),
            prompt_tokens=lens[i],
            answer_tokens=len(logps[i]),
            mean_logprob=sum(logps[i]) / max(1, len(logps[i])),
            min_margin=min(margins[i], default=0.0),
        )
        for i in range(n)
    ]
