"""The one character tokenizer every zoo model shares, as a standard HF fast tokenizer.

Sharing one vocabulary makes token-level KD exact (teacher and student logits align index by
index). Building it as a `PreTrainedTokenizerFast` means zoo directories are ordinary Hugging
Face model directories, loaded by the same code path as any other causal LM.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
CHARS = string.digits + string.ascii_letters + " +-*/=,:.?!()'"


def char_tokenizer() -> PreTrainedTokenizerFast:
    """A tokenizer with one token per character of `CHARS` (pad=0, eos=1, unk=2)."""
    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for c in CHARS:
        vocab[c] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, bos_token=None
    )
