"""The members' shapes: light enough for any agent to import (transformers only when a
model is built), so that an agent sizing a budget by them does not load torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import LlamaConfig


@dataclass(frozen=True)
class Arch:
    """Llama shape; parameter count (and so cost) follows from it."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int = 64

    def config(self, vocab_size: int, pad_id: int, eos_id: int) -> LlamaConfig:
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden,
            intermediate_size=self.intermediate,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.heads,
            max_position_embeddings=self.max_positions,
            pad_token_id=pad_id,
            eos_token_id=eos_id,
            bos_token_id=None,
            tie_word_embeddings=True,
        )


ENTRY = Arch(hidden=64, layers=2, heads=4, intermediate=192)
TOP = Arch(hidden=64, layers=4, heads=4, intermediate=192)
