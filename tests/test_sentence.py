"""Sentence embeddings against sentence-transformers: golden values made by weights/make_sentence_reference.py (no
PyTorch needed), and live comparisons wherever sentence-transformers is installed."""

import itertools
import json

import numpy as np
import pytest
from support.helpers import F32_TOL, F64_TOL, WEIGHTS, minilm_dir

import minibert
from minibert.batching import CALL_TOKENS, length_batches
from minibert.errors import CheckpointError, InputError
from minibert.pooling import POOLING_FUNCTIONS, normalize, pool

REFERENCE = WEIGHTS / "minilm-sentence-reference.npz"


def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def encoder():
    return minibert.SentenceEncoder.from_pretrained(minilm_dir())


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - b)))


def test_minilm_encoder_reads_mean_pooling_normalize_and_max_seq_length_256(encoder):
    assert encoder.pooling_modes == ("mean",)
    assert encoder.normalize is True
    assert encoder.max_seq_length == 256
    assert encoder.dim == 384


@pytest.fixture(scope="module")
def golden_float32(encoder) -> np.ndarray:
    # batch_size=1 so no text pads to the long one's 256 tokens; batching is checked on its own below.
    return encoder.encode(list(reference()["texts"]), batch_size=1)


def test_encode_float32_matches_sentence_transformers_golden(golden_float32):
    ref = reference()
    assert golden_float32.dtype == np.float32 and golden_float32.shape == (8, 384)
    assert max_abs_diff(golden_float32, ref["float32/embeddings"]) <= F32_TOL


def test_encode_float64_model_matches_sentence_transformers_float64_golden():
    ref = reference()
    encoder = minibert.SentenceEncoder.from_pretrained(minilm_dir(), dtype=np.float64)
    ours = encoder.encode(list(ref["texts"]), batch_size=1, dtype=np.float64)
    assert ours.dtype == np.float64
    assert max_abs_diff(ours, ref["float64/embeddings"]) <= F64_TOL
    assert max_abs_diff(ours, ref["float32/embeddings"]) <= F32_TOL  # the float32 run is float64's within tolerance
    assert encoder.encode("float32 by default").dtype == np.float32


def test_batching_and_length_sorting_keep_input_order(encoder):
    ref = reference()
    short = [i for i, t in enumerate(ref["texts"]) if len(t) < 100]  # all but the long text, to stay fast
    texts = [str(ref["texts"][i]) for i in short]
    expected = ref["float32/embeddings"][short]
    for batch_size in (32, 3, 1):
        assert max_abs_diff(encoder.encode(texts, batch_size=batch_size), expected) <= F32_TOL
    assert max_abs_diff(encoder.encode(texts[::-1], batch_size=3)[::-1], expected) <= F32_TOL


def batches_cost(lengths: np.ndarray, batches: list[slice]) -> int:
    """What length_batches minimizes: per batch, CALL_TOKENS plus its rows padded to its longest (its first)."""
    return sum(CALL_TOKENS + (b.stop - b.start) * int(lengths[b.start]) for b in batches)


def test_length_batches_cover_every_row_once_in_at_most_batch_size_rows_at_the_least_cost():
    lengths = np.sort(np.random.default_rng(3).integers(1, 257, 500))[::-1]  # [500] token counts, longest first
    batches = length_batches(lengths, batch_size=32)
    assert [i for b in batches for i in range(len(lengths))[b]] == list(range(len(lengths)))
    assert all(1 <= b.stop - b.start <= 32 for b in batches)
    padded = sum((b.stop - b.start) * int(lengths[b.start]) for b in batches)
    assert padded - lengths.sum() <= 0.02 * padded  # rows of nearly one length share a batch
    # Against batches of rows within 90% of their longest (minibert's rule before), or of 32 rows whatever their
    # lengths (sentence-transformers'): never more.
    ninety, start = [], 0
    for i in range(1, len(lengths) + 1):
        if i == len(lengths) or i - start == 32 or lengths[i] < 0.9 * lengths[start]:
            ninety.append(slice(start, i))
            start = i
    assert batches_cost(lengths, batches) <= batches_cost(lengths, ninety)
    assert batches_cost(lengths, batches) < batches_cost(lengths, [slice(i, i + 32) for i in range(0, 500, 32)])


