"""Tokenizer: the same ids as transformers' tokenizer for the same checkpoint."""

import json
import shutil

import numpy as np
import pytest
from support.helpers import WEIGHTS, minilm_dir

from minibert import BertForMaskedLM, CheckpointError, InputError, Tokenizer, fill_mask

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


# ---- vocab.txt without tokenizer.json: special and added tokens, against transformers ----

SPECIAL_TEXTS = [
    "A, naïve [MASK] AllenNLP sentence.",
    "[CLS] written out [SEP] by hand [SEP]",
    "glued[MASK]to words[SEP]and[PAD][PAD] [UNK]s",
    "[mask] and [Mask] are not special; [ MASK ] neither",
    "中文[MASK]字符 Crème brûlée ÀÉÎ [UNK]",
    "Ünïcödé CAPITALS [MASK] the cat sat on the [MASK] .",
    "",
]
SWITCHES = [  # every tokenizer_config.json switch both ways (strip_accents also unset: it then follows lower-casing)
    {"do_lower_case": lower, "strip_accents": strip, "tokenize_chinese_chars": chinese}
    for lower in (True, False)
    for strip in (None, True, False)
    for chinese in (True, False)
]


def vocab_only_directory(directory, vocab_from, settings: dict, special_map: dict | None = None):
    """A Google-release-style tokenizer directory: vocab.txt, tokenizer_config.json, maybe special_tokens_map.json."""
    directory.mkdir()
    shutil.copy(vocab_from / "vocab.txt", directory / "vocab.txt")
    config = {"tokenizer_class": "BertTokenizer", "model_max_length": 512, **settings}
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    if special_map is not None:
        (directory / "special_tokens_map.json").write_text(json.dumps(special_map), encoding="utf-8")
    return directory


def transformers_tokenizers(directory):
    """transformers' BertTokenizer and BertTokenizerFast (one class since v5) and, where it exists, the pure-Python
    one they replaced, all loaded from the same files."""
    transformers = pytest.importorskip("transformers")
    classes = {"BertTokenizer": transformers.BertTokenizer, "BertTokenizerFast": transformers.BertTokenizerFast}
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
    except ImportError:  # transformers before v5: BertTokenizer is the pure-Python one
        pass
    else:
        classes["BertTokenizerLegacy"] = BertTokenizerLegacy
    return {name: cls.from_pretrained(str(directory)) for name, cls in classes.items()}


def assert_same_ids_as_transformers(directory, texts):
    ours = Tokenizer.from_pretrained(directory)
    for name, theirs in transformers_tokenizers(directory).items():
        for args in [(texts,), (texts, texts[::-1])]:
            # the pure-Python one leaves token_type_ids out of its model_input_names in v5, so ask for them
            expected = theirs(*args, padding=True, truncation=True, return_token_type_ids=True, return_tensors="np")
            actual = ours(*args)
            for key in actual:
                assert actual[key].tolist() == expected[key].tolist(), (
                    f"{name}, {key}, {'pairs' if len(args) == 2 else 'texts'}: "
                    f"ours {[ours.convert_ids_to_tokens(row) for row in actual['input_ids']]}, "
                    f"theirs {[theirs.convert_ids_to_tokens(row.tolist()) for row in expected['input_ids']]}"
                )


@pytest.mark.parametrize("vocab", ["minilm", "tiny-mlm"])
def test_vocab_txt_keeps_a_mask_written_in_the_text_whole(tmp_path, vocab):
    source = minilm_dir() if vocab == "minilm" else WEIGHTS / vocab
    directory = vocab_only_directory(tmp_path / "model", source, {"do_lower_case": True})
    tokenizer = Tokenizer.from_pretrained(directory)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(["A, naïve [MASK] AllenNLP sentence."])["input_ids"][0])
    assert "[MASK]" in tokens and "mask" not in tokens, tokens


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
@pytest.mark.parametrize("vocab", ["minilm", "tiny-mlm"])
def test_vocab_txt_special_tokens_equal_transformers_under_every_switch(tmp_path, vocab, switches):
    source = minilm_dir() if vocab == "minilm" else WEIGHTS / vocab
    directory = vocab_only_directory(tmp_path / "model", source, switches)
    assert_same_ids_as_transformers(directory, SPECIAL_TEXTS)


@pytest.mark.parametrize("vocab", ["minilm", "tiny-mlm"])
def test_vocab_txt_registers_special_tokens_map_and_added_tokens_as_transformers_does(tmp_path, vocab):
    """Tokens named in special_tokens_map.json (a renamed mask, additional_special_tokens, one of them new) and in
    tokenizer_config.json's added_tokens_decoder (a new token, appended after the vocabulary) are whole tokens too."""
    source = minilm_dir() if vocab == "minilm" else WEIGHTS / vocab
    size = len((source / "vocab.txt").read_text(encoding="utf-8").splitlines())
    texts = [*SPECIAL_TEXTS, "an <ent>entity</ent> and [MASK]", "the [SEP]<ent> cat", "<new> <NEW> x<new>y"]
    special_map = {"mask_token": "[MASK]", "unk_token": "[UNK]", "additional_special_tokens": ["<ent>", "</ent>"]}
    legacy = vocab_only_directory(tmp_path / "map", source, {"do_lower_case": True}, special_map)
    assert_same_ids_as_transformers(legacy, texts)
    tokenizer = Tokenizer.from_pretrained(legacy)
    assert tokenizer.convert_ids_to_tokens(tokenizer(["<ent>"])["input_ids"][0]) == ["[CLS]", "<ent>", "[SEP]"]

    added = {
        str(size): {"content": "<new>", "lstrip": False, "rstrip": False, "normalized": False, "special": True},
        str(size + 1): {"content": "</ent>", "lstrip": False, "rstrip": False, "normalized": False, "special": True},
    }
    current = vocab_only_directory(
        tmp_path / "decoder", source, {"do_lower_case": False, "added_tokens_decoder": added}
    )
    assert_same_ids_as_transformers(current, texts)
    assert Tokenizer.from_pretrained(current)(["<new>"])["input_ids"][0, 1] == size


def test_vocab_txt_refuses_an_added_token_whose_id_the_vocabulary_contradicts(tmp_path):
    added = {"7": {"content": "[MASK]", "special": True}}  # tiny-mlm's vocab.txt has [MASK] at id 4
    directory = vocab_only_directory(tmp_path / "model", WEIGHTS / "tiny-mlm", {"added_tokens_decoder": added})
    with pytest.raises(CheckpointError, match=r"added_tokens_decoder gives '\[MASK\]' the id 7, but vocab.txt"):
        Tokenizer.from_pretrained(directory)


def test_fill_mask_finds_the_mask_of_a_model_directory_without_tokenizer_json(tmp_path):
    """The bug as a user met it: tiny-mlm with only vocab.txt predicted for no mask; now it equals tokenizer.json's."""
    directory = vocab_only_directory(tmp_path / "model", WEIGHTS / "tiny-mlm", {"do_lower_case": True})
    for name in ("config.json", "model.safetensors"):
        shutil.copy(WEIGHTS / "tiny-mlm" / name, directory / name)
    model = BertForMaskedLM.from_pretrained(directory)
    text = "the cat sat on the [MASK] ."
    (predictions,) = fill_mask(model, Tokenizer.from_pretrained(directory), text, top_k=3)
    (expected,) = fill_mask(model, Tokenizer.from_pretrained(WEIGHTS / "tiny-mlm"), text, top_k=3)
    assert [(p.token_str, p.score) for p in predictions] == [(p.token_str, p.score) for p in expected]
