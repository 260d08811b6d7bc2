"""Bad arguments to the task heads and fill_mask: wrong keywords, wrong objects, odd integers, a [MASK] lost to
truncation.

Broken checkpoints are made in tmp_path from the tiny checkpoints in weights/ (weights/make_reference.py made those),
with tests/support/bad_checkpoints.py.
"""

import numpy as np
import pytest
from support.bad_checkpoints import TINY
from support.helpers import WEIGHTS, minilm_dir

import minibert
from minibert import CheckpointError, InputError


@pytest.fixture(scope="module")
def tokenizer():
    return minibert.Tokenizer.from_pretrained(minilm_dir())


# --- The task heads and fill_mask: wrong keywords, wrong objects, odd integers, a [MASK] lost to truncation ---------
MLM = WEIGHTS / "tiny-mlm"  # BertForMaskedLM, tied; [MASK] is id 4


@pytest.mark.parametrize("cls", [minibert.BertForMaskedLM, minibert.BertForSequenceClassification])
def test_head_from_pretrained_with_an_unknown_keyword_is_a_type_error_naming_the_public_method(cls):
    # Python's own error for a misspelt keyword, naming the method the user called (not an internal reader).
    with pytest.raises(TypeError, match=rf"{cls.__name__}\.from_pretrained\(\) got an unexpected keyword .*'foo'"):
        cls.from_pretrained(MLM, foo=1)
    with pytest.raises(TypeError, match="takes from 2 to 3 positional arguments"):
        cls.from_pretrained(MLM, np.float32, True)  # check_finite is keyword-only, as in BertModel.from_pretrained


@pytest.mark.parametrize("cls", [minibert.BertForMaskedLM, minibert.BertForSequenceClassification])
def test_head_from_pretrained_passes_the_hub_arguments_on(cls, tmp_path):
    # A hub id absent from an empty cache, offline: the hub layer's error names the revision and the cache it searched.
    with pytest.raises(CheckpointError, match="not in the local cache") as caught:
        cls.from_pretrained("org/absent-model", cache_dir=tmp_path, local_files_only=True, revision="v1")
    assert "at revision 'v1'" in str(caught.value) and str(tmp_path) in str(caught.value)


@pytest.fixture(scope="module")
def mlm():
    return minibert.BertForMaskedLM.from_pretrained(MLM)


@pytest.fixture(scope="module")
def mlm_tokenizer():
    return minibert.Tokenizer.from_pretrained(MLM)


@pytest.mark.parametrize("tokenizer", [None, "weights/tiny-mlm", {"input_ids": [[2, 4, 3]]}])
def test_fill_mask_with_something_other_than_a_tokenizer_is_input_error(mlm, tokenizer):
    with pytest.raises(InputError, match=f"tokenizer must be a minibert.Tokenizer, found {type(tokenizer).__name__}"):
        minibert.fill_mask(mlm, tokenizer, "the [MASK] sat")


def test_fill_mask_with_something_other_than_a_masked_lm_is_input_error(mlm_tokenizer):
    encoder = minibert.BertModel.from_pretrained(TINY)
    for model in (None, encoder):
        with pytest.raises(InputError, match=f"model must be a BertForMaskedLM, found {type(model).__name__}"):
            minibert.fill_mask(model, mlm_tokenizer, "the [MASK] sat")


@pytest.mark.parametrize("top_k", [np.int64(3), np.int32(3), np.uint8(3), 3])
def test_fill_mask_takes_numpy_integers_for_top_k(mlm, mlm_tokenizer, top_k):
    (candidates,) = minibert.fill_mask(mlm, mlm_tokenizer, "the [MASK] sat", top_k=top_k)
    assert len(candidates) == 3
    assert candidates == minibert.fill_mask(mlm, mlm_tokenizer, "the [MASK] sat", top_k=3)[0]


@pytest.mark.parametrize("top_k", [True, 3.0, np.float64(3), "3", np.int64(0), 69])
def test_fill_mask_refuses_a_top_k_that_is_not_an_integer_in_range(mlm, mlm_tokenizer, top_k):
    with pytest.raises(InputError, match=r"top_k must be an integer in \[1, 68\], found"):
        minibert.fill_mask(mlm, mlm_tokenizer, "the [MASK] sat", top_k=top_k)


def test_fill_mask_says_when_truncation_cut_off_the_mask(mlm, mlm_tokenizer):
    text = "the " * 600 + "[MASK] sat"  # 600 words before the [MASK]; the tokenizer keeps 512 tokens
    with pytest.raises(InputError, match=r"truncated to the tokenizer's 512, which cut off its \[MASK\] \(token 601\)"):
        minibert.fill_mask(mlm, mlm_tokenizer, text)
    with pytest.raises(InputError, match=r"has no \[MASK\]"):  # a text that never had one still says so
        minibert.fill_mask(mlm, mlm_tokenizer, "the " * 600)
