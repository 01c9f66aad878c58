import numpy as np

from modelcore.embeddings import DIM, decode_vector, embed, encode_vector


def test_embeddings_are_unit_384d_and_batched() -> None:
    texts = ["add: 12+7", "rev: roid", "gcd: 4,6", "add: 13+7"]
    v = embed(texts, batch_size=2)
    assert v.shape == (4, DIM)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[3] > v[0] @ v[1]
    assert embed([]).shape == (0, DIM)


def test_compact_encoding_round_trip() -> None:
    v = embed(["sum: 1+2+3"])[0]
    s = encode_vector(v)
    assert isinstance(s, str) and len(s) == 1024
    assert np.abs(decode_vector(s) - v).max() < 1e-3