def test_length_batches_are_the_cheapest_of_every_cut():
    rng = np.random.default_rng(4)
    for n, batch_size in ((1, 1), (5, 2), (7, 3), (9, 32), (10, 4)):
        for _ in range(20):
            lengths = np.sort(rng.integers(1, 80, n))[::-1]
            cheapest = min(  # every way of cutting n rows into consecutive batches of at most batch_size
                batches_cost(lengths, [slice(a, b) for a, b in zip((0, *cuts), (*cuts, n), strict=True)])
                for k in range(n)
                for cuts in itertools.combinations(range(1, n), k)
                if all(b - a <= batch_size for a, b in zip((0, *cuts), (*cuts, n), strict=True))
            )
            batches = length_batches(lengths, batch_size)
            assert batches_cost(lengths, batches) == cheapest, (lengths, batch_size, batches)
            assert all(b.stop - b.start <= batch_size for b in batches)


def test_length_batches_keep_short_rows_together_and_long_rows_of_other_lengths_apart():
    # Short queries of 9 to 14 tokens: one forward pass costs more than their padding.
    assert length_batches(np.array([14, 13, 12, 12, 11, 10, 10, 9]), batch_size=32) == [slice(0, 8)]
    assert length_batches(np.array([200, 150]), batch_size=32) == [slice(0, 1), slice(1, 2)]  # 50 tokens > a pass
    assert length_batches(np.array([7, 7, 7]), batch_size=2) == [slice(0, 2), slice(2, 3)]  # earlier batches full
    assert length_batches(np.array([], dtype=np.int64), batch_size=32) == []


def test_texts_longer_than_max_seq_length_are_truncated_not_refused(encoder, golden_float32):
    long_text = str(reference()["texts"][4])
    assert len(encoder.tokenizer([long_text], truncation=False)["input_ids"][0]) > 256
    # Its embedding is that of its first 256 tokens: the same as that of the text cut well after token 256.
    cut = encoder.encode(long_text[: len(long_text) * 3 // 4])
    assert max_abs_diff(cut, golden_float32[4]) <= F32_TOL


def test_single_string_gives_one_vector_and_empty_list_gives_no_rows(encoder):
    assert encoder.encode("one text").shape == (384,)
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(InputError, match="batch_size"):
        encoder.encode(["x"], batch_size=0)
    with pytest.raises(InputError, match="list of strings"):
        encoder.encode([1, 2])


def test_normalized_embeddings_have_unit_norm(encoder):
    norms = np.linalg.norm(encoder.encode(["a", "a much longer sentence than the other one"]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-6)


@pytest.mark.parametrize("mode", list(POOLING_FUNCTIONS))
@pytest.mark.parametrize("dtype, tol", [("float32", F32_TOL), ("float64", F64_TOL)])
def test_pooling_mode_matches_sentence_transformers_golden(mode, dtype, tol):
    ref = reference()
    token_embeddings = ref["pooling/token_embeddings"].astype(dtype)
    ours = pool(token_embeddings, ref["pooling/attention_mask"], [mode])
    expected = ref[f"pooling/{dtype}/{mode}"]
    assert ours.dtype == np.dtype(dtype) and ours.shape == expected.shape
    # Rows 0-2 are full, right-padded and left-padded; row 3 has no tokens (max gives -inf there, as upstream).
    np.testing.assert_allclose(ours, expected, rtol=0, atol=tol)


def test_several_pooling_modes_concatenate_in_the_order_given():
    ref = reference()
    x, mask = ref["pooling/token_embeddings"], ref["pooling/attention_mask"]
    both = pool(x, mask, ["cls", "mean"])
    assert both.shape == (4, 10)
    np.testing.assert_array_equal(both[:, :5], pool(x, mask, ["cls"]))
    np.testing.assert_array_equal(both[:, 5:], pool(x, mask, ["mean"]))


def test_cosine_similarity_is_normalized_dot_product_for_every_pair():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 7)), rng.standard_normal((2, 7))
    sims = minibert.cosine_similarity(a, b)
    assert sims.shape == (3, 2)
    expected = [[np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v) for v in b] for u in a]
    np.testing.assert_allclose(sims, expected, rtol=0, atol=1e-14)
    assert minibert.cosine_similarity(a[0], a[0]).shape == (1, 1)
    np.testing.assert_allclose(minibert.cosine_similarity(a[0], a[0]), 1.0, atol=1e-15)
    with pytest.raises(InputError, match="dimensions"):
        minibert.cosine_similarity(a, rng.standard_normal((2, 6)))


def test_similar_sentences_score_higher(encoder):
    query = encoder.encode(["How do I bake bread?"])
    docs = encoder.encode(["A recipe for baking a loaf of bread.", "The stock market fell sharply today."])
    sims = minibert.cosine_similarity(query, docs)[0]
    assert sims[0] > sims[1] + 0.3


# ------------------------------------------------------------------------------------------------------
# Other directories: what a modules.json may ask for.


