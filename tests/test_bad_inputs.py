"""Bad arguments of the public calls: a forward pass's arrays, the tokenizer's texts and options, a model argument
that is neither a path nor a hub id. Each is an InputError (or, for the tokenizer's files, a CheckpointError) whose
message names the argument, never a wrong number or a raw NumPy/IndexError/KeyError traceback.

Broken checkpoints are made in tmp_path from the tiny checkpoints in weights/ (weights/make_reference.py made those),
with tests/support/bad_checkpoints.py.
"""

import numpy as np
import pytest
from support.bad_checkpoints import TINY, copy_checkpoint
from support.helpers import F64_TOL, minilm_dir

import minibert
from minibert import CheckpointError, InputError


@pytest.fixture(scope="module")
def tokenizer():
    return minibert.Tokenizer.from_pretrained(minilm_dir())


# --- Inputs: every bad argument of a forward pass is an InputError that names the argument -------------------------

IDS = [[5, 6, 7]]
BAD_INPUTS = {
    "float ids": (dict(input_ids=np.array([[1.0, 2.0]])), "input_ids must hold integers, found dtype float64"),
    "string ids": (dict(input_ids=[["a", "b"]]), "input_ids must hold integers, found dtype <U1"),
    "bool ids": (dict(input_ids=np.array([[True, False]])), "input_ids must hold integers, found dtype bool"),
    "None ids": (dict(input_ids=None), "input_ids must hold integers, found dtype object"),
    "1-D ids": (dict(input_ids=[5, 6, 7]), r"2-D \[batch, sequence\], found shape \(3,\); .* input_ids\[None, :\]"),
    "3-D ids": (dict(input_ids=np.ones((1, 2, 3), int)), r"2-D \[batch, sequence\], found shape \(1, 2, 3\)"),
    "negative id": (dict(input_ids=[[5, -1]]), r"input_ids holds 1 value\(s\) outside \[0, 99\) \(e.g. -1\)"),
    "id = vocab_size": (dict(input_ids=[[5, 99]]), r"outside \[0, 99\) \(e.g. 99\); the config's vocab_size is 99"),
    "token type = type_vocab_size": (
        dict(input_ids=IDS, token_type_ids=[[0, 1, 2]]),
        r"token_type_ids holds 1 value\(s\) outside \[0, 2\) .* type_vocab_size is 2",
    ),
    "float token types": (dict(input_ids=IDS, token_type_ids=[[0.0, 0, 1]]), "token_type_ids must hold integers"),
    "longer than max_position_embeddings": (
        dict(input_ids=np.ones((1, 65), int)),
        r"sequence length 65 exceeds max_position_embeddings \(64\).*truncation=True",
    ),
    "mask longer than ids": (
        dict(input_ids=IDS, attention_mask=[[1, 1, 1, 1]]),
        r"attention_mask has shape \(1, 4\) but input_ids has shape \(1, 3\)",
    ),
    "extended [B, 1, 1, S] mask": (
        dict(input_ids=IDS, attention_mask=np.ones((1, 1, 1, 3))),
        r"attention_mask has shape \(1, 1, 1, 3\) but input_ids has shape \(1, 3\)",
    ),
    "ragged mask": (dict(input_ids=[[1, 2], [3, 4]], attention_mask=[[1, 1], [1]]), "attention_mask is ragged"),
    "token types of another batch": (
        dict(input_ids=IDS, token_type_ids=[[0, 0, 0], [0, 0, 0]]),
        r"token_type_ids has shape \(2, 3\) but input_ids has shape \(1, 3\)",
    ),
    "position ids too short": (
        dict(input_ids=IDS, position_ids=[[0, 1]]),
        r"position_ids has shape \(1, 2\) but input_ids has shape \(1, 3\); expected \(1, 3\)",
    ),
    "position id = max_position_embeddings": (
        dict(input_ids=IDS, position_ids=[[0, 1, 64]]),
        r"position_ids holds 1 value\(s\) outside \[0, 64\) \(e.g. 64\).*Leave position_ids out",
    ),
    "negative position id": (dict(input_ids=IDS, position_ids=[[-1, 0, 1]]), r"position_ids .* \(e.g. -1\)"),
    "float position ids": (dict(input_ids=IDS, position_ids=[[0.0, 1.0, 2.0]]), "position_ids must hold integers"),
    "mask value 2": (
        dict(input_ids=IDS, attention_mask=[[1, 2, 1]]),
        r"only 0 \(padding\) and 1 \(token\), found \[1 2\]",
    ),
    "fractional mask": (dict(input_ids=IDS, attention_mask=[[1, 0.5, 1]]), r"only 0 \(padding\) and 1.*0\.5"),
    "NaN in mask": (dict(input_ids=IDS, attention_mask=[[1, np.nan, 1]]), r"only 0 \(padding\) and 1.*nan"),
    "additive -inf mask": (dict(input_ids=IDS, attention_mask=[[0, -np.inf, 0]]), r"an additive mask \(0 / -inf\)"),
    "string mask": (dict(input_ids=IDS, attention_mask=[["1", "1", "0"]]), "attention_mask .* found dtype <U1"),
    "None in mask": (dict(input_ids=IDS, attention_mask=[[1, None, 1]]), "attention_mask .* found dtype object"),
    "empty batch": (dict(input_ids=np.zeros((0, 3), np.int64)), r"input_ids is empty \(shape \(0, 3\)\)"),
    "empty sequences": (dict(input_ids=np.zeros((2, 0), np.int64)), r"input_ids is empty \(shape \(2, 0\)\)"),
    "empty list": (dict(input_ids=[]), r"input_ids is empty \(shape \(0,\)\)"),
    "ragged ids": (dict(input_ids=[[1, 2, 3], [4]]), "input_ids is ragged .* pad the rows to one length"),
}


