from modelcore.charset import char_tokenizer
from modelcore.encoding import encode_pairs


def test_char_tokenizer_round_trip() -> None:
    tok = char_tokenizer()
    text = "rev: Sus=suS"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    assert tok.decode(ids) == text


def test_labels_score_only_answer_and_eos() -> None:
    tok = char_tokenizer()
    b = encode_pairs(tok, ["sum: 1+2", "rev: abc"], ["3", "cba"])
    labels = b.labels()
    row = [int(x) for x in labels[1] if x != -100]
    assert tok.decode(row[:-1]) == "cba"
    assert row[-1] == tok.eos_token_id
    assert int((labels[0] != -100).sum()) == 2