def write_st_dir(tmp_path, modules, pooling_config=None):
    """A sentence-transformers directory whose Transformer module, 0_Transformer/, links to the MiniLM checkpoint."""
    (tmp_path / "0_Transformer").symlink_to(minilm_dir(), target_is_directory=True)
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    if pooling_config is not None:
        (tmp_path / "1_Pooling").mkdir()
        (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    return tmp_path


def transformer_entry():
    return {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"}


def pooling_entry():
    return {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}


def test_layer_norm_module_is_refused_by_name(tmp_path):
    layer_norm = {"idx": 2, "name": "2", "path": "2_LayerNorm", "type": "sentence_transformers.models.LayerNorm"}
    directory = write_st_dir(tmp_path, [transformer_entry(), pooling_entry(), layer_norm], {"pooling_mode": "mean"})
    with pytest.raises(CheckpointError, match=r"2_LayerNorm.*sentence_transformers\.models\.LayerNorm"):
        minibert.SentenceEncoder.from_pretrained(directory)


def test_unknown_pooling_mode_is_refused(tmp_path):
    directory = write_st_dir(tmp_path, [transformer_entry(), pooling_entry()], {"pooling_mode": "median"})
    with pytest.raises(CheckpointError, match="median"):
        minibert.SentenceEncoder.from_pretrained(directory)


def test_directory_without_modules_json_points_to_bert_model(tmp_path):
    with pytest.raises(CheckpointError, match="BertModel"):
        minibert.SentenceEncoder.from_pretrained(tmp_path)


def test_cls_pooling_without_normalize_is_token_0_of_last_hidden_state(tmp_path):
    legacy = {"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    directory = write_st_dir(tmp_path, [transformer_entry(), pooling_entry()], legacy)
    encoder = minibert.SentenceEncoder.from_pretrained(directory)
    assert encoder.pooling_modes == ("cls",) and encoder.normalize is False
    texts = ["first text", "a second, longer text"]
    hidden = encoder.model(**encoder.tokenizer(texts)).last_hidden_state
    np.testing.assert_allclose(encoder.encode(texts, batch_size=1), hidden[:, 0], rtol=0, atol=F32_TOL)


def test_normalize_divides_by_the_l2_norm_and_leaves_zero_vectors_zero():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_array_equal(normalize(x), [[0.6, 0.8], [0.0, 0.0]])


# ------------------------------------------------------------------------------------------------------
# Live, wherever sentence-transformers is installed.


def test_encode_matches_live_sentence_transformers(encoder):
    pytest.importorskip("torch")
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(minilm_dir()), device="cpu")
    texts = ["Live comparison.", "Accents: déjà vu, Ångström.", "x", "A somewhat longer sentence " * 30]
    expected = model.encode(texts, batch_size=2)
    assert max_abs_diff(encoder.encode(texts, batch_size=2), expected) <= F32_TOL


@pytest.mark.parametrize("mode", list(POOLING_FUNCTIONS) + [("cls", "max", "mean")])
def test_pooling_matches_live_sentence_transformers_pooling_module(mode):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("sentence_transformers")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 9, 8))
    mask = (rng.random((5, 9)) < 0.7).astype(np.int64)
    mask[:, 0] = 1  # right padding with holes; one left-padded row; one row of padding only
    mask[3, :4] = 0
    mask[4] = 0
    module = st.models.Pooling(8, pooling_mode=mode)
    with torch.no_grad():
        expected = module({"token_embeddings": torch.from_numpy(x), "attention_mask": torch.from_numpy(mask)})
    modes = [mode] if isinstance(mode, str) else list(mode)
    np.testing.assert_allclose(pool(x, mask, modes), expected["sentence_embedding"].numpy(), rtol=0, atol=F64_TOL)


def test_do_lower_case_puts_a_lowercase_normalizer_in_front():
    from tokenizers.normalizers import BertNormalizer

    from minibert.st_config import lowercase_first as _lowercase_first

    tokenizer = minibert.Tokenizer.from_pretrained(WEIGHTS / "tiny-mlm")
    tokenizer.backend.normalizer = BertNormalizer(lowercase=False)  # a cased tokenizer
    assert tokenizer.convert_ids_to_tokens(tokenizer(["CAT"])["input_ids"][0]) == ["[CLS]", "[UNK]", "[SEP]"]
    _lowercase_first(tokenizer)
    assert tokenizer.convert_ids_to_tokens(tokenizer(["CAT"])["input_ids"][0]) == ["[CLS]", "cat", "[SEP]"]