@pytest.mark.parametrize("kwargs, match", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_forward_inputs_raise_input_error_naming_the_argument(tiny_model, kwargs, match):
    with pytest.raises(InputError, match=match):
        tiny_model(**kwargs)


@pytest.mark.parametrize(
    "dtype, match",
    [
        (np.float16, "dtype float16 is not supported; use numpy.float32 or numpy.float64"),
        (np.int32, "dtype int32 is not supported"),
        ("banana", "dtype 'banana' is not a NumPy dtype"),
    ],
)
def test_unsupported_model_dtype_is_input_error(dtype, match):
    with pytest.raises(InputError, match=match):
        minibert.BertModel.from_pretrained(TINY, dtype=dtype)


def test_boolean_and_float_masks_of_zeros_and_ones_are_accepted_like_integer_ones(tiny_model):
    """transformers accepts a mask of any numeric dtype holding 0 and 1; so does minibert, with the same result."""
    ids = [[5, 6, 7, 8]]
    expected = tiny_model(ids, attention_mask=[[1, 1, 1, 0]]).last_hidden_state
    for mask in (
        np.array([[True, True, True, False]]),
        np.array([[1.0, 1.0, 1.0, 0.0]]),
        np.array([[1, 1, 1, 0]], np.uint8),
    ):
        np.testing.assert_array_equal(tiny_model(ids, attention_mask=mask).last_hidden_state, expected)


def test_fully_padded_row_attends_uniformly_and_stays_finite(tiny_model):
    """A row whose mask is all 0 gets finfo.min on every score: a uniform softmax, finite outputs (no NaN)."""
    out = tiny_model(
        [[5, 6, 7, 8], [9, 10, 11, 12]], attention_mask=[[1, 1, 0, 0], [0, 0, 0, 0]], output_attentions=True
    )
    for probs in out.attentions:  # [B, N, S, S]
        np.testing.assert_array_equal(probs[1], np.full_like(probs[1], 1 / 4))
    assert np.isfinite(out.last_hidden_state).all() and np.isfinite(out.pooler_output).all()
    # The other row does not notice its neighbour.
    alone = tiny_model([[5, 6, 7, 8]], attention_mask=[[1, 1, 0, 0]]).last_hidden_state
    np.testing.assert_allclose(out.last_hidden_state[:1], alone, rtol=0, atol=1e-13)


def test_fully_padded_row_matches_transformers_eager_in_float64_at_every_position(tiny_model):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertModel.from_pretrained(TINY, dtype=torch.float64, attn_implementation="eager").eval()
    ids = np.array([[5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18, 19]])
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        theirs = reference(torch.tensor(ids), attention_mask=torch.tensor(mask), output_attentions=True)
    ours = tiny_model(ids, attention_mask=mask, output_attentions=True)
    for name in ("last_hidden_state", "pooler_output"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name).numpy(), rtol=0, atol=F64_TOL)
    for mine, reference_probs in zip(ours.attentions, theirs.attentions, strict=True):
        np.testing.assert_allclose(mine, reference_probs.numpy(), rtol=0, atol=F64_TOL)


# --- Tokenizer: what it refuses, and what it does with empty texts ---------------------------------------------------

