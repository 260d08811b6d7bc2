"""Tokenizer: the same ids as transformers' tokenizer for the same checkpoint."""

import shutil

import numpy as np
import pytest
from helpers import WEIGHTS, minilm_dir

from minibert import InputError, Tokenizer

TEXTS = [
    "Hello, world!",
    "Crème brûlée, naïve café — ÀÉÎÕÜ.",
    "中文字符 and 日本語 mixed with English",
    "   extra   spaces\tand\ttabs\nnewlines  ",
    "unaffable supercalifragilisticexpialidocious tokenization",
    "ümlaut ß ﬁ ligatures and emoji 🙂",
    "",
]


def test_ids_equal_transformers_golden_ids():
    with np.load(WEIGHTS / "minilm-reference.npz") as f:
        texts, pairs = list(f["texts"]), list(f["text_pairs"])
        expected = {k: f[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    encoded = Tokenizer.from_pretrained(minilm_dir())(texts, pairs)
    for key, value in expected.items():
        np.testing.assert_array_equal(encoded[key], value, err_msg=key)
        assert encoded[key].dtype == np.int64


def test_vocab_txt_pipeline_equals_tokenizer_json(tmp_path):
    """Without tokenizer.json the WordPiece pipeline is built from vocab.txt and gives the same ids."""
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_dir() / name, tmp_path / name)
    from_vocab = Tokenizer.from_pretrained(tmp_path)
    from_json = Tokenizer.from_pretrained(minilm_dir())
    for a, b in [
        (from_vocab(TEXTS), from_json(TEXTS)),
        (from_vocab(TEXTS, TEXTS[::-1]), from_json(TEXTS, TEXTS[::-1])),
    ]:
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_pairs_get_type_ids_0_then_1():
    encoded = Tokenizer.from_pretrained(minilm_dir())(["first"], ["second text"])
    tokens = Tokenizer.from_pretrained(minilm_dir()).convert_ids_to_tokens(encoded["input_ids"][0])
    assert tokens == ["[CLS]", "first", "[SEP]", "second", "text", "[SEP]"]
    assert encoded["token_type_ids"][0].tolist() == [0, 0, 0, 1, 1, 1]


def test_truncation_stops_at_the_models_maximum_length():
    tokenizer = Tokenizer.from_pretrained(minilm_dir())
    encoded = tokenizer(["word " * 1000])
    assert encoded["input_ids"].shape == (1, 512)
    assert encoded["input_ids"][0, -1] == 102  # [SEP] kept at the end
    assert tokenizer(["word " * 1000], max_length=16)["input_ids"].shape == (1, 16)


def test_padding_pads_to_the_longest_row_with_mask_zero():
    encoded = Tokenizer.from_pretrained(minilm_dir())(["a b c d e", "a"])
    assert encoded["input_ids"].shape == (2, 7)
    assert encoded["attention_mask"][1].tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert encoded["input_ids"][1, 3:].tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "bad, message",
    [
        (None, "must be a string or a non-empty list"),
        ([], "non-empty list"),
        (["ok", 3], r"texts\[1\] is a int, not a string"),
    ],
)
def test_non_text_input_is_refused(bad, message):
    with pytest.raises(InputError, match=message):
        Tokenizer.from_pretrained(minilm_dir())(bad)


def test_matches_transformers_tokenizer_live():
    transformers = pytest.importorskip("transformers")
    theirs = transformers.AutoTokenizer.from_pretrained(minilm_dir())
    ours = Tokenizer.from_pretrained(minilm_dir())
    long_texts = TEXTS + ["a long text " * 300]
    for args in [(long_texts,), (long_texts, long_texts[::-1])]:
        expected = theirs(*args, padding=True, truncation=True, return_tensors="np")
        actual = ours(*args)
        for key in actual:
            np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)
