"""A model with its current adapters: batched answers with tokens, cost and confidence.

Zoo members and any Hugging Face causal-LM directory load through `ModelBackend.from_dir`.
LoRA adapters are verified by sha256, attached to the resident base (never reloaded), selected
per query (the query cell's adapter or none) and detached again.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from modelcore.building import BUILDING
from modelcore.cost import CostScale, inference_flops
from modelcore.encoding import TEMPLATE, render
from modelcore.generation import Decoded, greedy_decode
from modelcore.hashing import HashMismatchError, dir_sha256
from modelcore.zoo import META_FILE


@dataclass(frozen=True)
class AdapterRef:
    """Where an adapter lies and the sha256 (see `dir_sha256`) it must have."""

    path: str
    sha256: str


@dataclass(frozen=True)
class Answer:
    """One generated answer, as a model worker reports it (docs/design.md, 'Cost', 'Confidence')."""

    text: str
    prompt_tokens: int
    answer_tokens: int
    flops: float
    cost: float
    mean_logprob: float
    min_margin: float
    adapter: str | None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.answer_tokens

    @property
    def confidence(self) -> float:
        """Geometric-mean probability of the answer tokens (uncalibrated)."""
        return math.exp(self.mean_logprob)


class ModelBackend:
    """Serving wrapper around one causal LM and the LoRA adapters attached to it."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        name: str,
        template: str = TEMPLATE,
        scale: CostScale | None = None,
    ) -> None:
        self.name = name
        self.template = template
        self.tokenizer = tokenizer
        self.base: PreTrainedModel = model.eval()
        self.params = sum(p.numel() for p in model.parameters())
        self.scale = scale or CostScale(inference_flops(self.params, 1.0))
        self._peft: PeftModel | None = None
        self._adapters: dict[str, AdapterRef] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_dir(
        cls,
        path: str | Path,
        name: str | None = None,
        template: str | None = None,
        scale: CostScale | None = None,
    ) -> ModelBackend:
        """Load any HF causal-LM directory; zoo directories also supply name and template."""
        path = Path(path)
        meta_file = path / META_FILE
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        with BUILDING:
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return cls(
            model,
            tok,
            name or meta.get("name", path.name),
            template or meta.get("template", TEMPLATE),
            scale,
        )

    @property
    def model(self) -> torch.nn.Module:
        """The module that runs: the peft wrapper while adapters are attached, else the base."""
        return self._peft if self._peft is not None else self.base

    @property
    def adapters(self) -> tuple[str, ...]:
        return tuple(self._adapters)

    def load_adapter(self, ref: AdapterRef) -> str:
        """Verify and attach an adapter (idempotent); returns its name (the sha256)."""
        with self._lock:
            if ref.sha256 in self._adapters:
                return ref.sha256
            actual = dir_sha256(ref.path)
            if actual != ref.sha256:
                raise HashMismatchError(
                    f"adapter at {ref.path} has sha256 {actual}, expected {ref.sha256}; refusing it"
                )
            with BUILDING:
                if self._peft is None:
                    self._peft = PeftModel.from_pretrained(
                        self.base, ref.path, adapter_name=ref.sha256, is_trainable=False
                    )
                else:
                    self._peft.load_adapter(ref.path, adapter_name=ref.sha256,
                                            is_trainable=False)
            self._peft.eval()
            self._adapters[ref.sha256] = ref
            return ref.sha256

    def unload_adapter(self, sha256: str) -> None:
        """Detach an adapter; after the last one the bare base model serves again."""
        with self._lock:
            if sha256 not in self._adapters or self._peft is None:
                return
            del self._adapters[sha256]
            if self._adapters:
                self._peft.delete_adapter(sha256)
            else:
                self.base = self._peft.unload()
                self._peft = None

    def generate(
        self,
        queries: Sequence[str],
        adapter: str | None = None,
        max_new_tokens: int = 16,
    ) -> list[Answer]:
        """Answer a batch with one adapter (by sha256) or none; `adapter` must be loaded."""
        if not queries:
            return []
        with self._lock, torch.inference_mode():
            texts = [render(q, self.template) for q in queries]
            if adapter is None:
                decoded = self._decode_base(texts, max_new_tokens)
            else:
                if self._peft is None or adapter not in self._adapters:
                    raise KeyError(f"adapter {adapter} is not loaded on {self.name}")
                self._peft.set_adapter(adapter)
                decoded = greedy_decode(self._peft, self.tokenizer, texts, max_new_tokens)
        out = []
        for d in decoded:
            flops = inference_flops(self.params, d.prompt_tokens + d.answer_tokens)
            out.append(
                Answer(
                    d.text.strip(),
                    d.prompt_tokens,
                    d.answer_tokens,
                    flops,
                    self.scale.normalise(flops),
                    d.mean_logprob,
                    d.min_margin,
                    adapter,
                )
            )
        return out

    def _decode_base(self, texts: list[str], max_new_tokens: int) -> list[Decoded]:
        if self._peft is None:
            return greedy_decode(self.base, self.tokenizer, texts, max_new_tokens)
        with self._peft.disable_adapter():
            return greedy_decode(self._peft, self.tokenizer, texts, max_new_tokens)

    def generate_routed(
        self,
        queries: Sequence[str],
        adapters: Sequence[str | None],
        max_new_tokens: int = 16,
    ) -> list[Answer]:
        """Answer a mixed batch, each query with its own cell's adapter, in input order."""
        groups: dict[str | None, list[int]] = {}
        for i, a in enumerate(adapters):
            groups.setdefault(a, []).append(i)
        out: list[Answer | None] = [None] * len(queries)
        for a, idx in groups.items():
            answers = self.generate([queries[i] for i in idx], a, max_new_tokens)
            for i, ans in zip(idx, answers, strict=True):
                out[i] = ans
        return [a for a in out if a is not None]