def test_readme_semantic_search_output_is_true(encoder):
    docs = [
        "The cat sleeps on the warm windowsill.",
        "Stock markets fell sharply after the announcement.",
        "A recipe for sourdough bread with a crisp crust.",
        "Kittens like to nap in the sun.",
    ]
    model = minibert.SentenceTransformer(minilm_dir())  # the README's code, as written there
    scores = model.similarity(model.encode_query("Where do cats like to sleep?"), model.encode_document(docs))[0]
    assert [f"{s:.4f}" for s in scores] == ["0.5982", "-0.0715", "0.1129", "0.6706"]  # as printed in README.md
    cosine = minibert.cosine_similarity(encoder.encode(["Where do cats like to sleep?"]), encoder.encode(docs))[0]
    assert [f"{s:.4f}" for s in cosine] == [f"{s:.4f}" for s in scores]


# A small sentence-transformers model to lay out in different ways: tiny-gelu (vocab 99) as the Transformer.

TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    + ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    + [f"tok{i}" for i in range(42)]
)  # 99 tokens, tiny-gelu's vocab_size: every lower-case word tokenizes into letters


def tiny_sentence_repo(directory, transformer: str = "0_BERT", sharded: bool = False):
    """A sentence-transformers directory around tiny-gelu: modules.json (Transformer in the folder `transformer`, ""
    for the top one, as older releases lay it out; mean Pooling; Normalize), vocab.txt, max_seq_length 16."""
    from test_checkpoint_layouts import shard_tiny_gelu

    bert = directory / transformer
    bert.mkdir(parents=True, exist_ok=True)
    if sharded:
        shard_tiny_gelu(bert)
    else:
        for name in ("config.json", "model.safetensors"):
            (bert / name).write_bytes((WEIGHTS / "tiny-gelu" / name).read_bytes())
    (bert / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    (bert / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16, "do_lower_case": False}))
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    modules = [
        {"idx": 0, "name": "0", "path": transformer, "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (directory / "modules.json").write_text(json.dumps(modules))
    return directory


TINY_TEXTS = ["a cat sat on the mat", "tok3 dog", "x"]


@pytest.mark.parametrize("transformer, sharded", [("", False), ("0_BERT", False), ("0_BERT", True)])
def test_transformer_module_in_a_subfolder_or_sharded_is_bert_then_mean_pooling_then_normalize(
    tmp_path, transformer, sharded
):
    directory = tiny_sentence_repo(tmp_path / "st", transformer, sharded)
    encoder = minibert.SentenceEncoder.from_pretrained(directory, dtype=np.float64)
    assert (encoder.dim, encoder.max_seq_length, encoder.pooling_modes) == (32, 16, ("mean",))
    tokenizer = minibert.Tokenizer.from_pretrained(directory / transformer)
    inputs = tokenizer(TINY_TEXTS, max_length=16)
    hidden = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu", dtype=np.float64)(**inputs).last_hidden_state
    mask = inputs["attention_mask"][:, :, None]
    expected = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(encoder.encode(TINY_TEXTS, dtype=np.float64), expected, rtol=0, atol=F64_TOL)


@pytest.mark.parametrize("path", ["../outside", "/etc", "0_BERT/../../outside"])
def test_module_path_outside_the_model_directory_is_refused(tmp_path, path):
    directory = tiny_sentence_repo(tmp_path / "st")
    modules = json.loads((directory / "modules.json").read_text())
    modules[0]["path"] = path
    (directory / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(CheckpointError, match=rf"module 0 has path '{path}'.*no '\.\.', not absolute"):
        minibert.SentenceEncoder.from_pretrained(directory)


def test_sentence_encoder_takes_check_finite_and_refuses_a_revision_for_a_directory(tmp_path):
    from safetensors.numpy import load_file, save_file

    directory = tiny_sentence_repo(tmp_path / "st")
    weights = directory / "0_BERT" / "model.safetensors"
    tensors = load_file(weights)
    tensors["encoder.layer.0.output.dense.bias"][3] = np.nan
    save_file(tensors, weights)
    with pytest.raises(CheckpointError, match=r"'encoder.layer.0.output.dense.bias' holds 1 NaN"):
        minibert.SentenceEncoder.from_pretrained(directory)
    encoder = minibert.SentenceEncoder.from_pretrained(directory, check_finite=False)
    assert np.isnan(encoder.encode("a b c")).all()  # the NaN reaches every output, as it would in torch
    with pytest.raises(InputError, match="revision='main' applies to hub ids"):
        minibert.SentenceEncoder.from_pretrained(directory, revision="main", local_files_only=True, cache_dir=tmp_path)


def test_modules_json_that_is_not_a_list_is_a_checkpoint_error(tmp_path):
    directory = tiny_sentence_repo(tmp_path / "st")
    (directory / "modules.json").write_text(json.dumps({"0": "Transformer"}))
    with pytest.raises(CheckpointError, match=r"modules.json: expected a JSON array, found an object"):
        minibert.SentenceEncoder.from_pretrained(directory)