BAD_TEXTS = {
    "empty list": (dict(texts=[]), "texts must be a string or a non-empty list of strings, found list"),
    "None": (dict(texts=None), "texts must be a string or a non-empty list of strings, found NoneType"),
    "a number": (dict(texts=5), "texts must be a string or a non-empty list of strings, found int"),
    "list of ids": (dict(texts=[101, 102]), r"texts\[0\] is a int, not a string"),
    "bytes": (dict(texts=["ok", b"raw"]), r"texts\[1\] is a bytes, not a string; decode bytes first"),
    "nested list": (dict(texts=[["a", "b"]]), r"texts\[0\] is a list, not a string"),
    "lone surrogate": (
        dict(texts=["ok", "bad \ud800 text"]),
        r"texts\[1\] holds '\\ud800' at index 4, a lone surrogate",
    ),
    "pairs of another length": (dict(texts=["a", "b"], text_pairs=["c"]), "text_pairs has 1 texts but texts has 2"),
    "non-string pair": (dict(texts=["a"], text_pairs=[None]), r"text_pairs\[0\] is a NoneType, not a string"),
    "unknown padding": (dict(texts=["a"], padding="left"), "padding must be True, False, 'longest' or 'max_length'"),
    "unknown truncation": (dict(texts=["a"], truncation="yes"), "truncation must be True, False or 'longest_first'"),
    "max_length 1": (dict(texts=["a"], max_length=1), r"max_length must be an integer of at least 2 \(\[CLS\] and"),
    "max_length bool": (dict(texts=["a"], max_length=True), "max_length must be an integer of at least 2"),
    "max_length below a pair's special tokens": (
        dict(texts=["a b c"], text_pairs=["d e f"], max_length=2),
        r"max_length 2 leaves no room for the 3 special tokens of each row \(\[CLS\] A \[SEP\] B \[SEP\]\)",
    ),
    "unpadded rows of different lengths": (dict(texts=["a", "a b c"], padding=False), "pass padding=True"),
}


@pytest.mark.parametrize("kwargs, match", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
def test_bad_tokenizer_arguments_raise_input_error(tokenizer, kwargs, match):
    with pytest.raises(InputError, match=match):
        tokenizer(**kwargs)


def test_empty_strings_encode_as_cls_sep_like_transformers(tokenizer):
    """An empty text is not an error: it is [CLS] [SEP], as transformers' tokenizer gives, and the model runs on it."""
    encoded = tokenizer(["", "", "   \t\n"])
    np.testing.assert_array_equal(encoded["input_ids"], [[101, 102]] * 3)
    np.testing.assert_array_equal(encoded["attention_mask"], [[1, 1]] * 3)
    out = minibert.BertModel.from_pretrained(minilm_dir())(**encoded)
    assert out.last_hidden_state.shape == (3, 2, 384) and np.isfinite(out.last_hidden_state).all()
    transformers = pytest.importorskip("transformers")
    theirs = transformers.AutoTokenizer.from_pretrained(minilm_dir())(["", "", "   \t\n"], return_tensors="np")
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(encoded[name], theirs[name])


def test_untruncated_long_text_is_refused_by_the_model_not_wrapped_around(tokenizer):
    encoded = tokenizer(["word " * 600], truncation=False)
    assert encoded["input_ids"].shape[1] > 512
    with pytest.raises(InputError, match=r"exceeds max_position_embeddings \(512\)"):
        minibert.BertModel.from_pretrained(minilm_dir())(**encoded)


def test_corrupt_tokenizer_json_is_checkpoint_error(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(CheckpointError, match=r"tokenizer.json: cannot be read"):
        minibert.Tokenizer.from_pretrained(tmp_path)


def test_directory_without_tokenizer_files_is_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no tokenizer.json or vocab.txt"):
        minibert.Tokenizer.from_pretrained(copy_checkpoint(tmp_path))


# A model argument that is neither a path nor a hub id.


@pytest.mark.parametrize("model", [None, 5, 3.5, ["org/name"], b"org/name"])
def test_a_model_that_is_not_a_str_or_path_is_input_error_naming_what_was_found(model, tmp_path):
    found = type(model).__name__
    expected = rf"expected a model directory or a hub id like 'org/name' \(a str or a path\), found {found}"
    with pytest.raises(InputError, match=expected):
        minibert.BertModel.from_pretrained(model)
    with pytest.raises(InputError, match=expected):
        minibert.Tokenizer.from_pretrained(model)
    with pytest.raises(InputError, match=expected):
        minibert.SentenceEncoder.from_pretrained(model)
    corpus = tmp_path / "in.txt"
    corpus.write_text("a line\n")
    with pytest.raises(InputError, match=expected):
        minibert.embed_file(corpus, tmp_path / "out", model, progress=False)
    assert not (tmp_path / "out").exists()
