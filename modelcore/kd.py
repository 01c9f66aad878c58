"""The LoRA-KD primitive of the sleeper trainer (docs/design.md, 'Sleep training').

A fresh peft LoRA adapter on a copy of the student is trained on target queries:
  loss = Σ w(x)·KL(p_teacher ‖ p_student) over the teacher's answer tokens / Σ w
       + λ_replay · KL(p_base ‖ p_student) on replay queries from outside the target cells,
where p_base is the frozen student before training, on its own answers (anti-forgetting: the
adapter may change behaviour on the target cells, and is pulled back to the old self elsewhere).
Forward KL (teacher ‖ student) rather than the source paper's reverse: it is the standard KD
objective and it does not let the student ignore teacher mass it cannot yet place. When the
vocabularies differ, KL is undefined and the term becomes sequence-level KD: cross-entropy on
the teacher's decoded answer, re-tokenised for the student.
Teacher and base log-probs are computed once up front, so a step costs one student pass.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from modelcore.cost import training_flops
from modelcore.encoding import TEMPLATE, Batch, encode_pairs, render
from modelcore.generation import greedy_decode
from modelcore.hashing import dir_sha256
from modelcore.pretrain import lr_at, slice_batch

LLAMA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class KDConfig:
    """Knobs of one sleep-training run (the step budget is the envelope's slot)."""

    rank: int = 16
    alpha: int = 32
    steps: int = 500
    lr: float = 5e-3
    batch_size: int = 32
    replay_batch_size: int = 32
    replay_weight: float = 3.0
    seed: int = 0
    max_new_tokens: int = 16
    target_modules: tuple[str, ...] = LLAMA_MODULES
    train_token_rows: bool = True


@dataclass(frozen=True)
class KDExample:
    """A target query and its weight w(x) (a·G + b·EVI + c·conf_teacher, chosen upstream)."""

    query: str
    weight: float = 1.0


@dataclass(frozen=True)
class KDResult:
    """Where the adapter was saved (`<out_root>/<sha256>/`, peft format) and what it cost."""

    path: str
    sha256: str
    steps: int
    final_loss: float
    train_flops: float
    exact_kd: bool


@dataclass(frozen=True)
class _Targets:
    batch: Batch
    ref_logp: torch.Tensor | None  # reference log-probs at scored positions; None → CE on tokens
    weights: torch.Tensor


class KDCancelledError(RuntimeError):
    """Raised inside the training loop when its cancel event is set."""


Progress = Callable[[int, int, float], None]


@torch.no_grad()
def _log_probs(model: PreTrainedModel, batch: Batch, chunk: int = 256) -> torch.Tensor:
    model.eval()
    parts = []
    for i in range(0, batch.input_ids.shape[0], chunk):
        ids, attn = batch.input_ids[i : i + chunk], batch.attention_mask[i : i + chunk]
        logits = model(input_ids=ids, attention_mask=attn).logits
        parts.append(torch.log_softmax(logits.float(), dim=-1))
    return torch.cat(parts)


def _answers(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    queries: Sequence[str],
    template: str,
    max_new_tokens: int,
) -> list[str]:
    texts = [render(q, template) for q in queries]
    out: list[str] = []
    for i in range(0, len(texts), 256):
        out += [d.text for d in greedy_decode(model, tok, texts[i : i + 256], max_new_tokens)]
    return out


def _same_vocab(a: PreTrainedTokenizerBase, b: PreTrainedTokenizerBase) -> bool:
    return bool(a.get_vocab() == b.get_vocab())


def _per_example(logits: torch.Tensor, batch: Batch, ref_logp: torch.Tensor | None) -> torch.Tensor:
    """Mean over each row's scored positions of KL(ref ‖ student), or CE when no ref."""
    labels = batch.labels()
    mask = (labels != -100).float()
    logp = torch.log_softmax(logits.float(), dim=-1)
    if ref_logp is None:
        tok_loss = F.nll_loss(logp.transpose(1, 2), labels.clamp(min=0), reduction="none")
    else:
        tok_loss = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
    return (tok_loss * mask).sum(1) / mask.sum(1).clamp(min=1)


def _prepare(
    queries: Sequence[str],
    answers: Sequence[str],
    tok: PreTrainedTokenizerBase,
    ref_model: PreTrainedModel | None,
    weights: Sequence[float],
) -> _Targets:
    batch = encode_pairs(tok, queries, answers)
    ref = _log_probs(ref_model, batch) if ref_model is not None else None
    return _Targets(batch, ref, torch.tensor(weights, dtype=torch.float32))


def _used_tokens(batch: Batch) -> list[int]:
    """Token ids the targets use: their embedding rows train with the adapter, because a
    member never pretrained on a family has untrained rows for some of its characters, which
    LoRA on the linear layers can only work around (bench: +40 points without, +57 with)."""
    return sorted(int(t) for t in batch.input_ids[batch.attention_mask.bool()].unique())


def _pick(t: _Targets, idx: torch.Tensor) -> tuple[Batch, torch.Tensor | None, torch.Tensor]:
    b = slice_batch(t.batch, idx)
    ref = t.ref_logp[idx, : b.input_ids.shape[1]] if t.ref_logp is not None else None
    return b, ref, t.weights[idx]


def distil(
    student: PreTrainedModel,
    student_tok: PreTrainedTokenizerBase,
    teacher: PreTrainedModel,
    teacher_tok: PreTrainedTokenizerBase,
    examples: Sequence[KDExample],
    replay: Sequence[str],
    config: KDConfig,
    out_root: str | Path,
    *,
    template: str = TEMPLATE,
    teacher_template: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 100,
) -> KDResult:
    """Train a LoRA adapter for `student` (left untouched) and save it content-addressed.

    With `checkpoint` (a file), the adapter, optimiser and sampler state are saved every
    `checkpoint_every` steps and a run that finds one resumes from it: a job killed mid-way
    ends with the same adapter bytes as one never interrupted."""
    if not examples:
        raise ValueError("distil needs at least one target example")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    queries = [e.query for e in examples]
    t_answers = _answers(
        teacher, teacher_tok, queries, teacher_template or template, config.max_new_tokens
    )
    exact = _same_vocab(student_tok, teacher_tok)
    targets = _prepare(
        queries, t_answers, student_tok, teacher if exact else None, [e.weight for e in examples]
    )
    base = copy.deepcopy(student).eval()
    rep: _Targets | None = None
    if replay and config.replay_weight > 0:
        r_answers = _answers(base, student_tok, replay, template, config.max_new_tokens)
        rep = _prepare(replay, r_answers, student_tok, base, [1.0] * len(replay))
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=list(config.target_modules),
        trainable_token_indices=_used_tokens(targets.batch) if config.train_token_rows else None,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    n_params = sum(p.numel() for p in base.parameters())
    tokens, loss_val, start = 0, float("nan"), 0
    if checkpoint is not None and checkpoint.exists():
        start, tokens, loss_val = _resume(checkpoint, model, opt, gen)
    warmup = min(30, config.steps // 10)
    for step in range(start, config.steps):
        if cancel is not None and cancel.is_set():
            raise KDCancelledError(f"cancelled at step {step}/{config.steps}")
        for group in opt.param_groups:
            group["lr"] = lr_at(step, config.steps, config.lr, warmup)
        idx = torch.randint(0, len(examples), (config.batch_size,), generator=gen)
        b, ref, w = _pick(targets, idx)
        out = model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
        loss = (w * _per_example(out, b, ref)).sum() / w.sum().clamp(min=1e-8)
        tokens += int(b.attention_mask.sum())
        if rep is not None:
            ridx = torch.randint(0, len(replay), (config.replay_batch_size,), generator=gen)
            rb, rref, _ = _pick(rep, ridx)
            rout = model(input_ids=rb.input_ids, attention_mask=rb.attention_mask).logits
            loss = loss + config.replay_weight * _per_example(rout, rb, rref).mean()
            tokens += int(rb.attention_mask.sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        loss_val = loss.item()
        if progress is not None:
            progress(step + 1, config.steps, loss_val)
        if checkpoint is not None and (step + 1) % checkpoint_every == 0:
            _checkpoint(checkpoint, step + 1, tokens, loss_val, model, opt, gen)
    path, sha = _save(model, Path(out_root))
    return KDResult(str(path), sha, config.steps, loss_val, training_flops(n_params, tokens), exact)


def _trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _checkpoint(path: Path, step: int, tokens: int, loss: float, model: torch.nn.Module,
                opt: torch.optim.Optimizer, gen: torch.Generator) -> None:
    """Everything the loop needs to go on from `step`, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "tokens": tokens, "loss": loss, "weights": _trainable(model),
                "opt": opt.state_dict(), "gen": gen.get_state()}, tmp)
    tmp.replace(path)


def _resume(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
            gen: torch.Generator) -> tuple[int, int, float]:
    saved = torch.load(path, weights_only=True)
    model.load_state_dict(saved["weights"], strict=False)
    opt.load_state_dict(saved["opt"])
    gen.set_state(saved["gen"])
    return int(saved["step"]), int(saved["tokens"]), float(saved["loss"])


def _canonical_config(path: Path) -> None:
    """peft writes target_modules from a set, in an order that changes with the process's
    hash seed: sort it, so the same adapter has the same bytes (and sha256) in any process."""
    config = json.loads(path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True))


def _save(model: PeftModel, out_root: Path) -> tuple[Path, str]:
    """Save in peft format into a temp dir, hash it, and move it to `<out_root>/<sha256>`."""
    out_root.mkdir(parents=True, exist_ok=True)
    model.peft_config["default"].base_model_name_or_path = None
    with tempfile.TemporaryDirectory(dir=out_root) as tmp:
        model.save_pretrained(tmp)
        _canonical_config(Path(tmp) / "adapter_config.json")
        sha = dir_sha256(tmp)
        final = out_root / sha
        if not final.exists():
            shutil.copytree(tmp, final)
    return final, sha
